// Membership events: join, leave and counts, to the ports and observers that
// receive them.
#include <algorithm>
#include <array>
#include <span>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

void Network::hold_event(Port& port, const MessageRef& msg) {
    // Coalesced there, so a reader that stopped reading holds at most two
    // events per other port beyond its ring (bus/backlog.hpp).
    port.overflow.push(msg);
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
    if (replica_) {
        send_cluster_snapshot(port, id, after);
        send_counts(port, id, after);
        return;
    }
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
    send_counts(port, id, after);
}

void Network::send_counts(Port& port, PortId id, AfterUnlock& after) {
    std::array<std::uint32_t, 2> counts{receiving_ports_, sending_ports_};
    MessageRef msg = Message::make(id, std::as_bytes(std::span(counts)), Kind::counts);
    msg->set_seq(next_seq_++);
    enqueue(port, msg, after);
}

// ---- a cluster network's members (bus/network_cluster.cpp) ----

void Network::emit_member(Kind kind, const Origin& origin, const Credentials& creds,
                          AfterUnlock& after) {
    MessageRef msg = Message::make(origin.port, {}, kind);
    msg->set_node(origin.node);
    if (kind == Kind::join) msg->set_credentials(creds);
    msg->set_seq(next_seq_++);
    bool own = origin.node == self_.node && origin.daemon == self_.daemon;
    for_each_event_reader([&](Port& port, PortId id) REQUIRES(mu_) {
        if (!own || id != origin.port) enqueue(port, msg, after);
    });
}

void Network::send_cluster_snapshot(Port& port, PortId id, AfterUnlock& after) {
    // The group's ports as the order made them, this daemon's own included
    // (but the reader's own port): what the joins so far said.
    for (const auto& [origin, member] : members_) {
        if (is_self(origin) && origin.port == id) continue;
        MessageRef join = Message::make(origin.port, {}, Kind::join);
        join->set_node(origin.node);
        join->set_credentials(member.opener);
        join->set_seq(next_seq_++);
        enqueue(port, join, after);
    }
}

}  // namespace ipnfs::bus
