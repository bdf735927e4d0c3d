#include "netdev/cables.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "bus/log.hpp"

namespace ipnfs::netdev {

Cables::~Cables() {
    std::vector<std::unique_ptr<Cable>> cables;
    {
        MutexLock lock(mu_);
        cables.swap(cables_);
    }
    destroy(std::move(cables));
}

bus::Status Cables::plug(bus::Network& from, std::optional<bus::PortId> port,
                         const std::shared_ptr<bus::Network>& to,
                         std::optional<bus::PortId> peer_port) {
    if (to.get() == &from) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("a cable joins two networks; {} is this one", from.name()));
    }
    MutexLock lock(mu_);
    for (const auto& c : cables_) {
        if (c->touches(from) && c->touches(*to)) {
            return bus::Status::error(
                std::errc::file_exists,
                fmt::format("networks {} and {} are already joined by a cable", from.name(),
                            to->name()));
        }
    }
    std::unique_ptr<CableLink> link_a;
    std::unique_ptr<CableLink> link_b;
    if (bus::Status s = CableLink::make_pair(to->name(), from.name(), link_a, link_b); !s.ok()) {
        return s;
    }
    bus::Connection conn_a;
    bus::Status s = port ? from.connect(*port, true, true, conn_a, true)
                         : from.connect_any(true, true, conn_a, true);
    if (!s.ok()) return s;
    bus::Connection conn_b;
    s = peer_port ? to->connect(*peer_port, true, true, conn_b, true)
                  : to->connect_any(true, true, conn_b, true);
    if (!s.ok()) {
        from.disconnect(conn_a);
        s.reason = fmt::format("network {}: {}", to->name(), s.reason);
        return s;
    }
    auto cable = std::make_unique<Cable>();
    cable->a = {&from, link_a.get(), nullptr};
    cable->a.device = std::make_unique<Device>(from, engine_, std::move(link_a), conn_a);
    cable->b = {to.get(), link_b.get(), nullptr};
    cable->b.device = std::make_unique<Device>(*to, engine_, std::move(link_b), conn_b);
    cable->a.device->start();
    cable->b.device->start();
    bus::log::info({from.name(), conn_a.id, "cable-plug"}, "cable to network {} port {}",
                   to->name(), conn_b.id);
    cables_.push_back(std::move(cable));
    return bus::Status::success();
}

bus::Status Cables::unplug(const bus::Network& net, std::string_view peer) {
    std::vector<std::unique_ptr<Cable>> gone;
    {
        MutexLock lock(mu_);
        auto it = std::find_if(cables_.begin(), cables_.end(), [&](const auto& c) {
            const End& far = c->a.net == &net ? c->b : c->a;
            return c->touches(net) && far.net->name() == peer;
        });
        if (it == cables_.end()) {
            return bus::Status::error(std::errc::no_such_device,
                                      fmt::format("no cable to network {} here", peer));
        }
        gone.push_back(std::move(*it));
        cables_.erase(it);
    }
    bus::log::info({net.name(), "cable-unplug"}, "cable to network {} removed", peer);
    destroy(std::move(gone));
    return bus::Status::success();
}

void Cables::unplug_all(const bus::Network& net) {
    std::vector<std::unique_ptr<Cable>> gone;
    {
        MutexLock lock(mu_);
        auto keep = std::stable_partition(cables_.begin(), cables_.end(),
                                          [&](const auto& c) { return !c->touches(net); });
        std::move(keep, cables_.end(), std::back_inserter(gone));
        cables_.erase(keep, cables_.end());
    }
    destroy(std::move(gone));
}

void Cables::destroy(std::vector<std::unique_ptr<Cable>> cables) {
    if (cables.empty()) return;
    // On the engine thread, between its turns: nothing it is doing can be
    // about these devices then.
    engine_.run_sync([&] {
        for (auto& c : cables) {
            c->a.device->detach();
            c->b.device->detach();
        }
        cables.clear();
    });
}

void Cables::describe(const bus::Network& net, std::string& out) const {
    MutexLock lock(mu_);
    for (const auto& c : cables_) {
        if (c->a.net != &net) continue;
        out += fmt::format("cable {} {} {}\n", c->b.net->name(), c->a.device->port(),
                           c->b.device->port());
    }
}

void Cables::stats(const bus::Network& net, std::string& out) const {
    MutexLock lock(mu_);
    bool header = false;
    for (const auto& c : cables_) {
        if (!c->touches(net)) continue;
        const End& here = c->a.net == &net ? c->a : c->b;
        const End& far = c->a.net == &net ? c->b : c->a;
        if (!header) {
            out += fmt::format("{:<16} {:>6} {:>9} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>9}\n",
                               "cable_to", "port", "peer_port", "state", "frames_in", "bytes_in",
                               "frames_out", "bytes_out", "drops", "hop_drops");
            header = true;
        }
        const DeviceCounters& k = here.device->counters();
        out += fmt::format("{:<16} {:>6} {:>9} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>9}\n",
                           far.net->name(), here.device->port(), far.device->port(),
                           here.device->state(), k.frames_in.load(std::memory_order_relaxed),
                           k.bytes_in.load(std::memory_order_relaxed),
                           k.frames_out.load(std::memory_order_relaxed),
                           k.bytes_out.load(std::memory_order_relaxed),
                           k.drops.load(std::memory_order_relaxed), here.link->hop_drops());
    }
}

CablePorts::CablePorts(bus::Network& net, const bus::Directory& directory, Cables& cables)
    : net_(net), directory_(directory), cables_(cables) {
    static_assert(kHopLimit == 8, "the help line of cable names the hop limit");
    commands_ = {
        {.verb = "cable",
         .args = "NET [PORT [PEERPORT]]",
         .nargs = 1,
         .help = "join PORT to PEERPORT of network NET (default: the lowest free ports); a frame "
                 "crosses at most 8 cables; needs CAP_NET_ADMIN and the right to open NET's port "
                 "for reading and writing",
         .run = nullptr,  // run_as: it checks the caller's access to NET
         .optional = 2,
         .net_admin = true,
         .run_as = [this](bus::Words w, const bus::Caller& caller) { return plug(w, caller); }},
        {.verb = "uncable",
         .args = "NET",
         .nargs = 1,
         .help = "remove the cable to network NET; needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return cables_.unplug(net_, w[0]); },
         .net_admin = true},
    };
}

CablePorts::~CablePorts() {
    cables_.unplug_all(net_);
}

bus::Status CablePorts::plug(bus::Words w, const bus::Caller& caller) {
    // Held until after plug() has let go of the cables' lock: if the peer was
    // removed meanwhile, this may be its last reference, and its end calls
    // back into the cables.
    std::shared_ptr<bus::Network> peer = directory_.find(w[0]);
    if (!peer) {
        return bus::Status::error(std::errc::no_such_file_or_directory,
                                  fmt::format("no network {}", w[0]));
    }
    auto port_arg = [](std::string_view word, const bus::Network& n, const char* what,
                       std::optional<bus::PortId>& out) {
        std::uint64_t id = 0;
        bus::Status s = bus::parse_uint(word, 0, n.port_count() - 1, what, id);
        if (s.ok()) out = static_cast<bus::PortId>(id);
        return s;
    };
    std::optional<bus::PortId> port;
    std::optional<bus::PortId> peer_port;
    if (w.size() > 1) {
        if (bus::Status s = port_arg(w[1], net_, "port", port); !s.ok()) return s;
    }
    if (w.size() > 2) {
        if (bus::Status s = port_arg(w[2], *peer, "peer port", peer_port); !s.ok()) return s;
    }
    // The cable's far end is a port its writer reads and writes through this
    // network: CAP_NET_ADMIN does not make NET's modes moot.
    if (bus::Status s = directory_.may_open(w[0], peer_port, caller); !s.ok()) return s;
    return cables_.plug(net_, port, peer, peer_port);
}

}  // namespace ipnfs::netdev
