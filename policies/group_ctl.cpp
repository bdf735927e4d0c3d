// The group's ctl verbs, the settings it describes, and its stats section.
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bus/network.hpp"
#include "policies/group.hpp"

namespace ipnfs::policies {

namespace {

constexpr std::uint64_t kMaxInstance = std::numeric_limits<std::uint32_t>::max();
constexpr std::string_view kDestForms =
    "'broadcast', 'port [N:]P', 'anycast I' or 'multicast L[-U]'";

bus::Status parse_instance(std::string_view word, std::uint32_t& out) {
    std::uint64_t v = 0;
    if (auto s = bus::parse_uint(word, 0, kMaxInstance, "instance", v); !s.ok()) return s;
    out = static_cast<std::uint32_t>(v);
    return bus::Status::success();
}

// "L" or "L-U" with L <= U.
bus::Status parse_range(std::string_view word, std::uint32_t& lower, std::uint32_t& upper) {
    std::size_t dash = word.find('-');
    bool ok = parse_instance(word.substr(0, dash), lower).ok();
    upper = lower;
    if (ok && dash != std::string_view::npos)
        ok = parse_instance(word.substr(dash + 1), upper).ok();
    if (!ok || upper < lower) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("multicast must be an instance or a range LOWER-UPPER of instances from 0 "
                        "to {}, lowest first, not '{}'",
                        kMaxInstance, word));
    }
    return bus::Status::success();
}

// The words after the port: a form and, but for broadcast, its number.
bus::Status parse_dest(bus::Words w, bus::Address& out) {
    bool number = w.size() == 2;
    if (w[0] == "broadcast" && !number) {
        out = {bus::To::broadcast, 0, 0};
        return bus::Status::success();
    }
    if (w[0] == "port" && number) {
        // An address, not a port of today's network: it may receive once
        // the network grows, and describe's lines must read back either way.
        // "N:P" is node N's port P on a cluster network (N 0: this host).
        std::string_view word = w[1];
        std::uint64_t node = 0;
        if (std::size_t colon = word.find(':'); colon != std::string_view::npos) {
            if (auto s =
                    bus::parse_uint(word.substr(0, colon), 0, bus::Message::kMaxNode, "node", node);
                !s.ok()) {
                return s;
            }
            word = word.substr(colon + 1);
        }
        std::uint64_t port = 0;
        if (auto s = bus::parse_uint(word, 0, bus::Limits::kMaxPorts - 1, "port", port); !s.ok()) {
            return s;
        }
        out = {bus::To::port, static_cast<std::uint32_t>(port), static_cast<std::uint32_t>(node)};
        return bus::Status::success();
    }
    if (w[0] == "anycast" && number) {
        std::uint32_t instance = 0;
        if (auto s = parse_instance(w[1], instance); !s.ok()) return s;
        out = {bus::To::anycast, instance, instance};
        return bus::Status::success();
    }
    if (w[0] == "multicast" && number) {
        std::uint32_t lower = 0;
        std::uint32_t upper = 0;
        if (auto s = parse_range(w[1], lower, upper); !s.ok()) return s;
        out = {bus::To::multicast, lower, upper};
        return bus::Status::success();
    }
    std::string given = fmt::format("{}", fmt::join(w, " "));
    return bus::Status::error(std::errc::invalid_argument,
                              fmt::format("dest must be {}, not '{}'", kDestForms, given));
}

// A destination as dest's words, joined by `sep`.
std::string dest_text(const bus::Address& a, char sep) {
    switch (a.to) {
        case bus::To::port:
            if (a.upper != 0) return fmt::format("port{}{}:{}", sep, a.upper, a.lower);
            return fmt::format("port{}{}", sep, a.lower);
        case bus::To::anycast:
            return fmt::format("anycast{}{}", sep, a.lower);
        case bus::To::multicast:
            if (a.lower == a.upper) return fmt::format("multicast{}{}", sep, a.lower);
            return fmt::format("multicast{}{}-{}", sep, a.lower, a.upper);
        case bus::To::standard:
        case bus::To::broadcast:
            break;
    }
    return "broadcast";
}

}  // namespace

void Group::build_commands() {
    commands_ = {
        {.verb = "member",
         .args = "PORT INSTANCE|none",
         .nargs = 2,
         .help = "the port's member identity (0-4294967295), which several ports may share",
         .run =
             [this](bus::Words w) {
                 bus::PortId port = 0;
                 if (auto s = parse_port(w[0], port); !s.ok()) return s;
                 std::optional<std::uint32_t> instance;
                 if (w[1] != "none") {
                     std::uint32_t i = 0;
                     if (!parse_instance(w[1], i).ok()) {
                         return bus::Status::error(
                             std::errc::invalid_argument,
                             fmt::format("instance must be a whole number from 0 to {} or 'none', "
                                         "not '{}'",
                                         kMaxInstance, w[1]));
                     }
                     instance = i;
                 }
                 set_instance(port, instance);
                 return bus::Status::success();
             },
         .holder = bus::Holder::reader},
        {.verb = "dest",
         .args = "PORT broadcast|port [N:]P|anycast I|multicast L[-U]",
         .nargs = 2,
         .help = "where the port's messages go when they name no address (default broadcast; "
                 "N:P is node N's port P on a cluster network)",
         .run =
             [this](bus::Words w) {
                 bus::PortId port = 0;
                 if (auto s = parse_port(w[0], port); !s.ok()) return s;
                 bus::Address dest;
                 if (auto s = parse_dest(w.subspan(1), dest); !s.ok()) return s;
                 members_[port].dest = dest;
                 return bus::Status::success();
             },
         .optional = 1,
         .holder = bus::Holder::writer},
        {.verb = "loopback",
         .args = "PORT on|off",
         .nargs = 2,
         .help = "the port also receives its own multicasts and broadcasts",
         .run =
             [this](bus::Words w) {
                 bus::PortId port = 0;
                 if (auto s = parse_port(w[0], port); !s.ok()) return s;
                 bool on = false;
                 if (auto s = bus::parse_on_off(w[1], "loopback", on); !s.ok()) return s;
                 members_[port].loopback = on;
                 return bus::Status::success();
             },
         .holder = bus::Holder::reader},
    };
}

bus::Status Group::parse_port(std::string_view word, bus::PortId& out) const {
    if (members_.empty()) {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("no port '{}': the network has no ports", word));
    }
    std::uint64_t port = 0;
    if (auto s = bus::parse_uint(word, 0, members_.size() - 1, "port", port); !s.ok()) return s;
    out = static_cast<bus::PortId>(port);
    return bus::Status::success();
}

void Group::reset_port(bus::PortId port) {
    set_instance(port, std::nullopt);
    members_[port].dest = kBroadcast;
    members_[port].loopback = false;
}

void Group::set_instance(bus::PortId port, std::optional<std::uint32_t> instance) {
    release(port);
    members_[port].instance = instance;
    hold(port);
}

void Group::describe(std::string& out) const {
    for (bus::PortId port = 0; port < members_.size(); ++port) {
        const Member& m = members_[port];
        if (m.instance) out += fmt::format("member {} {}\n", port, *m.instance);
        if (m.dest.to != bus::To::broadcast) {
            out += fmt::format("dest {} {}\n", port, dest_text(m.dest, ' '));
        }
        if (m.loopback) out += fmt::format("loopback {} on\n", port);
    }
}

void Group::stats(std::string& out) const {
    out += fmt::format("group unicast {} anycast {} multicast {} broadcast {} unreachable {}\n",
                       counters_[unicast], counters_[anycast], counters_[multicast],
                       counters_[broadcast], counters_[unreachable]);
    // One word per value, so that each line reads as key value pairs.
    for (bus::PortId port = 0; port < members_.size(); ++port) {
        const Member& m = members_[port];
        if (!m.instance && m.dest.to == bus::To::broadcast && !m.loopback) continue;
        out += fmt::format("member {} instance {} dest {} loopback {}\n", port,
                           m.instance ? fmt::format("{}", *m.instance) : "none",
                           dest_text(m.dest, ':'), m.loopback ? "on" : "off");
    }
    // Other hosts' receivers on a cluster network: what this host can address.
    for (const auto& [port, instance] : remote_) {
        out += fmt::format("remote {}:{} instance {}\n", port.node, port.port,
                           instance ? fmt::format("{}", *instance) : "none");
    }
}

}  // namespace ipnfs::policies
