// Membership events: join, leave and counts, and their bounded backlog.
#include <algorithm>
#include <array>
#include <deque>
#include <span>
#include <unordered_map>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

namespace {

// Keeps a port's event backlog bounded whatever clients do: only the last
// counts event is kept, and a join and a later leave of the same port, both
// still unread, cancel out (the reader's view of who is connected stays
// exact).  The backlog then holds at most one event per port plus one counts.
void compact_events(std::deque<MessageRef>& events) {
    std::deque<MessageRef> kept;
    std::unordered_map<PortId, std::size_t> open_join;  // port -> index in kept
    std::size_t last_counts = events.size();
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i]->kind() == Kind::counts) last_counts = i;
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
        const MessageRef& e = events[i];
        if (e->kind() == Kind::counts && i != last_counts) continue;
        if (e->kind() == Kind::leave) {
            if (auto it = open_join.find(e->from()); it != open_join.end()) {
                kept[it->second] = nullptr;
                open_join.erase(it);
                continue;
            }
        }
        if (e->kind() == Kind::join) open_join[e->from()] = kept.size();
        kept.push_back(e);
    }
    events.clear();
    for (auto& e : kept) {
        if (e) events.push_back(std::move(e));
    }
}

}  // namespace

void Network::hold_event(Port& port, const MessageRef& msg) {
    port.overflow.push_back(msg);
    if (port.overflow.size() > 2 * ports_.size() + 16) compact_events(port.overflow.items());
}

template <typename F>
void Network::for_each_event_reader(F&& f) {
    for (Port* port : event_ports_) f(*port, port->id);
    for (Port& observer : observers_) {
        if (!observer.capture) f(observer, observer.id);  // captures see data only
    }
}

void Network::emit(Kind kind, PortId member, bool to_member, AfterUnlock& after) {
    std::array<std::uint32_t, 2> counts{receiving_ports_, sending_ports_};
    auto payload =
        kind == Kind::counts ? std::as_bytes(std::span(counts)) : std::span<const std::byte>{};
    MessageRef msg = Message::make(member, payload, kind);
    if (kind == Kind::join) msg->set_credentials(ports_[member]->joined_by);
    msg->set_seq(next_seq_++);
    for_each_event_reader([&](Port& port, PortId id) REQUIRES(mu_) {
        if (to_member || id != member) enqueue(port, msg, after);
    });
}

void Network::send_snapshot(Port& port, PortId id, AfterUnlock& after) {
    // One join per connected port, in port order: the cost is the
    // snapshot's own size, not the port count.
    std::vector<PortId> members = connected_;
    std::ranges::sort(members);
    for (PortId member : members) {
        if (member == id) continue;
        MessageRef join = Message::make(member, {}, Kind::join);
        join->set_credentials(ports_[member]->joined_by);
        join->set_seq(next_seq_++);
        enqueue(port, join, after);
    }
    std::array<std::uint32_t, 2> counts{receiving_ports_, sending_ports_};
    MessageRef msg = Message::make(id, std::as_bytes(std::span(counts)), Kind::counts);
    msg->set_seq(next_seq_++);
    enqueue(port, msg, after);
}

}  // namespace ipnfs::bus
