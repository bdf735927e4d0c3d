// The switch policy on its own: learning, flooding, aging and the MAC table
// limit, on one VLAN.  VLANs and mirroring: switch_vlan_test.cpp; ctl,
// describe and stats: switch_ctl_test.cpp; odd input: switch_fuzz_test.cpp.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <set>

#include "policies/catalog.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using namespace std::chrono_literals;

constexpr Mac kA = station(0xa);
constexpr Mac kB = station(0xb);
constexpr Mac kC = station(0xc);

TEST_F(SwitchTest, UnknownUnicastFloodsToEveryAttachedPortButTheSender) {
    make(8, {0, 2, 3, 6});
    EXPECT_EQ(send_to(2, frame(kB, kA)), (PortSet{0, 3, 6}));
}

TEST_F(SwitchTest, LearnedUnicastGoesOnlyToThePortTheAddressWasSeenOn) {
    make(8, {0, 2, 3, 6});
    send(3, frame(kBroadcast, kB));  // B speaks from port 3
    Deliveries d = send(2, frame(kB, kA));
    EXPECT_EQ(ports_of(d), (PortSet{3}));
    EXPECT_EQ(d[3], frame(kB, kA)) << "an access port gets the frame as it was sent";
    EXPECT_EQ(send_to(6, frame(kA, kC)), (PortSet{2})) << "A was learned from its first frame";
}

TEST_F(SwitchTest, BroadcastFloodsEvenWhenEveryStationIsKnown) {
    make(4, {0, 1, 2, 3});
    for (bus::PortId p = 0; p < 4; ++p) send(p, frame(kBroadcast, station(p + 1)));
    EXPECT_EQ(send_to(1, frame(kBroadcast, station(2))), (PortSet{0, 2, 3}));
}

TEST_F(SwitchTest, MulticastFloodsLikeBroadcast) {
    make(4, {0, 1, 2, 3});
    EXPECT_EQ(send_to(0, frame(kMulticast, kA)), (PortSet{1, 2, 3}));
    // Any address with the I/G bit set is a group, however it looks otherwise.
    EXPECT_EQ(send_to(0, frame(0x3300'0000'0001, kA)), (PortSet{1, 2, 3}));
}

TEST_F(SwitchTest, GroupSourceAddressesAreNeverLearned) {
    make(4, {0, 1, 2});
    send(1, frame(kBroadcast, kMulticast));
    EXPECT_EQ(counter("mac_entries"), 0u);
    // A frame to that address floods: it is a group address anyway.
    EXPECT_EQ(send_to(0, frame(kMulticast, kA)), (PortSet{1, 2}));
}

TEST_F(SwitchTest, NeverDeliversBackToTheSender) {
    make(4, {0, 1, 2});
    EXPECT_FALSE(send_to(1, frame(kBroadcast, kA)).contains(1));
    // Two stations behind one port: a frame between them stays there.
    send(1, frame(kBroadcast, kB));
    EXPECT_TRUE(send_to(1, frame(kB, kA)).empty());
    // A station that sends to itself.
    EXPECT_TRUE(send_to(1, frame(kA, kA)).empty());
}

TEST_F(SwitchTest, NamesNobodyWhenNoOtherPortIsAttached) {
    make(4, {0});
    EXPECT_TRUE(send_to(0, frame(kBroadcast, kA)).empty());
    EXPECT_EQ(send_to(3, frame(kA, kB)), (PortSet{0})) << "a port without a reader may send";
}

TEST_F(SwitchTest, AnAddressThatMovesIsRelearnedOnItsNewPort) {
    make(4, {0, 1, 2, 3});
    send(1, frame(kBroadcast, kB));
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1}));
    send(2, frame(kBroadcast, kB));  // B moved to port 2
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{2}));
    EXPECT_NE(stats().find("vlan 1 port 2"), std::string::npos) << stats();
    EXPECT_EQ(stats().find("vlan 1 port 1 "), std::string::npos) << stats();
    EXPECT_EQ(counter("mac_entries"), 2u) << "moving keeps one entry";
}

TEST_F(SwitchTest, ALearnedPortWithoutReaderCountsAsUnknown) {
    make(4, {0, 1, 2, 3});
    send(1, frame(kBroadcast, kB));
    sw_.on_detach(1);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{2, 3}));
    EXPECT_EQ(counter("mac_entries"), 2u) << "the entry stays for when the port is back";
    sw_.on_attach(1);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1}));
}

TEST_F(SwitchTest, EntriesAgeOutAfterTheExpiryAndThenFlood) {
    make(4, {0, 1, 2});
    run_ok("expire 60");
    send(1, frame(kBroadcast, kB));
    clock_.advance(60s);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1})) << "60 s idle is not more than 60 s";
    EXPECT_NE(stats().find("mac 02:00:00:00:00:0b vlan 1 port 1 age 60\n"), std::string::npos)
        << stats();
    clock_.advance(1s);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 2})) << "expired: unknown again";
    EXPECT_EQ(stats().find("02:00:00:00:00:0b"), std::string::npos) << stats();
    EXPECT_EQ(counter("mac_entries"), 1u) << "only A, learned just now";
}

TEST_F(SwitchTest, ExpiredEntriesVanishFromStatsBeforeAnyFrameComes) {
    make(4, {0, 1});
    run_ok("expire 10");
    send(1, frame(kBroadcast, kB));
    clock_.advance(11s);
    EXPECT_EQ(counter("mac_entries"), 0u);
    EXPECT_EQ(stats().find("\nmac "), std::string::npos) << stats();
}

TEST_F(SwitchTest, TrafficFromAnAddressKeepsItsEntryAlive) {
    make(4, {0, 1, 2});
    run_ok("expire 10");
    for (int i = 0; i < 5; ++i) {
        send(1, frame(kA, kB));
        clock_.advance(8s);
    }
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1}));
}

TEST_F(SwitchTest, AShorterExpiryAppliesToEntriesAlreadyLearned) {
    make(4, {0, 1, 2});
    send(1, frame(kBroadcast, kB));
    clock_.advance(30s);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1}));
    run_ok("expire 20");
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 2}));
}

TEST_F(SwitchTest, AFullTableLearnsNoNewAddressAndCountsIt) {
    make(8, {0, 1, 2, 3});
    run_ok("maclimit 2");
    send(1, frame(kBroadcast, kA));
    send(2, frame(kBroadcast, kB));
    send(3, frame(kBroadcast, kC));  // no room for C
    EXPECT_EQ(counter("mac_entries"), 2u);
    EXPECT_EQ(counter("table_full"), 1u);
    EXPECT_EQ(send_to(0, frame(kC, kA)), (PortSet{1, 2, 3})) << "C is unknown: flood";
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{2})) << "known ones still work";
    send(3, frame(kBroadcast, kC));
    EXPECT_EQ(counter("table_full"), 2u) << "every frame that could not be learned counts";
    send(1, frame(kBroadcast, kA));
    EXPECT_EQ(counter("table_full"), 2u) << "refreshing a known address needs no room";
}

TEST_F(SwitchTest, AFullTableForgetsExpiredEntriesToMakeRoom) {
    make(8, {0, 1, 2, 3});
    run_ok("maclimit 2\nexpire 10");
    send(1, frame(kBroadcast, kA));
    clock_.advance(5s);
    send(2, frame(kBroadcast, kB));
    clock_.advance(6s);  // A is 11 s old: expired; B is 6 s
    send(3, frame(kBroadcast, kC));
    EXPECT_EQ(counter("table_full"), 0u);
    EXPECT_EQ(send_to(2, frame(kC, kB)), (PortSet{3}));
    EXPECT_EQ(send_to(3, frame(kB, kC)), (PortSet{2}));
    EXPECT_EQ(send_to(3, frame(kA, kC)), (PortSet{0, 1, 2})) << "A was forgotten";
}

TEST_F(SwitchTest, ALowerLimitForgetsTheLeastRecentlySeen) {
    make(8, {0, 1, 2, 3});
    send(1, frame(kBroadcast, kA));
    clock_.advance(1s);
    send(2, frame(kBroadcast, kB));
    clock_.advance(1s);
    send(3, frame(kBroadcast, kC));
    clock_.advance(1s);
    send(1, frame(kBroadcast, kA));  // A is now the most recent
    run_ok("maclimit 2");
    EXPECT_EQ(counter("mac_entries"), 2u);
    EXPECT_EQ(send_to(1, frame(kB, kA)), (PortSet{0, 2, 3})) << "B was the oldest";
    EXPECT_EQ(send_to(3, frame(kA, kC)), (PortSet{1}));
}

TEST_F(SwitchTest, FlushForgetsEveryAddress) {
    make(4, {0, 1, 2});
    send(1, frame(kBroadcast, kB));
    run_ok("flush");
    EXPECT_EQ(counter("mac_entries"), 0u);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 2}));
}

TEST_F(SwitchTest, RoutingTheSameFrameAgainGivesTheSameRoute) {
    // A lossless send that has to wait is routed again when it retries.
    make(4, {0, 1, 2, 3});
    send(2, frame(kBroadcast, kB));
    Deliveries first = send(0, frame(kB, kA));
    Deliveries again = send(0, frame(kB, kA));
    EXPECT_EQ(first, again);
    EXPECT_EQ(counter("mac_entries"), 2u);
}

TEST_F(SwitchTest, RouteCostDoesNotGrowWithIdlePorts) {
    // 65536 ports, two with a reader: a learned unicast names one port and a
    // flood names only the other attached one (the walk is over members, so
    // a slow walk would show as a slow test, not as a wrong answer).
    make(65536, {7, 65535});
    send(65535, frame(kBroadcast, kB));
    for (int i = 0; i < 100000; ++i) {
        route_.clear();
        Bytes f = frame(kB, station(0x1000 + (i % 1000)));
        sw_.route(static_cast<bus::PortId>(i % 65536), f, route_);
        bool from_b = i % 65536 == 65535;
        ASSERT_EQ(route_.to.size(), from_b ? 0u : 1u) << i;
        if (!from_b) {
            ASSERT_EQ(route_.to[0], 65535u);
        }
    }
    EXPECT_EQ(send_to(100, frame(kBroadcast, kA)), (PortSet{7, 65535}));
    EXPECT_EQ(send_to(100, frame(station(0xdead), kA)), (PortSet{7, 65535}));
}

TEST_F(SwitchTest, ShrinkingThePortCountForgetsEntriesOfRemovedPorts) {
    make(8, {0, 1, 6});
    send(6, frame(kBroadcast, kB));
    send(1, frame(kBroadcast, kC));
    sw_.on_detach(6);
    sw_.on_ports(4);
    EXPECT_EQ(counter("mac_entries"), 1u);
    EXPECT_EQ(stats().find("port 6"), std::string::npos) << stats();
    sw_.on_ports(8);
    sw_.on_attach(6);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 6})) << "B's old port came back unlearned";
}

TEST_F(SwitchTest, GrowingThePortCountKeepsEntriesAndMembers) {
    make(4, {0, 1});
    send(1, frame(kBroadcast, kB));
    sw_.on_ports(64);
    sw_.on_attach(40);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1}));
    EXPECT_EQ(send_to(0, frame(kBroadcast, kA)), (PortSet{1, 40}));
}

TEST_F(SwitchTest, AttachAndDetachInRandomOrderMatchAFloodModel) {
    constexpr bus::PortId kPorts = 64;
    make(kPorts, {});
    std::set<bus::PortId> model;
    std::mt19937 rng(7);
    std::uniform_int_distribution<bus::PortId> pick(0, kPorts - 1);
    for (int op = 0; op < 5000; ++op) {
        bus::PortId p = pick(rng);
        if (model.erase(p) != 0) {
            sw_.on_detach(p);
        } else {
            sw_.on_attach(p);
            model.insert(p);
        }
        bus::PortId from = pick(rng);
        PortSet want = model;
        want.erase(from);
        ASSERT_EQ(send_to(from, frame(kBroadcast, station(from))), want) << op;
    }
}

TEST(SwitchCatalog, TheCatalogMakesAFreshSwitchByName) {
    policies::Catalog catalog;
    auto [sa, a] = catalog.make("switch");
    auto [sb, b] = catalog.make("switch");
    ASSERT_TRUE(sa.ok());
    ASSERT_TRUE(sb.ok());
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_NE(a.get(), b.get());
    EXPECT_EQ(a->name(), "switch");
    EXPECT_EQ(catalog.names(), "group, hub, switch");
}

}  // namespace
}  // namespace ipnfs::test
