// The hub policy on its own: who it names for each message, and its ctl.
#include "policies/hub.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bus_test_support.hpp"
#include "policies/catalog.hpp"

namespace ipnfs::test {
namespace {

using bus::PortId;
using policies::Hub;
using PortSet = std::set<PortId>;

// The ports the hub names for a message from `from`; each at most once.
PortSet route(Hub& hub, PortId from) {
    bus::Route route;
    hub.route(from, bytes("payload"), route);
    EXPECT_TRUE(route.variants().empty()) << "the hub never rewrites";
    const auto& to = route.to;
    PortSet set(to.begin(), to.end());
    EXPECT_EQ(set.size(), to.size()) << "a port was named twice";
    return set;
}

bus::Status run(Hub& hub, std::string_view line) {
    std::array<const bus::CommandTable*, 1> tables{&hub.commands()};
    return bus::dispatch(tables, line, bus::Caller{});
}

std::string described(const Hub& hub) {
    std::string out;
    hub.describe(out);
    return out;
}

TEST(Hub, DeliversToEveryAttachedPortButTheSender) {
    Hub hub;
    hub.on_ports(8);
    for (PortId p : {0u, 2u, 3u, 6u}) hub.on_attach(p);
    EXPECT_EQ(route(hub, 2), (PortSet{0, 3, 6}));
    EXPECT_EQ(route(hub, 6), (PortSet{0, 2, 3}));
}

TEST(Hub, SenderThatDoesNotReceiveReachesEveryAttachedPort) {
    Hub hub;
    hub.on_ports(8);
    for (PortId p : {1u, 4u}) hub.on_attach(p);
    EXPECT_EQ(route(hub, 7), (PortSet{1, 4}));
}

TEST(Hub, NamesNobodyWhenNoOtherPortIsAttached) {
    Hub hub;
    hub.on_ports(4);
    EXPECT_TRUE(route(hub, 0).empty());
    hub.on_attach(0);
    EXPECT_TRUE(route(hub, 0).empty());
}

TEST(Hub, NeverNamesADetachedPort) {
    Hub hub;
    hub.on_ports(4);
    for (PortId p = 0; p < 4; ++p) hub.on_attach(p);
    hub.on_detach(1);
    hub.on_detach(3);
    EXPECT_EQ(route(hub, 0), (PortSet{2}));
    EXPECT_EQ(route(hub, 1), (PortSet{0, 2}));
}

TEST(Hub, LoopbackOnMakesTheSenderReceiveItsOwnMessages) {
    Hub hub;
    hub.on_ports(4);
    for (PortId p : {0u, 1u, 2u}) hub.on_attach(p);
    ASSERT_TRUE(IsOk(run(hub, "loopback 1 on")));
    EXPECT_EQ(route(hub, 1), (PortSet{0, 1, 2}));
    EXPECT_EQ(route(hub, 0), (PortSet{1, 2})) << "loopback is per port";
    ASSERT_TRUE(IsOk(run(hub, "loopback 1 off")));
    EXPECT_EQ(route(hub, 1), (PortSet{0, 2}));
}

TEST(Hub, LoopbackOfAPortThatDoesNotReceiveNamesNoExtraPort) {
    Hub hub;
    hub.on_ports(4);
    hub.on_attach(0);
    ASSERT_TRUE(IsOk(run(hub, "loopback 3 on")));
    EXPECT_EQ(route(hub, 3), (PortSet{0}));
}

TEST(Hub, AttachDetachInRandomOrderMatchesASetModel) {
    constexpr PortId kPorts = 128;
    Hub hub;
    hub.on_ports(kPorts);
    PortSet model;
    std::mt19937 rng(20240601);
    std::uniform_int_distribution<PortId> pick(0, kPorts - 1);
    for (int op = 0; op < 20000; ++op) {
        PortId p = pick(rng);
        if (model.erase(p) != 0) {
            hub.on_detach(p);
        } else {
            hub.on_attach(p);
            model.insert(p);
        }
        if (op % 16 == 0) {
            PortId from = pick(rng);
            PortSet want = model;
            want.erase(from);
            ASSERT_EQ(route(hub, from), want) << "after op " << op << " from " << from;
        }
    }
    // Take everything down again in random order.
    std::vector<PortId> left(model.begin(), model.end());
    std::shuffle(left.begin(), left.end(), rng);
    for (PortId p : left) {
        hub.on_detach(p);
        model.erase(p);
        ASSERT_EQ(route(hub, kPorts - 1), [&] {
            PortSet want = model;
            want.erase(kPorts - 1);
            return want;
        }());
    }
    EXPECT_TRUE(route(hub, 0).empty());
}

TEST(Hub, GrowingThePortCountKeepsAttachedPortsAndLoopback) {
    Hub hub;
    hub.on_ports(4);
    hub.on_attach(1);
    hub.on_attach(3);
    ASSERT_TRUE(IsOk(run(hub, "loopback 3 on")));
    hub.on_ports(64);
    hub.on_attach(40);
    EXPECT_EQ(route(hub, 3), (PortSet{1, 3, 40}));
    EXPECT_TRUE(IsOk(run(hub, "loopback 63 on")));
}

TEST(Hub, ShrinkingThePortCountForgetsLoopbackOfRemovedPorts) {
    Hub hub;
    hub.on_ports(8);
    ASSERT_TRUE(IsOk(run(hub, "loopback 6 on")));
    ASSERT_TRUE(IsOk(run(hub, "loopback 1 on")));
    hub.on_ports(4);
    EXPECT_EQ(described(hub), "loopback 1 on\n");
    EXPECT_TRUE(FailsWith(run(hub, "loopback 6 on"), std::errc::invalid_argument));
    hub.on_ports(8);
    EXPECT_EQ(described(hub), "loopback 1 on\n") << "port 6 came back with loopback on";
}

TEST(Hub, DescribeListsOneLinePerLoopbackPortInPortOrder) {
    Hub hub;
    hub.on_ports(16);
    EXPECT_EQ(described(hub), "");
    ASSERT_TRUE(IsOk(run(hub, "loopback 9 on")));
    ASSERT_TRUE(IsOk(run(hub, "loopback 2 on")));
    ASSERT_TRUE(IsOk(run(hub, "loopback 5 on")));
    ASSERT_TRUE(IsOk(run(hub, "loopback 5 off")));
    EXPECT_EQ(described(hub), "loopback 2 on\nloopback 9 on\n");
}

TEST(Hub, DescribeAppendsWithoutTouchingWhatIsThere) {
    Hub hub;
    hub.on_ports(4);
    ASSERT_TRUE(IsOk(run(hub, "loopback 0 on")));
    std::string out = "before\n";
    hub.describe(out);
    EXPECT_EQ(out, "before\nloopback 0 on\n");
}

TEST(Hub, DescribedLinesRebuildTheSameSettings) {
    Hub hub;
    hub.on_ports(32);
    for (const auto* line : {"loopback 0 on", "loopback 17 on", "loopback 31 on"}) {
        ASSERT_TRUE(IsOk(run(hub, line)));
    }
    Hub copy;
    copy.on_ports(32);
    std::string text = described(hub);
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        ASSERT_TRUE(IsOk(run(copy, std::string_view(text).substr(start, end - start))));
        start = end + 1;
    }
    EXPECT_EQ(described(copy), text);
}

TEST(Hub, LoopbackRejectsPortsOutsideTheNetwork) {
    Hub hub;
    hub.on_ports(8);
    for (const auto* line :
         {"loopback 8 on", "loopback 65536 on", "loopback -1 on", "loopback x on",
          "loopback 99999999999999999999 on", "loopback 1.0 on"}) {
        bus::Status s = run(hub, line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_NE(s.reason.find("port"), std::string::npos) << line << ": " << s.reason;
    }
    EXPECT_EQ(run(hub, "loopback 8 on").reason, "port must be a whole number from 0 to 7, not '8'");
    EXPECT_EQ(described(hub), "") << "a rejected command changed a setting";
}

TEST(Hub, LoopbackRejectsValuesOtherThanOnOrOff) {
    Hub hub;
    hub.on_ports(8);
    for (const auto* line :
         {"loopback 1 yes", "loopback 1 ON", "loopback 1 1", "loopback 1 true"}) {
        bus::Status s = run(hub, line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_NE(s.reason.find("on' or 'off"), std::string::npos) << line << ": " << s.reason;
    }
    EXPECT_EQ(described(hub), "") << "a rejected command changed a setting";
}

TEST(Hub, LoopbackNeedsExactlyAPortAndAValue) {
    Hub hub;
    hub.on_ports(8);
    for (const auto* line : {"loopback", "loopback 1", "loopback 1 on now"}) {
        bus::Status s = run(hub, line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_EQ(s.reason, "usage: loopback PORT on|off") << line;
    }
}

TEST(Hub, HelpNamesTheLoopbackCommand) {
    Hub hub;
    std::string help;
    bus::append_help(hub.commands(), help);
    EXPECT_NE(help.find("loopback PORT on|off"), std::string::npos) << help;
}

TEST(Catalog, MakesAFreshHubByName) {
    policies::Catalog catalog;
    auto [sa, a] = catalog.make("hub");
    auto [sb, b] = catalog.make("hub");
    ASSERT_TRUE(sa.ok());
    ASSERT_TRUE(sb.ok());
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_NE(a.get(), b.get());
    EXPECT_EQ(a->name(), "hub");
}

// On a cluster network the hub's refusal of an address comes at the
// writer's daemon, before the message is ordered: the writer hears of it.
TEST(Hub, PlaceRefusesAnAddressedMessage) {
    policies::Hub hub;
    hub.on_ports(2);
    bus::Route r;
    r.address = {bus::To::port, 1, 2};
    hub.place(0, {}, r);
    EXPECT_EQ(r.refused.code, std::errc::operation_not_supported);
    EXPECT_FALSE(r.target.has_value());
    bus::Route plain;
    hub.place(0, {}, plain);
    EXPECT_TRUE(plain.refused.ok());
}

TEST(Catalog, UnknownNameMakesNothing) {
    policies::Catalog catalog;
    for (std::string_view name : {"router", "SWITCH", "HUB", ""}) {
        auto [s, made] = catalog.make(name);
        EXPECT_EQ(s.code, std::errc::invalid_argument) << name;
        EXPECT_NE(s.reason.find("unknown policy"), std::string::npos) << s.reason;
        EXPECT_EQ(made, nullptr);
    }
}

}  // namespace
}  // namespace ipnfs::test
