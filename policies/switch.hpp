// The switch: an Ethernet learning switch with 802.1Q VLANs and port
// mirroring (AF_IPN's IPN_VDESWITCH, VDE's vde_switch).  Each frame goes to
// the port its destination MAC was last seen on in its VLAN, or, when that is
// a group address or unknown, to every attached port of the VLAN; never back
// to its sender.  Tags are added or removed at the edge, so one frame may
// leave in two forms: as it was sent, and rewritten (a Route variant).
// With `stp on` it runs 802.1D spanning tree (policies/stp.hpp,
// switch_stp.cpp): it keeps BPDUs to itself, sends its own, and forwards
// only between ports in the forwarding state.
// With `scope cluster` it is one switch across hosts (docs/cluster.md, the
// switch across hosts): every daemon's copy learns from the group's one
// order, so all agree where each address is; each delivers to its own ports.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "bus/policy.hpp"
#include "policies/ethernet.hpp"
#include "policies/mac_table.hpp"
#include "policies/stp.hpp"
#include "policies/vlan_members.hpp"

namespace ipnfs::policies {

class Switch final : public bus::Policy {
  public:
    using Clock = std::chrono::steady_clock;

    // `now` tells the age of MAC entries; tests pass their own clock.
    explicit Switch(std::function<Clock::time_point()> now = Clock::now);

    [[nodiscard]] std::string_view name() const override { return "switch"; }
    void on_ports(bus::PortId count) override;
    void on_attach(bus::PortId port) override;
    void on_detach(bus::PortId port) override;
    void route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;
    void sent(bus::PortId from, const bus::Route& route) override;
    void on_network(std::string_view name) override;
    std::optional<Clock::time_point> tick(bus::Originate& out) override;
    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override;
    void stats(std::string& out) const override;
    [[nodiscard]] bool ethernet() const override { return true; }
    // ---- cluster scope (switch.cpp) ----
    [[nodiscard]] bool spans_hosts() const override { return true; }
    [[nodiscard]] bus::Status spans_hosts_now() const override;
    void on_scope(bool cluster) override;
    void on_remote(const bus::Origin& port, const bus::Presence* presence) override;
    void place(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;

  private:
    using Vid = ethernet::Vid;
    static constexpr Vid kNoVlan = 0;  // a port without an untagged VLAN
    static constexpr Vid kDefaultVlan = 1;

    // What a route counts once accepted (bus::Route::tally), as bits.
    enum Tally : std::uint32_t {
        kMalformed = 1,
        kVlanDrop = 2,
        kTableFull = 4,
        kBpdu = 8,         // a BPDU the spanning tree takes (see pending_bpdu_)
        kStpDiscard = 16,  // from a port the spanning tree does not forward
        kFromMirror = 32,  // from a mirror port: dropped (a SPAN destination only listens)
    };

    // How a frame leaves a port: its bytes differ by form.
    enum class Form : std::uint8_t { untagged, tagged };

    struct SwitchPort {
        Vid untagged = kDefaultVlan;  // or kNoVlan
        std::vector<Vid> trunk;       // ascending, no repeats
        bool mirror = false;
        bool attached = false;
        std::uint64_t malformed = 0;
        std::uint64_t vlan_drops = 0;
        std::uint64_t mirror_drops = 0;  // frames it sent while a mirror: dropped
        std::uint64_t bpdus_in = 0;
        std::uint64_t bpdus_out = 0;
        std::uint64_t stp_discards = 0;
    };

    // ---- configuration (switch_ctl.cpp) ----
    void build_commands();
    bus::Status parse_port(std::string_view word, bus::PortId& out) const;
    void set_untagged(bus::PortId port, Vid vlan);
    void set_trunk(bus::PortId port, std::vector<Vid> vlans);
    void set_mirror(bus::PortId port, bool on);

    // ---- spanning tree (switch_stp.cpp) ----
    bus::Command stp_command();
    bus::Status run_stp(bus::Words w);
    void describe_stp(std::string& out) const;
    void stp_stats(std::string& out) const;
    [[nodiscard]] bool stp_on() const { return stp_.enabled(); }
    // Whether the port may carry frames now (always, with stp off).
    [[nodiscard]] bool stp_forwards(bus::PortId port) const {
        return !stp_.enabled() || stp_.forwarding(port);
    }

    // ---- membership ----
    // Whether the port sends and receives frames of the VLAN.
    [[nodiscard]] static bool carries(const SwitchPort& p, Vid vlan);
    // The port's VLANs in members_ (an attached port is in every VLAN it
    // carries; a detached one in none).
    void join_vlans(bus::PortId port);
    void leave_vlans(bus::PortId port);

    // ---- routing ----
    // The VLAN a frame from `p` belongs to, or kNoVlan if the port takes no
    // such frame.
    [[nodiscard]] static Vid ingress_vlan(const SwitchPort& p, const ethernet::Frame& f);
    // The VLAN of a frame as a trunk between hosts carries it: VLAN 1
    // untagged (or priority-tagged), every other VLAN tagged.  place() puts
    // each frame in that form, so the daemons that do not know its port's
    // VLANs classify it alike.
    [[nodiscard]] static Vid trunk_vlan(const ethernet::Frame& f) {
        return !f.tagged || f.vid() == 0 ? kDefaultVlan : f.vid();
    }
    [[nodiscard]] Form egress_form(bus::PortId port, Vid vlan) const {
        return ports_[port].untagged == vlan ? Form::untagged : Form::tagged;
    }
    // Where a known unicast destination is, if it can take the frame now: a
    // port of this host, or (node not 0) another host's port that
    // receives, as the group's order told this daemon.
    [[nodiscard]] std::optional<MacTable::Where> learned_port(Vid vlan, ethernet::Mac dst,
                                                              Clock::time_point now);
    [[nodiscard]] bool remote_receives(const MacTable::Where& where) const;
    // Names the port once per route (bus::Route::mark), in the list of its
    // form.
    void name_port(bus::PortId port, Vid vlan, std::optional<Form> sent, bus::Route& out);

    std::function<Clock::time_point()> now_;
    bus::CommandTable commands_;
    std::vector<SwitchPort> ports_;
    VlanMembers members_;
    std::vector<bus::PortId> mirrors_;  // attached mirror ports
    MacTable table_;
    std::uint64_t malformed_ = 0;
    std::uint64_t vlan_drops_ = 0;
    std::uint64_t table_full_ = 0;

    // `scope cluster`: frames come in the group's order, from this host's
    // ports or from another host's (`from` no port of ours).
    bool cluster_ = false;
    // Other hosts' ports that receive, as (node, port, daemon): a node may
    // have two daemons for a moment (one gone, its successor there).
    std::set<std::tuple<std::uint32_t, bus::PortId, std::uint32_t>> remote_receivers_;

    stp::Bridge stp_;
    ethernet::Mac bridge_mac_ = 0;  // derived from the host and network names
    std::uint16_t stp_priority_ = stp::kDefaultPriority;
    // route() parses a BPDU, sent() hands it to the bridge: a route may be
    // tried again, and sent() comes once, right after the accepted one.
    std::optional<stp::Bpdu> pending_bpdu_;
    std::uint64_t bad_bpdus_ = 0;
    std::uint64_t stp_discards_ = 0;
    std::vector<std::byte> bpdu_frame_;  // tick()'s scratch

    // route()'s scratch, kept so a warm switch allocates nothing per frame:
    // the ports that get the frame rewritten, by form.
    std::array<std::vector<bus::PortId>, 2> rewritten_;
    std::vector<bus::PortId>& rewritten(Form form) {
        return rewritten_[static_cast<std::size_t>(form)];
    }
};

}  // namespace ipnfs::policies
