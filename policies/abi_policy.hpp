// A plugin's policy: its C table (include/ipnfs_policy.h) behind bus::Policy.
// Built-in policies implement bus::Policy themselves; this adapter is for
// plugins only.  It checks what the table's route() names, so a buggy plugin
// loses messages (counted as policy_errors) instead of corrupting the bus.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/policy.hpp"
#include "include/ipnfs_policy.h"

namespace ipnfs::policies {

class AbiPolicy final : public bus::Policy {
  public:
    // Takes `self`, an instance the table created; `keep` holds what the
    // table's code lives in (a loaded library) for as long as this lives.
    AbiPolicy(const ipnfs_policy& table, void* self, std::shared_ptr<const void> keep);
    ~AbiPolicy() override;
    AbiPolicy(const AbiPolicy&) = delete;
    AbiPolicy& operator=(const AbiPolicy&) = delete;

    [[nodiscard]] std::string_view name() const override { return table_.name; }
    void on_ports(bus::PortId count) override;
    void on_attach(bus::PortId port) override;
    void on_detach(bus::PortId port) override;
    void reset_port(bus::PortId port) override;
    void route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;
    void sent(bus::PortId from, const bus::Route& route) override;
    [[nodiscard]] bool spans_hosts() const override;
    void place(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override;
    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override;
    void stats(std::string& out) const override;
    [[nodiscard]] bool ethernet() const override { return table_.link_type == IPNFS_LINK_ETHERNET; }

  private:
    // The route() in progress (or last made, for sent()), for the table's
    // callbacks.
    struct RouteCall {
        AbiPolicy* policy;
        bus::Route* out;  // null in sent(): nothing may be added then
        const bus::Load* load;
    };
    static const ipnfs_route_ops kRouteOps;

    void build_commands();
    // Whether the port may be named now (receiving, not named yet in `out`);
    // marks it in `out` if so, counts a policy error if not.
    bool accept(std::uint32_t port, bus::Route& out);

    const ipnfs_policy& table_;
    void* self_;
    std::shared_ptr<const void> keep_;
    bus::CommandTable commands_;

    std::vector<bool> attached_;
    std::vector<std::uint32_t> names_;  // route()'s output buffer, one slot per port
    // The table's last route() call, kept for its sent(): `routed_` unless
    // the adapter refused the address before asking the table, or the last
    // call was place(), which the table has no part in.
    ipnfs_route last_{};
    RouteCall call_{this, nullptr, nullptr};
    bool routed_ = false;
    std::uint64_t policy_errors_ = 0;  // names refused by accept(), of accepted routes
    std::uint64_t route_errors_ = 0;   // ... of the route in progress
};

}  // namespace ipnfs::policies
