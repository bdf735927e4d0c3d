// IEEE 802.1D (1998) spanning tree, as the Linux bridge speaks it
// (net/bridge/br_stp*.c): root election, port roles and states, the
// timers and topology change.  A pure state machine: BPDUs and time come in
// as arguments (a clock the caller reads, so tests run the timers without
// sleeping), BPDUs to send go out into an outbox.  The switch
// (policies/switch.cpp) drives it and frames what it sends.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/ethernet.hpp"

namespace ipnfs::policies::stp {

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;
using Time = Clock::time_point;

// Bridge id: priority in the top 16 bits, MAC in the low 48, so that the
// lower id wins as a number (802.1D 8.5.3.7 compares them this way).
using BridgeId = std::uint64_t;
inline BridgeId make_bridge_id(std::uint16_t priority, ethernet::Mac mac) {
    return (BridgeId{priority} << 48) | (mac & 0xffff'ffff'ffffULL);
}

// The ctl ranges.  Times are whole seconds, the Linux bridge's ranges
// (802.1D-1998 table 8-3, but a forward delay from 2 s as Linux allows).
inline constexpr std::uint16_t kDefaultPriority = 32768;
inline constexpr std::uint32_t kDefaultPathCost = 100;  // Linux's for an unknown speed
inline constexpr std::uint32_t kMaxPathCost = 65535;
inline constexpr unsigned kDefaultPortPriority = 128;  // 0-240 in steps of 16 (802.1D-2004)
inline constexpr unsigned kPortPriorityStep = 16;
inline constexpr unsigned kMaxPortPriority = 240;
// Port numbers are 12 bits: port N of the network is STP port N+1.
inline constexpr std::size_t kMaxPorts = 4095;
inline constexpr unsigned kDefaultHello = 2, kMinHello = 1, kMaxHello = 10;
inline constexpr unsigned kDefaultMaxAge = 20, kMinMaxAge = 6, kMaxMaxAge = 40;
inline constexpr unsigned kDefaultForwardDelay = 15, kMinForwardDelay = 2, kMaxForwardDelay = 30;

enum class PortState : std::uint8_t { disabled, blocking, listening, learning, forwarding };
enum class Role : std::uint8_t { disabled, root, designated, blocked };
std::string_view name(PortState state);
std::string_view name(Role role);

// A BPDU's content (802.1D 9.3.1, 9.3.2); times in 1/256 s, as on the wire.
struct Bpdu {
    enum class Type : std::uint8_t { config, tcn };
    Type type = Type::config;
    bool tc = false;   // topology change
    bool tca = false;  // topology change acknowledgment
    BridgeId root = 0;
    std::uint32_t root_cost = 0;
    BridgeId bridge = 0;
    std::uint16_t port = 0;
    std::uint16_t message_age = 0;
    std::uint16_t max_age = 0;
    std::uint16_t hello = 0;
    std::uint16_t forward_delay = 0;
};

// The bridge group address every BPDU goes to: a switch running STP keeps
// frames for it to itself (802.1D 7.12.6).
inline constexpr ethernet::Mac kGroupAddress = 0x0180'c200'0000ULL;

// A whole Ethernet frame holding a BPDU (802.3 length, LLC 42 42 03), or
// nullopt: any other frame, or one too short for what it claims.  Every
// byte read is bounds-checked: port files let anyone write one.
std::optional<Bpdu> parse(std::span<const std::byte> frame);
// The frame for `bpdu` from `src`, padded to Ethernet's 60-byte minimum.
void encode(const Bpdu& bpdu, ethernet::Mac src, std::vector<std::byte>& out);

class Bridge {
  public:
    struct Sent {
        std::size_t port;
        Bpdu bpdu;
    };
    struct PortView {
        PortState state;
        Role role;
        std::uint32_t path_cost;
        unsigned priority;
    };

    // Ports 0..count-1 (at most kMaxPorts take part), all down.
    void set_ports(std::size_t count);
    void set_bridge_id(BridgeId id, Time now);
    void set_path_cost(std::size_t port, std::uint32_t cost, Time now);
    void set_port_priority(std::size_t port, unsigned priority, Time now);
    // The times this bridge uses when it is the root (seconds).
    void set_times(unsigned hello, unsigned max_age, unsigned forward_delay);

    // STP on: the bridge believes itself the root and every up port starts
    // in blocking.  Off: every port forwards, nothing is sent.
    void enable(Time now);
    void disable();
    [[nodiscard]] bool enabled() const { return enabled_; }

    // The port can carry frames (its reader is there) / no longer.
    void port_up(std::size_t port, Time now);
    void port_down(std::size_t port, Time now);

    void received(std::size_t port, const Bpdu& bpdu, Time now);
    // Runs every timer that expired by `now`.
    void tick(Time now);
    // When tick() next has work; nullopt: never (off).
    [[nodiscard]] std::optional<Time> next_deadline() const;
    // BPDUs to send since the last call, in order.
    std::vector<Sent> take_outbox() { return std::exchange(outbox_, {}); }

    // Whether frames from/to the port are forwarded, and learned from.
    [[nodiscard]] bool forwarding(std::size_t port) const;
    [[nodiscard]] bool learning(std::size_t port) const;
    // While a topology change lasts, MAC entries age out after the forward
    // delay (802.1D 8.3.5).
    [[nodiscard]] std::optional<Duration> short_ageing() const;

    [[nodiscard]] PortView port(std::size_t port) const;
    [[nodiscard]] BridgeId bridge_id() const { return bridge_id_; }
    [[nodiscard]] BridgeId root_id() const { return designated_root_; }
    [[nodiscard]] std::uint32_t root_path_cost() const { return root_path_cost_; }
    // The network's port number of the root port, nullopt on the root.
    [[nodiscard]] std::optional<std::size_t> root_port() const { return root_port_; }
    [[nodiscard]] bool is_root() const { return designated_root_ == bridge_id_; }
    [[nodiscard]] std::uint64_t topology_changes() const { return topology_changes_; }
    [[nodiscard]] std::optional<Time> last_topology_change() const { return last_change_; }
    [[nodiscard]] bool topology_change() const { return topology_change_; }
    [[nodiscard]] unsigned hello() const { return bridge_hello_; }
    [[nodiscard]] unsigned max_age() const { return bridge_max_age_; }
    [[nodiscard]] unsigned forward_delay() const { return bridge_forward_delay_; }

  private:
    struct Port {
        bool up = false;
        PortState state = PortState::disabled;
        std::uint32_t path_cost = kDefaultPathCost;
        unsigned priority = kDefaultPortPriority;
        BridgeId designated_root = 0;
        std::uint32_t designated_cost = 0;
        BridgeId designated_bridge = 0;
        std::uint16_t designated_port = 0;
        bool topology_change_ack = false;
        bool config_pending = false;
        std::optional<Time> message_age_timer;  // when the root's info expires
        std::optional<Time> forward_delay_timer;
        std::optional<Time> hold_timer;
    };

    [[nodiscard]] std::uint16_t port_id(std::size_t port) const;
    [[nodiscard]] bool takes_part(std::size_t port) const {
        return enabled_ && port < ports_.size() && ports_[port].state != PortState::disabled;
    }
    [[nodiscard]] bool designated(std::size_t port) const;
    [[nodiscard]] bool better_root_port(std::size_t port) const;
    [[nodiscard]] bool should_be_designated(std::size_t port) const;
    [[nodiscard]] bool supersedes(std::size_t port, const Bpdu& bpdu) const;
    [[nodiscard]] bool designated_for_some_port() const;

    void init_port(std::size_t port);
    void become_designated(std::size_t port);
    void root_selection();
    void designated_selection();
    void configuration_update();
    void port_state_selection(Time now);
    void make_forwarding(std::size_t port, Time now);
    void make_blocking(std::size_t port, Time now);
    void become_root(Time now);
    void topology_change_detection(Time now);
    void set_topology_change(bool on, Time now);
    void transmit_config(std::size_t port, Time now);
    void config_generation(Time now);
    void transmit_tcn();
    void record_config(std::size_t port, const Bpdu& bpdu, Time now);
    void received_config(std::size_t port, const Bpdu& bpdu, Time now);
    void received_tcn(std::size_t port, Time now);
    void message_age_expired(std::size_t port, Time now);
    void forward_delay_expired(std::size_t port, Time now);
    // Every id and port is re-derived after a setting changes.
    void reconfigure(Time now);

    bool enabled_ = false;
    std::vector<Port> ports_;
    std::vector<Sent> outbox_;

    BridgeId bridge_id_ = make_bridge_id(kDefaultPriority, 0);
    BridgeId designated_root_ = bridge_id_;
    std::uint32_t root_path_cost_ = 0;
    std::optional<std::size_t> root_port_;
    // Times in use (the root's, learned from its BPDUs) and our own.
    Duration max_age_{}, hello_{}, forward_delay_{};
    unsigned bridge_hello_ = kDefaultHello;
    unsigned bridge_max_age_ = kDefaultMaxAge;
    unsigned bridge_forward_delay_ = kDefaultForwardDelay;
    bool topology_change_ = false;           // the TC flag (ours as root, the root's else)
    bool topology_change_detected_ = false;  // a TCN is to go toward the root
    std::optional<Time> hello_timer_;
    std::optional<Time> tcn_timer_;
    std::optional<Time> topology_change_timer_;
    std::uint64_t topology_changes_ = 0;
    std::optional<Time> last_change_;

  public:
    Bridge() { set_times(kDefaultHello, kDefaultMaxAge, kDefaultForwardDelay); }
};

}  // namespace ipnfs::policies::stp
