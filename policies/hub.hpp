// The hub: every receiving port but the sender gets a copy (AF_IPN's
// IPN_BROADCAST).  A port with loopback on also gets its own messages.
#pragma once

#include <vector>

#include "bus/policy.hpp"

namespace ipnfs::policies {

class Hub final : public bus::Policy {
  public:
    Hub();

    [[nodiscard]] std::string_view name() const override { return "hub"; }
    [[nodiscard]] bool spans_hosts() const override { return true; }
    void on_ports(bus::PortId count) override;
    void on_attach(bus::PortId port) override;
    void on_detach(bus::PortId port) override;
    void reset_port(bus::PortId port) override { loopback_[port] = false; }
    void route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;
    void place(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;
    // Exact, framed or not: a record with an address of its own is refused.
    bool reach(bus::PortId from, bool framed, bus::Reach& out) const override;
    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override;

  private:
    static constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);

    // Every receiving port but the sender, unless it has loopback on.
    void fan_out(bus::PortId from, std::vector<bus::PortId>& out) const;

    bus::CommandTable commands_;
    std::vector<bus::PortId> members_;  // attached ports, in no particular order
    std::vector<std::size_t> slot_;     // port -> index in members_, or kAbsent
    std::vector<bool> loopback_;        // port -> receives its own messages
};

}  // namespace ipnfs::policies
