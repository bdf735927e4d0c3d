// Helpers for the group's unit tests: addresses in a test's words, queues
// whose load the test sets, and a fixture that routes a message and checks
// what every route must be.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "bus_test_support.hpp"
#include "policies/group.hpp"

namespace ipnfs::test {

using PortSet = std::set<bus::PortId>;

inline bus::Address unicast(std::uint32_t port) {
    return {bus::To::port, port, 0};
}
inline bus::Address anycast(std::uint32_t instance) {
    return {bus::To::anycast, instance, instance};
}
inline bus::Address multicast(std::uint32_t lower, std::uint32_t upper) {
    return {bus::To::multicast, lower, upper};
}
inline constexpr bus::Address kBroadcastTo{bus::To::broadcast, 0, 0};
inline constexpr bus::Address kStandardTo{};

// Queues as full as the test says; every port holds `capacity`.
class FakeLoad final : public bus::Load {
  public:
    [[nodiscard]] std::uint32_t queued(bus::PortId port) const override {
        auto it = queued_.find(port);
        return it == queued_.end() ? 0 : it->second;
    }
    [[nodiscard]] std::uint32_t capacity(bus::PortId /*port*/) const override { return capacity_; }

    void set(bus::PortId port, std::uint32_t queued) { queued_[port] = queued; }
    void fill(bus::PortId port) { queued_[port] = capacity_; }

  private:
    std::map<bus::PortId, std::uint32_t> queued_;
    std::uint32_t capacity_ = 4;
};

class GroupTest : public ::testing::Test {
  protected:
    // A group of `count` ports of which `attached` have a reader.
    void make(bus::PortId count, std::initializer_list<bus::PortId> attached) {
        group_.on_ports(count);
        for (bus::PortId p : attached) attach(p);
    }
    void attach(bus::PortId port) {
        group_.on_attach(port);
        attached_.insert(port);
    }
    void detach(bus::PortId port) {
        group_.on_detach(port);
        attached_.erase(port);
    }

    // The ports named for a message; each at most once, and only attached
    // ones.  A refused route names nobody.
    // A route that is not `accepted` is one the network tried and gave up
    // (the send waits, or a non-blocking write got EAGAIN): sent() is not
    // called for it.
    PortSet send(bus::PortId from, const bus::Address& to, bool accepted = true) {
        route_.clear();
        route_.address = to;
        route_.load = load_;
        group_.route(from, bytes("payload"), route_);
        if (accepted) group_.sent(from, route_);
        EXPECT_TRUE(route_.variants().empty()) << "the group never rewrites";
        PortSet set(route_.to.begin(), route_.to.end());
        EXPECT_EQ(set.size(), route_.to.size()) << "a port was named twice";
        for (bus::PortId p : set) {
            EXPECT_TRUE(attached_.contains(p)) << "named detached port " << p;
        }
        EXPECT_TRUE(route_.refused.ok() || set.empty()) << "a refused route named ports";
        return set;
    }
    // The one port an anycast (or unicast) reaches; fails the test otherwise.
    bus::PortId one(bus::PortId from, const bus::Address& to) {
        PortSet got = send(from, to);
        EXPECT_TRUE(IsOk(route_.refused));
        EXPECT_EQ(got.size(), 1u);
        return got.empty() ? ~bus::PortId{0} : *got.begin();
    }
    // The refusal of a message that must be refused.
    bus::Status refusal(bus::PortId from, const bus::Address& to) {
        EXPECT_TRUE(send(from, to).empty());
        return route_.refused;
    }

    bus::Status run(std::string_view line) { return run_policy_command(group_, line); }
    void run_ok(std::string_view lines) { run_policy_lines(group_, lines); }
    [[nodiscard]] std::string described() const { return policy_describe(group_); }
    [[nodiscard]] std::string stats() const { return policy_stats(group_); }
    // One counter of the first stats line ("group ...").
    [[nodiscard]] std::uint64_t counter(std::string_view name) const {
        std::string s = stats();
        return stats_text::counter_of(s.substr(0, s.find('\n')), name);
    }

    policies::Group group_;
    bus::Route route_;
    const bus::Load* load_ = nullptr;
    PortSet attached_;
};

}  // namespace ipnfs::test
