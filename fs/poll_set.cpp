#include "fs/poll_set.hpp"

#include <algorithm>

namespace ipnfs::fs {

PollSet::~PollSet() {
    for (auto& [port, pending] : pending_) {
        for (auto& [owner, ph] : pending) fuse_pollhandle_destroy(ph);
    }
}

void PollSet::store(bus::PortId port, const void* owner, fuse_pollhandle* ph) {
    fuse_pollhandle* old = nullptr;
    {
        MutexLock lock(mu_);
        Pending& pending = pending_[port];
        auto it = std::find_if(pending.begin(), pending.end(),
                               [owner](const auto& p) { return p.first == owner; });
        if (it != pending.end()) {
            old = std::exchange(it->second, ph);
        } else {
            pending.emplace_back(owner, ph);
        }
    }
    if (old != nullptr) fuse_pollhandle_destroy(old);
}

void PollSet::forget(bus::PortId port, const void* owner) {
    fuse_pollhandle* old = nullptr;
    {
        MutexLock lock(mu_);
        auto found = pending_.find(port);
        if (found == pending_.end()) return;
        Pending& pending = found->second;
        auto it = std::find_if(pending.begin(), pending.end(),
                               [owner](const auto& p) { return p.first == owner; });
        if (it == pending.end()) return;
        old = it->second;
        pending.erase(it);
        // Observer ids are not reused: an empty entry left here would stay.
        if (pending.empty()) pending_.erase(found);
    }
    fuse_pollhandle_destroy(old);
}

void PollSet::notify(bus::PortId port) {
    Pending woken;
    {
        MutexLock lock(mu_);
        auto found = pending_.find(port);
        if (found == pending_.end()) return;
        woken.swap(found->second);
        pending_.erase(found);
    }
    for (auto& [owner, ph] : woken) {
        fuse_lowlevel_notify_poll(ph);
        fuse_pollhandle_destroy(ph);
    }
}

}  // namespace ipnfs::fs
