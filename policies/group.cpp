#include "policies/group.hpp"

#include <fmt/format.h>

namespace ipnfs::policies {

namespace {

// How much a port is behind, for anycast: a full queue ranks after every
// queue with room, then fewer queued messages first.  0 is as idle as a port
// gets.  Without a load (unit tests), every port is idle.
std::uint64_t backlog(const bus::Load* load, bus::PortId port) {
    if (load == nullptr) return 0;
    std::uint32_t queued = load->queued(port);
    std::uint64_t full = queued >= load->capacity(port) ? 1 : 0;
    return full << 32 | queued;
}

}  // namespace

Group::Group() {
    build_commands();
}

void Group::on_ports(bus::PortId count) {
    // The network detaches ports before removing them; one still attached
    // here would stay indexed and be named after it is gone.
    for (bus::PortId port = count; port < members_.size(); ++port) on_detach(port);
    members_.resize(count);
}

void Group::on_attach(bus::PortId port) {
    if (port >= members_.size() || members_[port].slot != kAbsent) return;
    members_[port].slot = attached_.size();
    attached_.push_back(port);
    hold(port);
}

void Group::on_detach(bus::PortId port) {
    if (port >= members_.size() || members_[port].slot == kAbsent) return;
    release(port);
    std::size_t at = members_[port].slot;
    bus::PortId last = attached_.back();
    attached_[at] = last;
    members_[last].slot = at;
    attached_.pop_back();
    members_[port].slot = kAbsent;
}

void Group::hold(bus::PortId port) {
    Member& m = members_[port];
    if (!m.instance || m.slot == kAbsent) return;
    std::vector<bus::PortId>& holders = instances_[*m.instance].ports;
    m.holder_slot = holders.size();
    holders.push_back(port);
}

void Group::release(bus::PortId port) {
    Member& m = members_[port];
    if (m.holder_slot == kAbsent) return;
    auto it = instances_.find(*m.instance);
    Holders& h = it->second;
    bus::PortId last = h.ports.back();
    h.ports[m.holder_slot] = last;
    members_[last].holder_slot = m.holder_slot;
    h.ports.pop_back();
    m.holder_slot = kAbsent;
    // An instance nobody holds is forgotten, so multicast walks only live ones.
    if (h.ports.empty()) {
        instances_.erase(it);
    } else if (h.cursor >= h.ports.size()) {
        h.cursor = 0;
    }
}

void Group::route(bus::PortId from, std::span<const std::byte> /*payload*/, bus::Route& out) {
    bus::Address to = out.address;
    if (to.to == bus::To::standard) to = from < members_.size() ? members_[from].dest : kBroadcast;
    switch (to.to) {
        case bus::To::port:
            to_port(to.lower, out);
            return;
        case bus::To::anycast:
            to_anycast(to.lower, out);
            return;
        case bus::To::multicast:
            count(multicast, out);
            to_multicast(from, to.lower, to.upper, out.to);
            return;
        case bus::To::standard:  // a dest is never standard
        case bus::To::broadcast:
            count(broadcast, out);
            to_broadcast(from, out.to);
            return;
    }
    out.refused = bus::Status::error(std::errc::invalid_argument,
                                     fmt::format("unknown address kind {}", int(to.to)));
}

void Group::sent(bus::PortId /*from*/, const bus::Route& route) {
    if (route.tally != 0 && route.tally <= kCounters) ++counters_[route.tally - 1];
}

bool Group::reach(bus::PortId from, bool framed, bus::Reach& out) const {
    if (framed) {
        // A record may be addressed anywhere, the writer's own port too.
        out.ports = attached_;
        return true;
    }
    bus::Address to = from < members_.size() ? members_[from].dest : kBroadcast;
    switch (to.to) {
        case bus::To::port:
            // A port that does not receive refuses at once: nothing to wait for.
            if (to.lower < members_.size() && members_[to.lower].slot != kAbsent) {
                out.ports.push_back(to.lower);
            }
            return true;
        case bus::To::anycast:
            if (auto it = instances_.find(to.lower); it != instances_.end()) {
                out.ports = it->second.ports;
                out.any = true;
            }
            return true;
        case bus::To::multicast:
            to_multicast(from, to.lower, to.upper, out.ports);
            return true;
        case bus::To::standard:
        case bus::To::broadcast:
            to_broadcast(from, out.ports);
            return true;
    }
    return false;
}

void Group::to_port(std::uint32_t port, bus::Route& out) {
    if (port >= members_.size() || members_[port].slot == kAbsent) {
        count(unreachable, out);
        out.refused = bus::Status::error(std::errc::host_unreachable,
                                         fmt::format("port {} does not receive", port));
        return;
    }
    count(unicast, out);
    out.to.push_back(port);
}

void Group::to_anycast(std::uint32_t instance, bus::Route& out) {
    auto it = instances_.find(instance);
    if (it == instances_.end()) {
        count(unreachable, out);
        out.refused = bus::Status::error(std::errc::host_unreachable,
                                         fmt::format("no port holds instance {}", instance));
        return;
    }
    count(anycast, out);
    // Starting at the cursor and keeping the first of equals makes equally
    // loaded holders take turns; an idle one cannot be beaten, so an
    // unloaded group stops at the first.  A retry moves the cursor too: it
    // only breaks ties, so that costs no fairness worth a second cursor.
    Holders& h = it->second;
    std::size_t n = h.ports.size();
    std::size_t best = h.cursor;
    std::uint64_t least = backlog(out.load, h.ports[best]);
    for (std::size_t i = 1; i < n && least != 0; ++i) {
        std::size_t at = h.cursor + i < n ? h.cursor + i : h.cursor + i - n;
        std::uint64_t b = backlog(out.load, h.ports[at]);
        if (b < least) {
            best = at;
            least = b;
        }
    }
    h.cursor = best + 1 < n ? best + 1 : 0;
    out.to.push_back(h.ports[best]);
}

void Group::to_multicast(bus::PortId from, std::uint32_t lower, std::uint32_t upper,
                         std::vector<bus::PortId>& out) const {
    // A port holds one instance, so no port comes up twice.
    for (auto it = instances_.lower_bound(lower); it != instances_.end() && it->first <= upper;
         ++it) {
        for (bus::PortId port : it->second.ports) {
            if (gets_copy(from, port)) out.push_back(port);
        }
    }
}

void Group::to_broadcast(bus::PortId from, std::vector<bus::PortId>& out) const {
    for (bus::PortId port : attached_) {
        if (gets_copy(from, port)) out.push_back(port);
    }
}

}  // namespace ipnfs::policies
