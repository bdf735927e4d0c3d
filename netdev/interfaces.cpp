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
         .run = [this](bus::Words w) { return tap(w); },
         .optional = 1,
         .net_admin = true},
        {.verb = "untap",
         .args = "NAME",
         .nargs = 1,
         .help = "remove TAP interface NAME; needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return detach("tap", w[0]); },
         .net_admin = true},
        {.verb = "grab",
         .args = "IFACE [PORT] [rcvbuf BYTES]",
         .nargs = 1,
         .help = "attach existing interface IFACE (AF_PACKET, promiscuous), its socket's receive "
                 "buffer BYTES (default 4 MiB; alone on a grabbed IFACE: changes it); needs "
                 "CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return grab(w); },
         .optional = 3,
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

bus::Status Interfaces::tap(bus::Words w) {
    return attach("tap", open_tap, w[0],
                  w.size() > 1 ? std::optional<std::string_view>(w[1]) : std::nullopt);
}

bus::Status Interfaces::grab(bus::Words w) {
    std::size_t next = 1;
    std::optional<std::string_view> port;
    if (next < w.size() && w[next] != "rcvbuf") port = w[next++];
    std::uint64_t rcvbuf = 0;
    bool rcvbuf_given = next < w.size();
    if (rcvbuf_given) {
        if (w[next] != "rcvbuf" || next + 2 != w.size()) {
            return bus::Status::error(std::errc::invalid_argument,
                                      "usage: grab IFACE [PORT] [rcvbuf BYTES]");
        }
        if (auto s = bus::parse_uint(w[next + 1], 1, UINT64_MAX, "rcvbuf", rcvbuf); !s.ok()) {
            return s;
        }
    }
    if (rcvbuf_given && !port) {
        MutexLock lock(mu_);
        for (const auto& d : devices_) {
            if (d->link().kind() == "grab" && d->link().name() == w[0]) {
                return d->link().set_rcvbuf(rcvbuf);
            }
        }
    }
    return attach(
        "grab",
        [rcvbuf](std::string_view name, std::unique_ptr<Link>& out) {
            return open_grab(name, rcvbuf, out);
        },
        w[0], port);
}

bus::Status Interfaces::attach(std::string_view kind, const Opener& open, std::string_view name,
                               std::optional<std::string_view> port_word) {
    std::optional<bus::PortId> port;
    if (port_word) {
        std::uint64_t id = 0;
        if (auto s = bus::parse_uint(*port_word, 0, net_.port_count() - 1, "port", id); !s.ok()) {
            return s;
        }
        port = static_cast<bus::PortId>(id);
    }
    MutexLock lock(mu_);
    if (hung_up_) {
        return bus::Status::error(std::errc::no_such_file_or_directory, "network is removed");
    }
    for (const auto& d : devices_) {
        if (d->link().name() == name) {
            return bus::Status::error(std::errc::device_or_resource_busy,
                                      fmt::format("{} is already attached here ({} on port {})",
                                                  name, d->link().kind(), d->port()));
        }
    }
    std::unique_ptr<Link> link;
    if (bus::Status s = open(name, link); !s.ok()) return s;
    bus::Connection conn;
    bus::Status s = port ? net_.connect(*port, true, true, conn, true)
                         : net_.connect_any(true, true, conn, true);
    if (!s.ok()) return s;
    auto device = std::make_unique<Device>(net_, engine_, std::move(link), conn);
    device->start();
    bus::log::info({net_.name(), conn.id, fmt::format("{}-attach", kind)}, "{} {} attached", kind,
                   name);
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
        out += fmt::format("{} {} {}", d->link().kind(), d->link().name(), d->port());
        if (std::uint64_t bytes = d->link().rcvbuf(); bytes != 0) {
            out += fmt::format(" rcvbuf {}", bytes);
        }
        out += '\n';
    }
}

namespace {

// One interface's stats row, copied under the lock; the kernel's counters
// are asked for after it is released.
struct Row {
    std::string name;
    std::string_view kind, state;
    bus::PortId port = 0;
    std::uint64_t frames_in = 0, bytes_in = 0, frames_out = 0, bytes_out = 0, drops = 0;
    std::optional<std::uint64_t> socket_drops;
    bool running = false;
};

std::string count_or_dash(std::optional<std::uint64_t> n) {
    return n ? fmt::format("{}", *n) : std::string("-");
}

}  // namespace

void Interfaces::stats(std::string& out) const {
    std::vector<Row> rows;
    std::vector<InterfaceRef> refs;
    std::vector<std::size_t> ref_rows;  // the row each of refs is for
    {
        MutexLock lock(mu_);
        for (const auto& d : devices_) {
            const DeviceCounters& c = d->counters();
            const Link& link = d->link();
            Row r{.name = link.name(),
                  .kind = link.kind(),
                  .state = d->state(),
                  .port = d->port(),
                  .frames_in = c.frames_in.load(std::memory_order_relaxed),
                  .bytes_in = c.bytes_in.load(std::memory_order_relaxed),
                  .frames_out = c.frames_out.load(std::memory_order_relaxed),
                  .bytes_out = c.bytes_out.load(std::memory_order_relaxed),
                  .drops = c.drops.load(std::memory_order_relaxed),
                  .socket_drops = link.socket_drops(),
                  .running = d->state() == "running"};
            // A failed link's interface is gone, or another by now.
            if (std::optional<InterfaceRef> ref = r.running ? link.interface() : std::nullopt) {
                refs.push_back(std::move(*ref));
                ref_rows.push_back(rows.size());
            }
            rows.push_back(std::move(r));
        }
    }
    if (rows.empty()) return;
    std::vector<std::optional<InterfaceDrops>> kernel(rows.size());
    std::vector<std::optional<InterfaceDrops>> read = read_interface_drops(refs);
    for (std::size_t i = 0; i < read.size(); ++i) kernel[ref_rows[i]] = read[i];

    constexpr std::string_view kRow =
        "{:<16} {:<4} {:>6} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>10} {:>13} {:>12} {:>13}\n";
    out += fmt::format(kRow, "iface", "kind", "port", "state", "frames_in", "bytes_in",
                       "frames_out", "bytes_out", "drops", "sock_drops", "if_rx_dropped",
                       "if_rx_missed", "if_tx_dropped");
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        const std::optional<InterfaceDrops>& k = kernel[i];
        out += fmt::format(kRow, r.name, r.kind, r.port, r.state, r.frames_in, r.bytes_in,
                           r.frames_out, r.bytes_out, r.drops, count_or_dash(r.socket_drops),
                           count_or_dash(k ? std::optional(k->rx_dropped) : std::nullopt),
                           count_or_dash(k ? std::optional(k->rx_missed) : std::nullopt),
                           count_or_dash(k ? std::optional(k->tx_dropped) : std::nullopt));
    }
}

}  // namespace ipnfs::netdev
