// What the bus asks of a delivery policy.  Policies are pure logic: they keep
// their own state, which the network's lock guards (every call below is made
// with it held), and they never touch queues or I/O.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus/commands.hpp"
#include "bus/message.hpp"

namespace ipnfs::bus {

class Policy {
  public:
    virtual ~Policy() = default;

    [[nodiscard]] virtual std::string_view name() const = 0;

    // The network now has `count` ports, numbered 0..count-1.  Called once
    // before any other call and again whenever the port count changes; ports
    // at or above a new, smaller count are always detached first.
    virtual void on_ports(PortId count) = 0;

    // A port can receive now (its first reader connected) / no longer.
    virtual void on_attach(PortId port) = 0;
    virtual void on_detach(PortId port) = 0;

    // Appends the ports that must get a copy of a message sent by `from`.
    // Only attached ports may be named, each at most once.
    virtual void route(PortId from, std::span<const std::byte> payload,
                       std::vector<PortId>& to) = 0;

    // The policy's own ctl verbs (its configuration).
    [[nodiscard]] virtual const CommandTable& commands() const = 0;

    // Appends its current settings as ctl lines that could be written back.
    virtual void describe(std::string& out) const = 0;
};

// Makes policies by name; the daemon hands one to every network.
class PolicyCatalog {
  public:
    virtual ~PolicyCatalog() = default;
    // nullptr when no policy has that name.
    [[nodiscard]] virtual std::unique_ptr<Policy> make(std::string_view name) const = 0;
    // The names it knows, for help and error messages: "hub, switch".
    [[nodiscard]] virtual std::string names() const = 0;
};

}  // namespace ipnfs::bus
