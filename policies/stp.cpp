// The procedures follow 802.1D-1998 clause 8 and their Linux bridge names
// (br_stp.c, br_stp_timer.c, br_stp_bpdu.c), so the two can be read side by
// side; the Linux bridge is the peer it must agree with.
#include "policies/stp.hpp"

#include <algorithm>

namespace ipnfs::policies::stp {

namespace {

constexpr std::size_t kHeader = 14;    // dst, src, 802.3 length
constexpr std::size_t kLlc = 3;        // DSAP, SSAP, control
constexpr std::size_t kConfig = 35;    // a configuration BPDU
constexpr std::size_t kTcn = 4;        // a topology change notification BPDU
constexpr std::size_t kMinFrame = 60;  // Ethernet's, without the FCS
constexpr std::uint8_t kSap = 0x42;
constexpr std::uint8_t kUi = 0x03;
constexpr std::uint8_t kTypeConfig = 0x00;
constexpr std::uint8_t kTypeTcn = 0x80;
constexpr std::uint8_t kFlagTc = 0x01;
constexpr std::uint8_t kFlagTca = 0x80;
constexpr auto kHoldTime = std::chrono::seconds(1);             // 802.1D's Hold Time
constexpr auto kMessageAgeIncrement = std::chrono::seconds(1);  // Linux's MESSAGE_AGE_INCR

std::uint64_t read_be(std::span<const std::byte> bytes) {
    std::uint64_t v = 0;
    for (std::byte b : bytes) v = (v << 8) | std::to_integer<std::uint64_t>(b);
    return v;
}

void append_be(std::vector<std::byte>& out, std::uint64_t v, std::size_t bytes) {
    for (std::size_t i = bytes; i-- > 0;)
        out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

// 1/256 s on the wire; a time beyond 255 s cannot be said, and is clamped.
Duration from_wire(std::uint16_t t) {
    return std::chrono::duration_cast<Duration>(std::chrono::microseconds(t * 1'000'000LL / 256));
}
std::uint16_t to_wire(Duration d) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    return static_cast<std::uint16_t>(std::clamp<long long>(us * 256 / 1'000'000, 0, 0xffff));
}

}  // namespace

std::string_view name(PortState state) {
    switch (state) {
        case PortState::disabled:
            return "disabled";
        case PortState::blocking:
            return "blocking";
        case PortState::listening:
            return "listening";
        case PortState::learning:
            return "learning";
        case PortState::forwarding:
            return "forwarding";
    }
    return "?";
}

std::string_view name(Role role) {
    switch (role) {
        case Role::disabled:
            return "disabled";
        case Role::root:
            return "root";
        case Role::designated:
            return "designated";
        case Role::blocked:
            return "blocked";
    }
    return "?";
}

std::optional<Bpdu> parse(std::span<const std::byte> frame) {
    if (frame.size() < kHeader + kLlc + kTcn) return std::nullopt;
    if (read_be(frame.subspan(0, 6)) != kGroupAddress) return std::nullopt;
    // An 802.3 length, not an ethertype, that the frame holds; padding past
    // it is allowed (a short frame is padded to 60 bytes).
    std::uint64_t length = read_be(frame.subspan(12, 2));
    if (length > 1500 || length < kLlc + kTcn || kHeader + length > frame.size())
        return std::nullopt;
    std::span<const std::byte> llc = frame.subspan(kHeader, kLlc);
    if (llc[0] != std::byte{kSap} || llc[1] != std::byte{kSap} || llc[2] != std::byte{kUi}) {
        return std::nullopt;
    }
    std::span<const std::byte> pdu = frame.subspan(kHeader + kLlc, length - kLlc);
    // Protocol id 0; any version (an RSTP bridge's BPDU is read as 802.1D's,
    // as Linux does).
    if (pdu[0] != std::byte{0} || pdu[1] != std::byte{0}) return std::nullopt;
    Bpdu b;
    auto type = std::to_integer<std::uint8_t>(pdu[3]);
    if (type == kTypeTcn) {
        b.type = Bpdu::Type::tcn;
        return b;
    }
    // RSTP's type 2 carries the same fields first.
    if ((type != kTypeConfig && type != 0x02) || pdu.size() < kConfig) return std::nullopt;
    auto flags = std::to_integer<std::uint8_t>(pdu[4]);
    b.tc = (flags & kFlagTc) != 0;
    b.tca = (flags & kFlagTca) != 0;
    b.root = read_be(pdu.subspan(5, 8));
    b.root_cost = static_cast<std::uint32_t>(read_be(pdu.subspan(13, 4)));
    b.bridge = read_be(pdu.subspan(17, 8));
    b.port = static_cast<std::uint16_t>(read_be(pdu.subspan(25, 2)));
    b.message_age = static_cast<std::uint16_t>(read_be(pdu.subspan(27, 2)));
    b.max_age = static_cast<std::uint16_t>(read_be(pdu.subspan(29, 2)));
    b.hello = static_cast<std::uint16_t>(read_be(pdu.subspan(31, 2)));
    b.forward_delay = static_cast<std::uint16_t>(read_be(pdu.subspan(33, 2)));
    // Information older than its own limit, or no limit at all, is noise
    // (Linux drops the first too); times of 0 would make timers spin.
    if (b.message_age >= b.max_age || b.hello == 0 || b.forward_delay == 0) return std::nullopt;
    return b;
}

void encode(const Bpdu& bpdu, ethernet::Mac src, std::vector<std::byte>& out) {
    out.clear();
    std::size_t pdu = bpdu.type == Bpdu::Type::tcn ? kTcn : kConfig;
    append_be(out, kGroupAddress, 6);
    append_be(out, src, 6);
    append_be(out, kLlc + pdu, 2);
    out.push_back(std::byte{kSap});
    out.push_back(std::byte{kSap});
    out.push_back(std::byte{kUi});
    append_be(out, 0, 3);  // protocol id, version
    if (bpdu.type == Bpdu::Type::tcn) {
        out.push_back(std::byte{kTypeTcn});
    } else {
        out.push_back(std::byte{kTypeConfig});
        out.push_back(static_cast<std::byte>((bpdu.tc ? kFlagTc : 0) | (bpdu.tca ? kFlagTca : 0)));
        append_be(out, bpdu.root, 8);
        append_be(out, bpdu.root_cost, 4);
        append_be(out, bpdu.bridge, 8);
        append_be(out, bpdu.port, 2);
        append_be(out, bpdu.message_age, 2);
        append_be(out, bpdu.max_age, 2);
        append_be(out, bpdu.hello, 2);
        append_be(out, bpdu.forward_delay, 2);
    }
    if (out.size() < kMinFrame) out.resize(kMinFrame, std::byte{0});
}

// ---- settings ----

void Bridge::set_ports(std::size_t count) {
    for (std::size_t p = count; p < ports_.size(); ++p) ports_[p].up = false;
    std::size_t old = ports_.size();
    ports_.resize(count);
    for (std::size_t p = old; p < count; ++p) init_port(p);
    if (root_port_ && *root_port_ >= count) root_port_.reset();
}

void Bridge::set_bridge_id(BridgeId id, Time now) {
    bool was_root = is_root();
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (designated(p)) ports_[p].designated_bridge = id;
    }
    bridge_id_ = id;
    if (was_root) designated_root_ = id;
    if (!enabled_) return;
    configuration_update();
    port_state_selection(now);
    if (is_root() && !was_root) become_root(now);
    reconfigure(now);
}

void Bridge::set_path_cost(std::size_t port, std::uint32_t cost, Time now) {
    if (port >= ports_.size()) return;
    ports_[port].path_cost = cost;
    if (enabled_) {
        configuration_update();
        port_state_selection(now);
    }
}

void Bridge::set_port_priority(std::size_t port, unsigned priority, Time now) {
    if (port >= ports_.size()) return;
    std::uint16_t old = port_id(port);
    ports_[port].priority = priority;
    if (ports_[port].designated_port == old && ports_[port].designated_bridge == bridge_id_) {
        ports_[port].designated_port = port_id(port);
    }
    if (enabled_) {
        configuration_update();
        port_state_selection(now);
    }
}

void Bridge::set_times(unsigned hello, unsigned max_age, unsigned forward_delay) {
    bridge_hello_ = hello;
    bridge_max_age_ = max_age;
    bridge_forward_delay_ = forward_delay;
    if (is_root() || !enabled_) {
        hello_ = std::chrono::seconds(hello);
        max_age_ = std::chrono::seconds(max_age);
        forward_delay_ = std::chrono::seconds(forward_delay);
    }
}

void Bridge::enable(Time now) {
    if (enabled_) return;
    enabled_ = true;
    designated_root_ = bridge_id_;
    root_path_cost_ = 0;
    root_port_.reset();
    hello_ = std::chrono::seconds(bridge_hello_);
    max_age_ = std::chrono::seconds(bridge_max_age_);
    forward_delay_ = std::chrono::seconds(bridge_forward_delay_);
    topology_change_ = topology_change_detected_ = false;
    tcn_timer_.reset();
    topology_change_timer_.reset();
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        init_port(p);
        if (ports_[p].up && p < kMaxPorts) ports_[p].state = PortState::blocking;
    }
    port_state_selection(now);
    config_generation(now);
    hello_timer_ = now + hello_;
}

void Bridge::disable() {
    enabled_ = false;
    outbox_.clear();
    hello_timer_.reset();
    tcn_timer_.reset();
    topology_change_timer_.reset();
    topology_change_ = topology_change_detected_ = false;
    root_port_.reset();
    designated_root_ = bridge_id_;
    root_path_cost_ = 0;
    for (std::size_t p = 0; p < ports_.size(); ++p) init_port(p);
}

void Bridge::reconfigure(Time now) {
    // A changed id is news for every neighbour at once.
    config_generation(now);
}

// ---- ports going up and down (br_stp_enable_port, br_stp_disable_port) ----

void Bridge::port_up(std::size_t port, Time now) {
    if (port >= ports_.size()) return;
    ports_[port].up = true;
    if (!enabled_ || port >= kMaxPorts) return;
    init_port(port);
    ports_[port].state = PortState::blocking;
    port_state_selection(now);
}

void Bridge::port_down(std::size_t port, Time now) {
    if (port >= ports_.size()) return;
    Port& p = ports_[port];
    p.up = false;
    if (!enabled_ || p.state == PortState::disabled) return;
    bool was_root = is_root();
    become_designated(port);
    p.state = PortState::disabled;
    p.topology_change_ack = p.config_pending = false;
    p.message_age_timer.reset();
    p.forward_delay_timer.reset();
    p.hold_timer.reset();
    configuration_update();
    port_state_selection(now);
    if (is_root() && !was_root) become_root(now);
}

void Bridge::init_port(std::size_t port) {
    Port& p = ports_[port];
    p.state = PortState::disabled;
    p.topology_change_ack = p.config_pending = false;
    p.message_age_timer.reset();
    p.forward_delay_timer.reset();
    p.hold_timer.reset();
    become_designated(port);
}

// ---- comparisons ----

std::uint16_t Bridge::port_id(std::size_t port) const {
    return static_cast<std::uint16_t>((ports_[port].priority << 8) | ((port + 1) & 0x0fff));
}

bool Bridge::designated(std::size_t port) const {
    const Port& p = ports_[port];
    return p.designated_bridge == bridge_id_ && p.designated_port == port_id(port);
}

// br_should_become_root_port
bool Bridge::better_root_port(std::size_t port) const {
    const Port& p = ports_[port];
    if (designated(port) || p.state == PortState::disabled) return false;
    if (bridge_id_ <= p.designated_root) return false;
    if (!root_port_) return true;
    const Port& rp = ports_[*root_port_];
    if (p.designated_root != rp.designated_root) return p.designated_root < rp.designated_root;
    std::uint64_t cost = std::uint64_t{p.designated_cost} + p.path_cost;
    std::uint64_t rcost = std::uint64_t{rp.designated_cost} + rp.path_cost;
    if (cost != rcost) return cost < rcost;
    if (p.designated_bridge != rp.designated_bridge)
        return p.designated_bridge < rp.designated_bridge;
    if (p.designated_port != rp.designated_port) return p.designated_port < rp.designated_port;
    return port_id(port) < port_id(*root_port_);
}

// br_should_become_designated_port
bool Bridge::should_be_designated(std::size_t port) const {
    const Port& p = ports_[port];
    if (designated(port)) return true;
    if (p.designated_root != designated_root_) return true;
    if (root_path_cost_ != p.designated_cost) return root_path_cost_ < p.designated_cost;
    if (bridge_id_ != p.designated_bridge) return bridge_id_ < p.designated_bridge;
    return port_id(port) < p.designated_port;
}

// br_supersedes_port_info
bool Bridge::supersedes(std::size_t port, const Bpdu& b) const {
    const Port& p = ports_[port];
    if (b.root != p.designated_root) return b.root < p.designated_root;
    if (b.root_cost != p.designated_cost) return b.root_cost < p.designated_cost;
    if (b.bridge != p.designated_bridge) return b.bridge < p.designated_bridge;
    // Our own BPDU come back (two of our ports on one segment): the lower
    // port id wins.
    if (b.bridge != bridge_id_) return true;
    return b.port <= p.designated_port;
}

bool Bridge::designated_for_some_port() const {
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (takes_part(p) && designated(p)) return true;
    }
    return false;
}

// ---- selection ----

void Bridge::become_designated(std::size_t port) {
    Port& p = ports_[port];
    p.designated_root = designated_root_;
    p.designated_cost = root_path_cost_;
    p.designated_bridge = bridge_id_;
    p.designated_port = port_id(port);
}

void Bridge::root_selection() {
    root_port_.reset();
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (takes_part(p) && better_root_port(p)) root_port_ = p;
    }
    if (!root_port_) {
        designated_root_ = bridge_id_;
        root_path_cost_ = 0;
    } else {
        const Port& rp = ports_[*root_port_];
        designated_root_ = rp.designated_root;
        root_path_cost_ = rp.designated_cost + rp.path_cost;
    }
}

void Bridge::designated_selection() {
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (takes_part(p) && should_be_designated(p)) become_designated(p);
    }
}

void Bridge::configuration_update() {
    root_selection();
    designated_selection();
}

void Bridge::port_state_selection(Time now) {
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (!takes_part(p)) continue;
        Port& port = ports_[p];
        if (root_port_ == p) {
            port.config_pending = port.topology_change_ack = false;
            make_forwarding(p, now);
        } else if (designated(p)) {
            port.message_age_timer.reset();
            make_forwarding(p, now);
        } else {
            port.config_pending = port.topology_change_ack = false;
            make_blocking(p, now);
        }
    }
}

void Bridge::make_forwarding(std::size_t port, Time now) {
    Port& p = ports_[port];
    if (p.state != PortState::blocking) return;
    p.state = PortState::listening;
    p.forward_delay_timer = now + forward_delay_;
}

void Bridge::make_blocking(std::size_t port, Time now) {
    Port& p = ports_[port];
    if (p.state == PortState::disabled || p.state == PortState::blocking) return;
    if (p.state == PortState::forwarding || p.state == PortState::learning) {
        topology_change_detection(now);
    }
    p.state = PortState::blocking;
    p.forward_delay_timer.reset();
}

void Bridge::become_root(Time now) {
    max_age_ = std::chrono::seconds(bridge_max_age_);
    hello_ = std::chrono::seconds(bridge_hello_);
    forward_delay_ = std::chrono::seconds(bridge_forward_delay_);
    topology_change_detection(now);
    tcn_timer_.reset();
    config_generation(now);
    hello_timer_ = now + hello_;
}

// ---- topology change ----

void Bridge::set_topology_change(bool on, Time now) {
    if (on && !topology_change_) {
        ++topology_changes_;
        last_change_ = now;
    }
    topology_change_ = on;
}

void Bridge::topology_change_detection(Time now) {
    if (is_root()) {
        set_topology_change(true, now);
        topology_change_timer_ = now + std::chrono::seconds(bridge_forward_delay_) +
                                 std::chrono::seconds(bridge_max_age_);
    } else if (!topology_change_detected_) {
        transmit_tcn();
        tcn_timer_ = now + std::chrono::seconds(bridge_hello_);
    }
    topology_change_detected_ = true;
}

// ---- sending ----

void Bridge::transmit_config(std::size_t port, Time now) {
    Port& p = ports_[port];
    if (p.hold_timer && now < *p.hold_timer) {
        p.config_pending = true;
        return;
    }
    Bpdu b;
    b.tc = topology_change_;
    b.tca = p.topology_change_ack;
    b.root = designated_root_;
    b.root_cost = root_path_cost_;
    b.bridge = bridge_id_;
    b.port = port_id(port);
    Duration age{0};
    if (root_port_) {
        // How old the root's information is: what it was when it arrived
        // (the timer was set to expire at max age from then) plus a second.
        const Port& rp = ports_[*root_port_];
        Duration left = rp.message_age_timer ? *rp.message_age_timer - now : Duration{0};
        age = max_age_ - left + kMessageAgeIncrement;
    }
    b.message_age = to_wire(age);
    b.max_age = to_wire(max_age_);
    b.hello = to_wire(hello_);
    b.forward_delay = to_wire(forward_delay_);
    if (age >= max_age_) return;
    outbox_.push_back({port, b});
    p.topology_change_ack = false;
    p.config_pending = false;
    p.hold_timer = now + kHoldTime;
}

void Bridge::config_generation(Time now) {
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (takes_part(p) && designated(p)) transmit_config(p, now);
    }
}

void Bridge::transmit_tcn() {
    if (!root_port_) return;
    Bpdu b;
    b.type = Bpdu::Type::tcn;
    outbox_.push_back({*root_port_, b});
}

// ---- receiving ----

void Bridge::received(std::size_t port, const Bpdu& bpdu, Time now) {
    if (!takes_part(port)) return;
    if (bpdu.type == Bpdu::Type::tcn) {
        received_tcn(port, now);
    } else {
        received_config(port, bpdu, now);
    }
}

void Bridge::record_config(std::size_t port, const Bpdu& b, Time now) {
    Port& p = ports_[port];
    p.designated_root = b.root;
    p.designated_cost = b.root_cost;
    p.designated_bridge = b.bridge;
    p.designated_port = b.port;
    p.message_age_timer = now + from_wire(b.max_age) - from_wire(b.message_age);
}

// br_received_config_bpdu
void Bridge::received_config(std::size_t port, const Bpdu& b, Time now) {
    bool was_root = is_root();
    if (supersedes(port, b)) {
        record_config(port, b, now);
        configuration_update();
        port_state_selection(now);
        if (!is_root() && was_root) {
            hello_timer_.reset();
            if (topology_change_detected_) {
                topology_change_timer_.reset();
                transmit_tcn();
                tcn_timer_ = now + std::chrono::seconds(bridge_hello_);
            }
        }
        if (root_port_ == port) {
            // The root's times and its TC flag are everybody's.
            max_age_ = from_wire(b.max_age);
            hello_ = from_wire(b.hello);
            forward_delay_ = from_wire(b.forward_delay);
            set_topology_change(b.tc, now);
            config_generation(now);
            if (b.tca) {
                topology_change_detected_ = false;
                tcn_timer_.reset();
            }
        }
    } else if (designated(port)) {
        transmit_config(port, now);  // a worse bridge speaks on our segment: answer it
    }
}

// br_received_tcn_bpdu
void Bridge::received_tcn(std::size_t port, Time now) {
    if (!designated(port)) return;
    topology_change_detection(now);
    ports_[port].topology_change_ack = true;
    transmit_config(port, now);
}

// ---- timers (br_stp_timer.c) ----

void Bridge::message_age_expired(std::size_t port, Time now) {
    bool was_root = is_root();
    become_designated(port);
    configuration_update();
    port_state_selection(now);
    if (is_root() && !was_root) become_root(now);
}

void Bridge::forward_delay_expired(std::size_t port, Time now) {
    Port& p = ports_[port];
    if (p.state == PortState::listening) {
        p.state = PortState::learning;
        p.forward_delay_timer = now + forward_delay_;
    } else if (p.state == PortState::learning) {
        p.state = PortState::forwarding;
        if (designated_for_some_port()) topology_change_detection(now);
    }
}

void Bridge::tick(Time now) {
    if (!enabled_) return;
    auto due = [now](std::optional<Time>& t) {
        if (!t || now < *t) return false;
        t.reset();
        return true;
    };
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (!takes_part(p)) continue;
        if (due(ports_[p].message_age_timer)) message_age_expired(p, now);
        if (due(ports_[p].forward_delay_timer)) forward_delay_expired(p, now);
        if (due(ports_[p].hold_timer) && ports_[p].config_pending) transmit_config(p, now);
    }
    if (due(hello_timer_)) {
        // Linux's bridge sends on every designated port each hello, root or
        // not (it keeps segments alive if the root goes quiet).
        config_generation(now);
        hello_timer_ = now + hello_;
    }
    if (due(tcn_timer_) && !is_root()) {
        transmit_tcn();
        tcn_timer_ = now + std::chrono::seconds(bridge_hello_);
    }
    if (due(topology_change_timer_)) {
        topology_change_detected_ = false;
        set_topology_change(false, now);
    }
}

std::optional<Time> Bridge::next_deadline() const {
    if (!enabled_) return std::nullopt;
    std::optional<Time> next;
    auto consider = [&next](const std::optional<Time>& t) {
        if (t && (!next || *t < *next)) next = t;
    };
    consider(hello_timer_);
    consider(tcn_timer_);
    consider(topology_change_timer_);
    for (std::size_t p = 0; p < ports_.size(); ++p) {
        if (!takes_part(p)) continue;
        consider(ports_[p].message_age_timer);
        consider(ports_[p].forward_delay_timer);
        if (ports_[p].config_pending) consider(ports_[p].hold_timer);
    }
    return next;
}

// ---- what the switch asks ----

bool Bridge::forwarding(std::size_t port) const {
    if (!enabled_) return true;
    return port < ports_.size() && ports_[port].state == PortState::forwarding;
}

bool Bridge::learning(std::size_t port) const {
    if (!enabled_) return true;
    if (port >= ports_.size()) return false;
    return ports_[port].state == PortState::forwarding || ports_[port].state == PortState::learning;
}

std::optional<Duration> Bridge::short_ageing() const {
    if (!enabled_ || !topology_change_) return std::nullopt;
    return forward_delay_;
}

Bridge::PortView Bridge::port(std::size_t port) const {
    const Port& p = ports_[port];
    Role role = Role::disabled;
    if (takes_part(port)) {
        if (root_port_ == port) {
            role = Role::root;
        } else if (designated(port)) {
            role = Role::designated;
        } else {
            role = Role::blocked;
        }
    }
    PortState state = enabled_ ? p.state : PortState::forwarding;
    return {.state = state, .role = role, .path_cost = p.path_cost, .priority = p.priority};
}

}  // namespace ipnfs::policies::stp
