// The group: TIPC-style group communication.  Every receiving port is a
// member; a port may also hold a member identity, an instance number, which
// several ports may share.  A message goes where its address says:
//   port       the one port, refused (EHOSTUNREACH) when it does not receive
//   anycast    one holder of the instance: the least loaded, in turn among
//              equals; one with a full queue only when all are full.  Refused
//              (EHOSTUNREACH) when nobody holds it
//   multicast  every holder of an instance in the range, maybe nobody
//   broadcast  every receiving port
//   standard   the sender's default destination (ctl "dest", broadcast)
// Loopback (off by default) is about fan-out only: the sender gets its own
// multicast or broadcast when it is on.  A port or anycast address names its
// destination outright, so the sender is an ordinary candidate there: a
// unicast to oneself is delivered, and a sender holding the instance takes
// its turn among the holders (it asked for "one port holding I", and is one).
//
// On a cluster network (docs/cluster.md) the holders are every host's: a
// unicast names a node's port (node:port), and a unicast or anycast is
// placed by the sender's daemon, anycast in turn over every holder it knows
// of, since other hosts' queues are not known here; multicast and broadcast
// are routed by each daemon among its own ports.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "bus/policy.hpp"

namespace ipnfs::policies {

class Group final : public bus::Policy {
  public:
    Group();

    [[nodiscard]] std::string_view name() const override { return "group"; }
    void on_ports(bus::PortId count) override;
    void on_attach(bus::PortId port) override;
    void on_detach(bus::PortId port) override;
    void reset_port(bus::PortId port) override;
    void route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;
    void sent(bus::PortId from, const bus::Route& route) override;
    bool reach(bus::PortId from, bool framed, bus::Reach& out) const override;
    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override;
    void stats(std::string& out) const override;
    [[nodiscard]] bool spans_hosts() const override { return true; }
    [[nodiscard]] std::optional<std::uint32_t> instance(bus::PortId port) const override;
    void on_remote(const bus::Origin& port, const bus::Presence* presence) override;
    void place(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;

  private:
    static constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);
    static constexpr bus::Address kBroadcast{bus::To::broadcast, 0, 0};

    // Settings outlive the port's reader; the slots say where it is indexed
    // while it has one.
    struct Member {
        std::optional<std::uint32_t> instance;
        bus::Address dest = kBroadcast;
        bool loopback = false;
        std::size_t slot = kAbsent;         // index in attached_
        std::size_t holder_slot = kAbsent;  // index in its Holders::ports
    };
    // The attached ports holding one instance.
    struct Holders {
        std::vector<bus::PortId> ports;
        std::size_t cursor = 0;  // whose turn it is among equally loaded ones
    };
    enum Counter : std::uint8_t { unicast, anycast, multicast, broadcast, unreachable, kCounters };

    // ---- configuration (group_ctl.cpp) ----
    void build_commands();
    bus::Status parse_port(std::string_view word, bus::PortId& out) const;
    void set_instance(bus::PortId port, std::optional<std::uint32_t> instance);

    // ---- membership ----
    void hold(bus::PortId port);
    void release(bus::PortId port);

    // ---- routing ----
    void to_port(std::uint32_t node, std::uint32_t port, bus::Route& out);
    void to_anycast(std::uint32_t instance, bus::Route& out);
    // Fan-out: the ports into `out` (a route's, or poll's reach).
    void to_multicast(bus::PortId from, std::uint32_t lower, std::uint32_t upper,
                      std::vector<bus::PortId>& out) const;
    void to_broadcast(bus::PortId from, std::vector<bus::PortId>& out) const;
    // What the route counts once it is accepted (sent()): tally 0 is nothing.
    static void count(Counter c, bus::Route& out) { out.tally = c + 1U; }
    // ---- placing, on a cluster network ----
    void place_port(std::uint32_t node, std::uint32_t port, bus::Route& out) const;
    void place_anycast(std::uint32_t instance, bus::Route& out);
    // An instance no port holds any more, here or elsewhere, has no turn.
    void forget_turn(std::uint32_t instance);
    // Fan-out leaves the sender out unless it asked for its own messages.
    [[nodiscard]] bool gets_copy(bus::PortId from, bus::PortId port) const {
        return port != from || members_[port].loopback;
    }

    bus::CommandTable commands_;
    std::vector<Member> members_;                 // by port
    std::vector<bus::PortId> attached_;           // in no particular order
    std::map<std::uint32_t, Holders> instances_;  // only instances with attached holders
    std::array<std::uint64_t, kCounters> counters_{};
    // Other daemons' receiving ports, as the group's order told this one,
    // and the instances they hold (each list sorted).  Bounded by the
    // group's ports, which each daemon bounds.
    std::map<bus::Origin, std::optional<std::uint32_t>> remote_;
    std::map<std::uint32_t, std::vector<bus::Origin>> remote_holders_;
    // Whose turn it is next among an instance's holders, here and elsewhere.
    std::map<std::uint32_t, std::size_t> turns_;
};

}  // namespace ipnfs::policies
