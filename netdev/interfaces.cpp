#include "netdev/interfaces.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "bus/log.hpp"

namespace ipnfs::netdev {

Interfaces::Interfaces(bus::Network& net, Engine& engine) : net_(net), engine_(engine) {
    commands_ = {
        {.verb = "tap",
         .args = "NAME [PORT]",
         .nargs = 1,
         .help = "create TAP interface NAME on PORT (default: the lowest free port); needs "
                 "CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return attach("tap", open_tap, w); },
         .optional = 1,
         .net_admin = true},
        {.verb = "untap",
         .args = "NAME",
         .nargs = 1,
         .help = "remove TAP interface NAME; needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return detach("tap", w[0]); },
         .net_admin = true},
        {.verb = "grab",
         .args = "IFACE [PORT]",
         .nargs = 1,
         .help = "attach existing interface IFACE (AF_PACKET, promiscuous); needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return attach("grab", open_grab, w); },
         .optional = 1,
         .net_admin = true},
        {.verb = "ungrab",
         .args = "IFACE",
         .nargs = 1,
         .help = "release grabbed interface IFACE; needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return detach("grab", w[0]); },
         .net_admin = true},
    };
}

Interfaces::~Interfaces() {
    hang_up();
}

bus::Status Interfaces::attach(std::string_view kind, Opener open, bus::Words w) {
    std::optional<bus::PortId> port;
    if (w.size() > 1) {
        std::uint64_t id = 0;
        if (auto s = bus::parse_uint(w[1], 0, net_.port_count() - 1, "port", id); !s.ok()) return s;
        port = static_cast<bus::PortId>(id);
    }
    MutexLock lock(mu_);
    if (hung_up_) {
        return bus::Status::error(std::errc::no_such_file_or_directory, "network is removed");
    }
    for (const auto& d : devices_) {
        if (d->link().name() == w[0]) {
            return bus::Status::error(std::errc::device_or_resource_busy,
                                      fmt::format("{} is already attached here ({} on port {})",
                                                  w[0], d->link().kind(), d->port()));
        }
    }
    std::unique_ptr<Link> link;
    if (bus::Status s = open(w[0], link); !s.ok()) return s;
    bus::Connection conn;
    bus::Status s = port ? net_.connect(*port, true, true, conn, true)
                         : net_.connect_any(true, true, conn, true);
    if (!s.ok()) return s;
    auto device = std::make_unique<Device>(net_, engine_, std::move(link), conn);
    device->start();
    bus::log::info({net_.name(), conn.id, fmt::format("{}-attach", kind)}, "{} {} attached", kind,
                   w[0]);
    devices_.push_back(std::move(device));
    return bus::Status::success();
}

bus::Status Interfaces::detach(std::string_view kind, std::string_view name) {
    std::unique_ptr<Device> device;
    {
        MutexLock lock(mu_);
        auto it = std::find_if(devices_.begin(), devices_.end(), [&](const auto& d) {
            return d->link().kind() == kind && d->link().name() == name;
        });
        if (it == devices_.end()) {
            return bus::Status::error(std::errc::no_such_device,
                                      fmt::format("no {} {} on this network", kind, name));
        }
        device = std::move(*it);
        devices_.erase(it);
    }
    bus::log::info({net_.name(), device->port(), fmt::format("{}-detach", kind)}, "{} {} detached",
                   kind, name);
    destroy(std::move(device));
    return bus::Status::success();
}

void Interfaces::destroy(std::unique_ptr<Device> device) {
    // On the engine thread, between its turns: nothing it is doing can be
    // about this device then.
    engine_.run_sync([&] {
        device->detach();
        device.reset();
    });
}

void Interfaces::hang_up() {
    std::vector<std::unique_ptr<Device>> devices;
    {
        MutexLock lock(mu_);
        hung_up_ = true;
        devices.swap(devices_);
    }
    for (auto& device : devices) destroy(std::move(device));
}

void Interfaces::describe(std::string& out) const {
    MutexLock lock(mu_);
    for (const auto& d : devices_) {
        out += fmt::format("{} {} {}\n", d->link().kind(), d->link().name(), d->port());
    }
}

void Interfaces::stats(std::string& out) const {
    MutexLock lock(mu_);
    if (devices_.empty()) return;
    out +=
        fmt::format("{:<16} {:<4} {:>6} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8}\n", "iface", "kind",
                    "port", "state", "frames_in", "bytes_in", "frames_out", "bytes_out", "drops");
    for (const auto& d : devices_) {
        const DeviceCounters& c = d->counters();
        out += fmt::format(
            "{:<16} {:<4} {:>6} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8}\n", d->link().name(),
            d->link().kind(), d->port(), d->state(), c.frames_in.load(std::memory_order_relaxed),
            c.bytes_in.load(std::memory_order_relaxed),
            c.frames_out.load(std::memory_order_relaxed),
            c.bytes_out.load(std::memory_order_relaxed), c.drops.load(std::memory_order_relaxed));
    }
}

}  // namespace ipnfs::netdev
