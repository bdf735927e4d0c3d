// The switch's ctl verbs, the settings it describes, and its stats section.
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "policies/switch.hpp"

namespace ipnfs::policies {

namespace {

constexpr std::uint64_t kMaxExpire = 1000000;
constexpr std::uint64_t kMaxMacLimit = 1U << 20;

bool parse_vid(std::string_view word, ethernet::Vid& out) {
    std::uint64_t v = 0;
    if (!bus::parse_uint(word, ethernet::kMinVid, ethernet::kMaxVid, "vlan", v).ok()) return false;
    out = static_cast<ethernet::Vid>(v);
    return true;
}

// "none" or one VLAN id.
bus::Status parse_untagged(std::string_view word, ethernet::Vid none, ethernet::Vid& out) {
    if (word == "none") {
        out = none;
    } else if (!parse_vid(word, out)) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("vlan must be a VLAN id from {} to {} or 'none', not '{}'",
                        ethernet::kMinVid, ethernet::kMaxVid, word));
    }
    return bus::Status::success();
}

// "none" or "10,20,30" (any order, repeats allowed), made ascending and unique.
bus::Status parse_trunk(std::string_view word, std::vector<ethernet::Vid>& out) {
    out.clear();
    if (word == "none") return bus::Status::success();
    std::size_t start = 0;
    for (;;) {
        std::size_t comma = word.find(',', start);
        std::string_view item = word.substr(start, comma - start);
        ethernet::Vid vid = 0;
        if (!parse_vid(item, vid)) {
            return bus::Status::error(
                std::errc::invalid_argument,
                fmt::format("trunk must be VLAN ids from {} to {} separated by commas, or 'none', "
                            "not '{}'",
                            ethernet::kMinVid, ethernet::kMaxVid, item.empty() ? word : item));
        }
        out.push_back(vid);
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    std::ranges::sort(out);
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return bus::Status::success();
}

}  // namespace

void Switch::build_commands() {
    commands_ = {
        {.verb = "vlan",
         .args = "PORT VID|none",
         .nargs = 2,
         .help = "the port's untagged VLAN (1-4094; default 1)",
         .run =
             [this](bus::Words w) {
                 bus::PortId port = 0;
                 if (auto s = parse_port(w[0], port); !s.ok()) return s;
                 Vid vlan = kNoVlan;
                 if (auto s = parse_untagged(w[1], kNoVlan, vlan); !s.ok()) return s;
                 set_untagged(port, vlan);
                 return bus::Status::success();
             }},
        {.verb = "trunk",
         .args = "PORT VID[,VID...]|none",
         .nargs = 2,
         .help = "the VLANs the port carries tagged (1-4094 each)",
         .run =
             [this](bus::Words w) {
                 bus::PortId port = 0;
                 if (auto s = parse_port(w[0], port); !s.ok()) return s;
                 std::vector<Vid> vlans;
                 if (auto s = parse_trunk(w[1], vlans); !s.ok()) return s;
                 set_trunk(port, std::move(vlans));
                 return bus::Status::success();
             }},
        {.verb = "mirror",
         .args = "PORT on|off",
         .nargs = 2,
         .help = "the port gets a copy of every frame of every VLAN; what it sends is dropped",
         .run =
             [this](bus::Words w) {
                 bus::PortId port = 0;
                 if (auto s = parse_port(w[0], port); !s.ok()) return s;
                 bool on = false;
                 if (auto s = bus::parse_on_off(w[1], "mirror", on); !s.ok()) return s;
                 set_mirror(port, on);
                 return bus::Status::success();
             }},
        {.verb = "expire",
         .args = "SECONDS",
         .nargs = 1,
         .help = "MAC entries are forgotten after this idle time (1-1000000; default 300)",
         .run =
             [this](bus::Words w) {
                 std::uint64_t seconds = 0;
                 if (auto s = bus::parse_uint(w[0], 1, kMaxExpire, "expire", seconds); !s.ok()) {
                     return s;
                 }
                 table_.set_expire(std::chrono::seconds(seconds));
                 return bus::Status::success();
             }},
        {.verb = "maclimit",
         .args = "ENTRIES",
         .nargs = 1,
         .help = "most MAC entries learned (1-1048576; default 4096)",
         .run =
             [this](bus::Words w) {
                 std::uint64_t entries = 0;
                 if (auto s = bus::parse_uint(w[0], 1, kMaxMacLimit, "maclimit", entries);
                     !s.ok()) {
                     return s;
                 }
                 table_.set_limit(entries);
                 return bus::Status::success();
             }},
        {.verb = "flush",
         .args = "",
         .nargs = 0,
         .help = "forget every learned MAC",
         .run =
             [this](bus::Words) {
                 table_.clear();
                 return bus::Status::success();
             }},
    };
    commands_.push_back(stp_command());
}

bus::Status Switch::parse_port(std::string_view word, bus::PortId& out) const {
    if (ports_.empty()) {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("no port '{}': the network has no ports", word));
    }
    std::uint64_t port = 0;
    if (auto s = bus::parse_uint(word, 0, ports_.size() - 1, "port", port); !s.ok()) return s;
    out = static_cast<bus::PortId>(port);
    return bus::Status::success();
}

void Switch::set_untagged(bus::PortId port, Vid vlan) {
    leave_vlans(port);
    ports_[port].untagged = vlan;
    join_vlans(port);
}

void Switch::set_trunk(bus::PortId port, std::vector<Vid> vlans) {
    leave_vlans(port);
    ports_[port].trunk = std::move(vlans);
    join_vlans(port);
}

void Switch::set_mirror(bus::PortId port, bool on) {
    SwitchPort& p = ports_[port];
    if (p.mirror == on) return;
    p.mirror = on;
    if (!p.attached) return;
    if (on) {
        mirrors_.push_back(port);
    } else {
        std::erase(mirrors_, port);
    }
}

void Switch::describe(std::string& out) const {
    for (bus::PortId port = 0; port < ports_.size(); ++port) {
        const SwitchPort& p = ports_[port];
        if (p.untagged == kNoVlan) {
            out += fmt::format("vlan {} none\n", port);
        } else if (p.untagged != kDefaultVlan) {
            out += fmt::format("vlan {} {}\n", port, p.untagged);
        }
        if (!p.trunk.empty()) out += fmt::format("trunk {} {}\n", port, fmt::join(p.trunk, ","));
        if (p.mirror) out += fmt::format("mirror {} on\n", port);
    }
    if (table_.expire() != MacTable::kDefaultExpire) {
        out += fmt::format("expire {}\n", table_.expire().count());
    }
    if (table_.limit() != MacTable::kDefaultLimit) {
        out += fmt::format("maclimit {}\n", table_.limit());
    }
    describe_stp(out);
}

void Switch::stats(std::string& out) const {
    Clock::time_point now = now_();
    std::vector<MacTable::Entry> entries = table_.live(now);
    std::ranges::sort(entries, [](const MacTable::Entry& a, const MacTable::Entry& b) {
        return std::tie(a.vlan, a.where, a.mac) < std::tie(b.vlan, b.where, b.mac);
    });
    out += fmt::format(
        "switch mac_entries {} maclimit {} expire {} malformed {} vlan_drops {} table_full {}\n",
        entries.size(), table_.limit(), table_.expire().count(), malformed_, vlan_drops_,
        table_full_);
    for (const MacTable::Entry& e : entries) {
        auto age = std::chrono::duration_cast<std::chrono::seconds>(now - e.seen).count();
        // Another host's port as `dest` names it, node:port.
        std::string port = e.where.node == 0 ? fmt::format("{}", e.where.port)
                                             : fmt::format("{}:{}", e.where.node, e.where.port);
        out += fmt::format("mac {} vlan {} port {} age {}\n", ethernet::format_mac(e.mac), e.vlan,
                           port, std::max<decltype(age)>(age, 0));
    }
    for (bus::PortId port = 0; port < ports_.size(); ++port) {
        const SwitchPort& p = ports_[port];
        if (p.mirror_drops != 0) out += fmt::format("mirror {} dropped {}\n", port, p.mirror_drops);
        if (p.malformed == 0 && p.vlan_drops == 0) continue;
        out +=
            fmt::format("swport {} malformed {} vlan_drops {}\n", port, p.malformed, p.vlan_drops);
    }
    stp_stats(out);
}

}  // namespace ipnfs::policies
