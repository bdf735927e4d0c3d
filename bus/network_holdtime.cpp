// Lossless slow consumers: a port that holds senders back longer than the
// network's holdtime turns lossy (stalled) until its reader reads again, and
// then learns how many messages it lost.
#include <algorithm>
#include <chrono>
#include <deque>
#include <utility>
#include <vector>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

void Network::start_hold_clock() {
    head_since_ = Timer::Clock::now();
    if (settings_.holdtime > 0) {
        Timer::shared().arm(hold_timer_,
                            head_since_ + std::chrono::milliseconds(settings_.holdtime));
    }
}

void Network::hold_expired() {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        listener = listener_;
        if (hung_up_ || waiting_head().second == nullptr || settings_.holdtime == 0) return;
        auto now = Timer::Clock::now();
        auto deadline = head_since_ + std::chrono::milliseconds(settings_.holdtime);
        if (now < deadline) {
            Timer::shared().arm(hold_timer_, deadline);  // the head changed since
            return;
        }
        std::vector<Port*> spared;  // ports already made to let go this time
        // Only the send that waited holdtime: freed room may let it go and
        // bring up a new head, whose time starts now.
        const Message* first = waiting_head().second->get();
        for (;;) {
            auto [from, msg] = waiting_head();
            if (msg == nullptr || msg->get() != first) break;
            if (route_fits(from->id, *msg, route_) != Fit::wait) break;
            HoldingBack held = holding_back(route_, spared);
            if (held.port == nullptr) break;
            stall(*held.port, held.discard, after);
            spared.push_back(held.port);
        }
        room_freed(after);
        if (waiting_head().second != nullptr) {
            head_since_ = now;
            Timer::shared().arm(hold_timer_, now + std::chrono::milliseconds(settings_.holdtime));
        }
    }
    after.run(listener);
}

std::pair<Port*, const MessageRef*> Network::waiting_head() {
    if (replica_) {
        // A cluster network's senders_ wait for credit: the other daemons'
        // holdtime is what lets them go.
        if (inbound_.empty() || inbound_.front().what != Ordered::What::data) return {};
        return {&ordered_from(inbound_.front().origin), &inbound_.front().msg};
    }
    if (senders_.empty()) return {};
    return {senders_.front().from_, &senders_.front().message_};
}

// A full recipient of the head (as routed into `head`) only has to stop
// holding; when the pool or the byte budget is what is used up, what a port
// holds must go too.
Network::HoldingBack Network::holding_back(const Route& head, const std::vector<Port*>& spared) {
    auto done = [&](const Port* p) { return std::ranges::find(spared, p) != spared.end(); };
    if (pool_used_ < settings_.pool) {
        auto full = [&](PortId id) REQUIRES(mu_) -> Port* {
            Port* p = ports_[id].get();
            bool holds = p->ring && !p->drop_when_full && !p->stalled && !p->has_room();
            return holds && !done(p) ? p : nullptr;
        };
        for (PortId id : head.to) {
            if (Port* p = full(id)) return {.port = p, .discard = false};
        }
        for (const Route::Variant& v : head.variants()) {
            for (PortId id : v.to) {
                if (Port* p = full(id)) return {.port = p, .discard = false};
            }
        }
    }
    // The pool or the byte budget is used up: the port holding the most.
    Port* most = nullptr;
    for (const auto& p : ports_) {
        if (!p->ring || p->queued() == 0 || done(p.get())) continue;
        if (most == nullptr || p->queued() > most->queued()) most = p.get();
    }
    return {.port = most, .discard = true};
}

void Network::stall(Port& port, bool discard, AfterUnlock& after) {
    if (!port.stalled) ++stalls_;
    port.stalled = true;
    if (!discard) return;
    // What it holds goes (events stay, in order); only what is queued now:
    // taking frees room, which lets parked sends queue here again.
    std::size_t queued = port.queued();
    std::deque<MessageRef> events;
    // A lossless network's readers take only under mu_ (takes_lockfree()),
    // so this consumer needs no read_mu; capture readers, which take
    // without it, are not in ports_.
    for (std::size_t i = 0; i < queued; ++i) {
        MessageRef msg = take_locked(port, nullptr, after);
        if (!msg) break;
        if (msg->is_event()) {
            events.push_back(std::move(msg));
        } else {
            ++port.lost;
            port.counters.drops.fetch_add(1, std::memory_order_relaxed);
        }
    }
    for (MessageRef& event : events) hold_event(port, event);
}

void Network::resume(Port& port, AfterUnlock& after) {
    port.stalled = false;
    std::uint64_t lost = std::exchange(port.lost, 0);
    if (lost == 0 || !port.events) return;
    MessageRef event = Message::make(port.id, std::as_bytes(std::span(&lost, 1)), Kind::lost);
    event->set_seq(next_seq_++);
    enqueue(port, event, after);
}

}  // namespace ipnfs::bus
