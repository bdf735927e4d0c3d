#include "policies/group.hpp"

#include <limits>

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
        forget_turn(it->first);
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
            to_port(to.upper, to.lower, out);
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

void Group::to_port(std::uint32_t node, std::uint32_t port, bus::Route& out) {
    // A cluster network places its unicasts (place()): a node here is one
    // a network of this host alone does not have.
    if (node != 0) {
        count(unreachable, out);
        out.refused = bus::Status::error(
            std::errc::host_unreachable,
            fmt::format("no node {} on a network of this host alone (scope node)", node));
        return;
    }
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

// ---- cluster scope ----

std::optional<std::uint32_t> Group::instance(bus::PortId port) const {
    return port < members_.size() ? members_[port].instance : std::nullopt;
}

void Group::on_remote(const bus::Origin& port, const bus::Presence* presence) {
    auto it = remote_.find(port);
    if (it != remote_.end() && it->second) {
        auto holders = remote_holders_.find(*it->second);
        std::erase(holders->second, port);
        if (holders->second.empty()) {
            forget_turn(holders->first);
            remote_holders_.erase(holders);
        }
    }
    if (presence == nullptr || !presence->receives) {
        if (it != remote_.end()) remote_.erase(it);
        return;
    }
    remote_[port] = presence->instance;
    if (!presence->instance) return;
    std::vector<bus::Origin>& holders = remote_holders_[*presence->instance];
    holders.insert(std::ranges::lower_bound(holders, port), port);
}

void Group::forget_turn(std::uint32_t instance) {
    if (!instances_.contains(instance) && !remote_holders_.contains(instance)) {
        turns_.erase(instance);
    }
}

void Group::place(bus::PortId from, std::span<const std::byte> /*payload*/, bus::Route& out) {
    if (out.address.to == bus::To::standard) {
        out.address = from < members_.size() ? members_[from].dest : kBroadcast;
    }
    switch (out.address.to) {
        case bus::To::port:
            place_port(out.address.upper, out.address.lower, out);
            return;
        case bus::To::anycast:
            place_anycast(out.address.lower, out);
            return;
        case bus::To::multicast:
        case bus::To::broadcast:
        case bus::To::standard:
            return;  // every daemon routes it among its own ports
    }
}

void Group::place_port(std::uint32_t node, std::uint32_t port, bus::Route& out) const {
    if (node == 0) {
        if (port < members_.size() && members_[port].slot != kAbsent) {
            count(unicast, out);
            out.target = bus::Origin{0, 0, port};
            return;
        }
    } else {
        // The node's daemons in order (two when one restarted): the first
        // whose port receives.  Each step skips to the port or past it.
        auto it = remote_.lower_bound({node, 0, port});
        while (it != remote_.end() && it->first.node == node) {
            const bus::Origin& at = it->first;
            if (at.port == port) {
                count(unicast, out);
                out.target = at;
                return;
            }
            if (at.port < port) {
                it = remote_.lower_bound({node, at.daemon, port});
            } else if (at.daemon == std::numeric_limits<std::uint32_t>::max()) {
                break;
            } else {
                it = remote_.lower_bound({node, at.daemon + 1, port});
            }
        }
    }
    count(unreachable, out);
    out.refused = bus::Status::error(
        std::errc::host_unreachable,
        node == 0 ? fmt::format("port {} does not receive", port)
                  : fmt::format("no port {} of node {} receives (events list the cluster's ports)",
                                port, node));
}

void Group::place_anycast(std::uint32_t instance, bus::Route& out) {
    auto local = instances_.find(instance);
    auto remote = remote_holders_.find(instance);
    std::size_t here = local != instances_.end() ? local->second.ports.size() : 0;
    std::size_t there = remote != remote_holders_.end() ? remote->second.size() : 0;
    if (here + there == 0) {
        count(unreachable, out);
        out.refused = bus::Status::error(
            std::errc::host_unreachable,
            fmt::format("no port holds instance {} on any host of the cluster", instance));
        return;
    }
    count(anycast, out);
    std::size_t& turn = turns_[instance];
    std::size_t at = turn++ % (here + there);
    out.target = at < here ? bus::Origin{0, 0, local->second.ports[at]} : remote->second[at - here];
}

}  // namespace ipnfs::policies
