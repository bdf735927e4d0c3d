// The switch's spanning tree: its ctl verb, what it describes and counts,
// its identity, and the frames it sends (Policy::tick).
#include <unistd.h>

#include <array>
#include <chrono>

#include <fmt/format.h>

#include "policies/switch.hpp"

namespace ipnfs::policies {

namespace {

constexpr std::uint64_t kMaxPriority = 65535;  // 802.1D-1998: any 16-bit value

std::string format_bridge_id(stp::BridgeId id) {
    // As Linux's bridge prints it: priority, then the MAC without colons.
    return fmt::format("{:04x}.{:012x}", id >> 48, id & 0xffff'ffff'ffffULL);
}

bus::Status usage() {
    return bus::Status::error(
        std::errc::invalid_argument,
        "usage: stp on|off, stp priority N, stp hello|maxage|forward-delay SECONDS, "
        "stp cost PORT N, stp port-priority PORT N");
}

}  // namespace

bus::Command Switch::stp_command() {
    return {
        .verb = "stp",
        .args = "on|off | priority N | hello|maxage|forward-delay S | cost|port-priority PORT N",
        .nargs = 1,
        .help =
            "802.1D spanning tree (default off; one host's: not on a cluster network) and its "
            "settings",
        .run = [this](bus::Words w) { return run_stp(w); },
        .optional = 2};
}

bus::Status Switch::run_stp(bus::Words w) {
    std::string_view what = w[0];
    Clock::time_point now = now_();
    if (w.size() == 1) {
        bool on = false;
        if (auto s = bus::parse_on_off(what, "stp", on); !s.ok()) return usage();
        if (on && cluster_) {
            return bus::Status::error(
                std::errc::not_supported,
                "the spanning tree is one host's: a switch that spans hosts runs none "
                "(write 'scope node' first; docs/cluster.md, the switch across hosts)");
        }
        if (on) {
            stp_.enable(now);
        } else {
            stp_.disable();
            table_.set_expire_cap(std::nullopt);
        }
        return bus::Status::success();
    }
    std::uint64_t v = 0;
    if (w.size() == 2) {
        if (what == "priority") {
            if (auto s = bus::parse_uint(w[1], 0, kMaxPriority, "stp priority", v); !s.ok())
                return s;
            stp_priority_ = static_cast<std::uint16_t>(v);
            stp_.set_bridge_id(stp::make_bridge_id(stp_priority_, bridge_mac_), now);
            return bus::Status::success();
        }
        unsigned hello = stp_.hello();
        unsigned max_age = stp_.max_age();
        unsigned forward_delay = stp_.forward_delay();
        if (what == "hello") {
            if (auto s = bus::parse_uint(w[1], stp::kMinHello, stp::kMaxHello, "stp hello", v);
                !s.ok())
                return s;
            hello = static_cast<unsigned>(v);
        } else if (what == "maxage") {
            if (auto s = bus::parse_uint(w[1], stp::kMinMaxAge, stp::kMaxMaxAge, "stp maxage", v);
                !s.ok())
                return s;
            max_age = static_cast<unsigned>(v);
        } else if (what == "forward-delay") {
            if (auto s = bus::parse_uint(w[1], stp::kMinForwardDelay, stp::kMaxForwardDelay,
                                         "stp forward-delay", v);
                !s.ok())
                return s;
            forward_delay = static_cast<unsigned>(v);
        } else {
            return usage();
        }
        stp_.set_times(hello, max_age, forward_delay);
        return bus::Status::success();
    }
    bus::PortId port = 0;
    if (what == "cost") {
        if (auto s = parse_port(w[1], port); !s.ok()) return s;
        if (auto s = bus::parse_uint(w[2], 1, stp::kMaxPathCost, "stp cost", v); !s.ok()) return s;
        stp_.set_path_cost(port, static_cast<std::uint32_t>(v), now);
        return bus::Status::success();
    }
    if (what == "port-priority") {
        if (auto s = parse_port(w[1], port); !s.ok()) return s;
        if (auto s = bus::parse_uint(w[2], 0, stp::kMaxPortPriority, "stp port-priority", v);
            !s.ok() || v % stp::kPortPriorityStep != 0) {
            return bus::Status::error(
                std::errc::invalid_argument,
                fmt::format("stp port-priority must be a multiple of {} from 0 to {}, not '{}'",
                            stp::kPortPriorityStep, stp::kMaxPortPriority, w[2]));
        }
        stp_.set_port_priority(port, static_cast<unsigned>(v), now);
        return bus::Status::success();
    }
    return usage();
}

void Switch::on_network(std::string_view name) {
    // Stable across restarts and distinct between networks and hosts: a
    // locally administered unicast MAC from a hash (FNV-1a) of the host's
    // name and the network's.  Two daemons of one host with networks of one
    // name in one tree must differ by `stp priority`.
    std::array<char, 256> host{};
    if (gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    auto mix = [&hash](std::string_view bytes) {
        for (char c : bytes) {
            hash ^= static_cast<unsigned char>(c);
            hash *= 0x100000001b3ULL;
        }
    };
    mix(host.data());
    mix(std::string_view("\0", 1));
    mix(name);
    bridge_mac_ = (ethernet::Mac{0x02} << 40) | (hash & 0xff'ffff'ffffULL);
    stp_.set_bridge_id(stp::make_bridge_id(stp_priority_, bridge_mac_), now_());
}

std::optional<Switch::Clock::time_point> Switch::tick(bus::Originate& out) {
    if (!stp_.enabled()) return std::nullopt;
    stp_.tick(now_());
    for (const stp::Bridge::Sent& sent : stp_.take_outbox()) {
        if (sent.port >= ports_.size() || !ports_[sent.port].attached) continue;
        stp::encode(sent.bpdu, bridge_mac_, bpdu_frame_);
        out.send(static_cast<bus::PortId>(sent.port), bpdu_frame_);
        ++ports_[sent.port].bpdus_out;
    }
    table_.set_expire_cap(stp_.short_ageing());
    return stp_.next_deadline();
}

void Switch::describe_stp(std::string& out) const {
    // Settings first, `stp on` last: written back, the tree starts with them.
    if (stp_priority_ != stp::kDefaultPriority)
        out += fmt::format("stp priority {}\n", stp_priority_);
    if (stp_.hello() != stp::kDefaultHello) out += fmt::format("stp hello {}\n", stp_.hello());
    if (stp_.max_age() != stp::kDefaultMaxAge)
        out += fmt::format("stp maxage {}\n", stp_.max_age());
    if (stp_.forward_delay() != stp::kDefaultForwardDelay) {
        out += fmt::format("stp forward-delay {}\n", stp_.forward_delay());
    }
    for (bus::PortId port = 0; port < ports_.size(); ++port) {
        stp::Bridge::PortView v = stp_.port(port);
        if (v.path_cost != stp::kDefaultPathCost) {
            out += fmt::format("stp cost {} {}\n", port, v.path_cost);
        }
        if (v.priority != stp::kDefaultPortPriority) {
            out += fmt::format("stp port-priority {} {}\n", port, v.priority);
        }
    }
    if (stp_.enabled()) out += "stp on\n";
}

void Switch::stp_stats(std::string& out) const {
    if (!stp_.enabled()) return;
    Clock::time_point now = now_();
    std::string since = "never";
    if (auto last = stp_.last_topology_change()) {
        since = fmt::format("{}",
                            std::chrono::duration_cast<std::chrono::seconds>(now - *last).count());
    }
    std::string root_port = "none";
    if (auto rp = stp_.root_port()) root_port = fmt::format("{}", *rp);
    out += fmt::format(
        "stp bridge_id {} root_id {} root_port {} root_path_cost {} topology_change {} "
        "topology_changes {} since_change {} bad_bpdus {} discards {}\n",
        format_bridge_id(stp_.bridge_id()), format_bridge_id(stp_.root_id()), root_port,
        stp_.root_path_cost(), stp_.topology_change() ? 1 : 0, stp_.topology_changes(), since,
        bad_bpdus_, stp_discards_);
    for (bus::PortId port = 0; port < ports_.size(); ++port) {
        const SwitchPort& p = ports_[port];
        if (!p.attached) continue;
        stp::Bridge::PortView v = stp_.port(port);
        out += fmt::format(
            "stport {} role {} state {} cost {} priority {} bpdus_in {} bpdus_out {} discards {}\n",
            port, stp::name(v.role), stp::name(v.state), v.path_cost, v.priority, p.bpdus_in,
            p.bpdus_out, p.stp_discards);
    }
}

}  // namespace ipnfs::policies
