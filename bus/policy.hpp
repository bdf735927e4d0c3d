// What the bus asks of a delivery policy.  Policies are pure logic: they keep
// their own state, which the network's lock guards (every call below is made
// with it held), and they never touch queues or I/O.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/commands.hpp"
#include "bus/member.hpp"
#include "bus/message.hpp"
#include "bus/status.hpp"

namespace ipnfs::bus {

// How full the network's queues are, for policies that choose by load.
class Load {
  public:
    virtual ~Load() = default;
    // Messages waiting at the port / how many it holds (0: nobody reads it).
    [[nodiscard]] virtual std::uint32_t queued(PortId port) const = 0;
    [[nodiscard]] virtual std::uint32_t capacity(PortId port) const = 0;
};

// Where one message goes.  Most policies name ports that get the payload as
// it was sent (`to`).  A policy that rewrites at the edge (the switch adds or
// strips VLAN tags) adds variants: each is one buffer, shared by its ports.
// A policy may also refuse the message (nobody holds its address): the send
// fails with that error and nothing is delivered.
// The network reuses one Route per send, so buffers keep their capacity and
// a warm route allocates nothing.
class Route {
  public:
    struct Variant {
        std::vector<std::byte> payload;
        std::vector<PortId> to;
    };

    std::vector<PortId> to;
    // What the policy counts if this route is the one that is accepted, in
    // its own code (0 after clear()): a route may be tried many times for one
    // message, so counting waits for Policy::sent(), which gets it back.
    std::uint32_t tally = 0;
    // In: where the sender asked it to go, and the queues' state.
    Address address;
    const Load* load = nullptr;
    // Out: why the send is refused, if it is.
    Status refused;
    // Out: the policy wants its tick() right after sent() (it took the
    // message for itself, and may have frames to answer with).
    bool tick = false;
    // Out, from Policy::place() on a cluster network: the one port the
    // message goes to, chosen by its sender's daemon; node 0 is a port of
    // this daemon.
    std::optional<Origin> target;
    // Out, from Policy::place(): the message goes nowhere, and the write
    // succeeds (the switch drops a frame its port's VLANs do not take, as
    // on one host; what it counts is in tally).
    bool nowhere = false;
    // Out, from Policy::place(): when set, `rewrite` is what is ordered
    // instead of the payload written (the switch puts a frame in the form a
    // trunk between hosts carries it, since only the sender's daemon knows
    // its port's VLANs).
    bool rewritten = false;
    std::vector<std::byte> rewrite;
    // In, for route() on a cluster network: the other daemon's port the
    // message comes from, when `from` is kElsewhere (node 0: the
    // sender is this daemon's port `from`).
    Origin origin;

    // A new, empty variant (its payload and ports cleared).
    Variant& add_variant() {
        if (used_ == variants_.size()) variants_.emplace_back();
        Variant& v = variants_[used_++];
        v.payload.clear();
        v.to.clear();
        return v;
    }
    [[nodiscard]] std::span<const Variant> variants() const { return {variants_.data(), used_}; }
    [[nodiscard]] std::span<Variant> variants() { return {variants_.data(), used_}; }

    // Marks the port for this route: true the first time, false if it was
    // marked already.  The one way to keep "each port at most once" for a
    // policy that can reach a port twice (the switch floods and mirrors; a
    // plugin's names are checked with it), and to keep a port out (mark the
    // sender first).  A port is marked when its stamp holds this route's
    // generation, so clear() unmarks every port at once.  `port` must be one
    // of the network's (the marks grow to the highest port marked).
    bool mark(PortId port) {
        if (port >= stamps_.size()) stamps_.resize(port + 1, 0);
        if (stamps_[port] == generation_) return false;
        stamps_[port] = generation_;
        return true;
    }

    void clear() {
        to.clear();
        tally = 0;
        tick = false;
        target.reset();
        nowhere = false;
        rewritten = false;
        rewrite.clear();
        origin = {};
        used_ = 0;
        refused = Status::success();
        if (++generation_ == 0) {
            std::ranges::fill(stamps_, 0);
            generation_ = 1;
        }
    }

  private:
    std::vector<Variant> variants_;
    std::size_t used_ = 0;
    std::vector<std::uint32_t> stamps_;  // by port: the generation it was last marked in
    std::uint32_t generation_ = 1;
};

// Where a message could be queued, for poll's POLLOUT (Policy::reach).
struct Reach {
    std::vector<PortId> ports;  // each at most once, only receiving ports
    // It goes to one of them, one with room if any has (anycast): it waits
    // only when every one is full.  Otherwise it goes to all of them.
    bool any = false;
};

// Where a policy puts frames it sends itself (Policy::tick): the network
// queues each to the port's readers as it queues any message (its seq, its
// capture copy, the port's counters and drops), and never waits for room.
class Originate {
  public:
    virtual ~Originate() = default;
    virtual void send(PortId port, std::span<const std::byte> payload) = 0;
};

// The `from` of route() for a message another daemon's port sent (cluster
// scope): below every observer id, above every port number.
inline constexpr PortId kElsewhere = (PortId{1} << 31) - 1;

class Policy {
  public:
    using Clock = std::chrono::steady_clock;

    virtual ~Policy() = default;

    [[nodiscard]] virtual std::string_view name() const = 0;

    // The network now has `count` ports, numbered 0..count-1.  Called once
    // before any other call and again whenever the port count changes; ports
    // at or above a new, smaller count are always detached first.
    virtual void on_ports(PortId count) = 0;

    // A port can receive now (its first reader connected) / no longer.
    virtual void on_attach(PortId port) = 0;
    virtual void on_detach(PortId port) = 0;
    // Every setting of `port` back to its default (the last descriptor of a
    // port whose holder changed one closed).
    virtual void reset_port(PortId /*port*/) {}

    // Adds the ports that must get a copy of a message sent by `from`, to
    // `out` (which arrives cleared but for its inputs).  Only attached ports
    // may be named, each at most once in the whole route: the network
    // trusts a built-in policy on this (a plugin's names are checked by
    // policies::AbiPolicy).  One message may be routed many times: a
    // lossless send that waits is routed again whenever room may have
    // appeared, and a non-blocking write that gets EAGAIN comes back as a new
    // write the network cannot tell from a new message.  So route() counts
    // nothing (it notes what to count in out.tally), and state it changes
    // must tolerate being routed again.
    virtual void route(PortId from, std::span<const std::byte> payload, Route& out) = 0;

    // The message route() was just called for is accepted: delivered to the
    // ports `route` names, or refused (route.refused: the write fails with
    // it, once per write).  Called right after that route(), nothing in
    // between, at most once per message: never for a route that waits or
    // ends in EAGAIN, nor for a parked send that is interrupted.  Counters
    // count here.
    virtual void sent(PortId /*from*/, const Route& /*route*/) {}

    // Where the next message `from` writes could go, into `out` (cleared),
    // so that POLLOUT can follow the writer's destination: `framed` when its
    // records name addresses of their own, else it sends to its default
    // destination.  No ports: it goes nowhere, or is refused at once, so it
    // never waits.  False when the policy cannot tell without the payload;
    // the network then counts every receiving port but the writer's own.
    virtual bool reach(PortId /*from*/, bool /*framed*/, Reach& /*out*/) const { return false; }

    // The policy's own ctl verbs (its configuration).
    [[nodiscard]] virtual const CommandTable& commands() const = 0;

    // Appends its current settings as ctl lines that could be written back.
    virtual void describe(std::string& out) const = 0;

    // Appends its own section of the stats file (tables, counters), if any.
    virtual void stats(std::string& /*out*/) const {}

    // The network's name, once before any port is attached (a policy may
    // derive an identity from it: the switch's bridge id).
    virtual void on_network(std::string_view /*name*/) {}

    // A policy that speaks for itself (the switch's spanning tree: its
    // BPDUs and timers) does it here, sending frames into `out`, and
    // returns when it wants to be called again (nullopt: only on news).
    // The network calls it under its lock after on_attach() and
    // on_detach(), after every ctl line, after a sent() whose route asked
    // (Route::tick), and from the bus's timer at the time it returned.
    // Spurious calls are allowed: it looks at its own clock.
    virtual std::optional<Clock::time_point> tick(Originate& /*out*/) { return std::nullopt; }

    // ---- cluster scope (`scope cluster`, docs/cluster.md) ----
    // Each daemon of the group runs its own copy of the policy and delivers
    // what the group ordered to its own ports only: route() then names this
    // daemon's ports, the sender being one of them or, for another daemon's
    // message, kElsewhere.  A message that must reach exactly one
    // port of the whole group (a unicast, an anycast) is placed once, by its
    // sender's daemon, before it is ordered: place() names that port, and
    // the choice travels with the message, so every daemon agrees on it.

    // Whether the policy can run on a network that spans hosts.
    [[nodiscard]] virtual bool spans_hosts() const { return false; }
    // Whether it can with its settings now: success, or why not (ENOTSUP
    // and the reason: the switch's spanning tree is one host's).  Asked
    // before `scope cluster` joins the group and again once it has.
    [[nodiscard]] virtual Status spans_hosts_now() const { return Status::success(); }
    // The network now spans hosts (true), or is this host's again: a
    // policy whose settings are one host's refuses those that cannot span.
    virtual void on_scope(bool /*cluster*/) {}
    // The member identity (instance) the port holds, which the group learns
    // with its presence.
    [[nodiscard]] virtual std::optional<std::uint32_t> instance(PortId /*port*/) const {
        return std::nullopt;
    }
    // Another daemon's port, as the group's order told this daemon: it
    // receives, holding `presence->instance`; or (null) it receives no
    // more, or is gone.
    virtual void on_remote(const Origin& /*port*/, const Presence* /*presence*/) {}
    // At the sender's daemon, before its message is ordered: the one port
    // it goes to (out.target), or a refusal (out.refused), or neither: then
    // every daemon routes it among its own ports.  out.address may be
    // rewritten to what the sender's default destination stands for, which
    // the other daemons do not know.  out.address's port addresses name
    // their node in `upper` (0: this daemon's).  An address the policy does
    // not take is refused here, so that the writer hears of it.  It may also
    // say the message goes nowhere (out.nowhere) or is ordered rewritten
    // (out.rewritten, out.rewrite).  Counting as route().
    virtual void place(PortId /*from*/, std::span<const std::byte> /*payload*/, Route& /*out*/) {}

    // Whether the messages it routes are Ethernet frames (the switch), which
    // tells a capture its pcap link type; anything else is opaque bytes.  A
    // plugin says so in its table's link_type.
    [[nodiscard]] virtual bool ethernet() const { return false; }
};

// A policy made by name, or why none was: `policy` is set exactly when
// `status` is ok.
struct MadePolicy {
    Status status;
    std::unique_ptr<Policy> policy;
};

// Makes policies by name; the daemon hands one to every network.  Called
// under a network's lock, from any thread.
class PolicyCatalog {
  public:
    virtual ~PolicyCatalog() = default;
    // EINVAL when no policy has that name, or the error of a policy that
    // cannot be made (a plugin refused), with the reason.
    [[nodiscard]] virtual MadePolicy make(std::string_view name) const = 0;
    // The names it knows, for help and error messages: "group, hub, switch".
    [[nodiscard]] virtual std::string names() const = 0;
};

}  // namespace ipnfs::bus
