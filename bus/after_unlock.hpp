// Internal to bus/: the work a network call gathers under its lock and does
// after releasing it.
#pragma once

#include <utility>
#include <vector>

#include "bus/network.hpp"

namespace ipnfs::bus {

// Work gathered under the network lock and done after releasing it:
// completing parked requests and waking pollers may reach into the layer
// above, which must never run under a bus lock.
struct Network::AfterUnlock {
    std::vector<std::pair<Waiter*, Received>> received;
    std::vector<std::pair<SendWaiter*, Status>> sent;
    std::vector<PortId> ready;

    void run(Listener* listener) {
        // Take the work out first: a completion or listener may send again
        // on this thread, and send() reuses this object (it is thread_local).
        auto batch = std::exchange(received, {});
        auto senders = std::exchange(sent, {});
        auto ids = std::exchange(ready, {});
        for (auto& [waiter, r] : batch) waiter->complete(std::move(r));
        for (auto& [waiter, status] : senders) waiter->complete(std::move(status));
        if (listener != nullptr) {
            for (PortId id : ids) listener->ready(id);
        }
        // Hand the buffers back for the next use on this thread.
        batch.clear();
        ids.clear();
        if (received.empty()) received.swap(batch);
        if (ready.empty()) ready.swap(ids);
    }
};

}  // namespace ipnfs::bus
