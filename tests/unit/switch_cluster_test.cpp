// The switch in cluster scope, called as the network calls it: place() at
// the sender's daemon, route() in the group's order, with frames of other
// hosts' ports coming from an id no port has.  Three daemons' networks on
// the fake engine: cluster_network_test.cpp (ClusterSwitchTest).
#include <gtest/gtest.h>

#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

constexpr Mac kA = station(0xa);
constexpr Mac kB = station(0xb);
constexpr Mac kC = station(0xc);
// What the network passes as `from` for another daemon's port.
constexpr bus::PortId kElsewhere = (1U << 31) - 1;

class SwitchClusterTest : public SwitchTest {
  protected:
    void SetUp() override {
        make(4, {0, 1, 2});
        ASSERT_TRUE(IsOk(sw_.spans_hosts_now()));
        sw_.on_scope(true);
    }
    // Node `node`'s port `port` receives (the group's order said so).
    void remote(std::uint32_t node, bus::PortId port, bool receives = true) {
        bus::Presence p{receives, std::nullopt};
        sw_.on_remote({node, 77, port}, &p);
    }
    // A frame of node `node`'s port `port`, as it arrives in the order.
    Deliveries from_remote(std::uint32_t node, bus::PortId port, const Bytes& bytes) {
        route_.clear();
        route_.origin = {node, 0, port};
        sw_.route(kElsewhere, bytes, route_);
        sw_.sent(kElsewhere, route_);
        return flatten(route_, bytes);
    }
    // What the sender's daemon orders for a frame its port `from` wrote:
    // nothing (nullopt), or the bytes every daemon gets.
    std::optional<Bytes> placed(bus::PortId from, const Bytes& bytes) {
        route_.clear();
        sw_.place(from, bytes, route_);
        sw_.sent(from, route_);
        EXPECT_TRUE(IsOk(route_.refused));
        EXPECT_FALSE(route_.target) << "a switch places nothing at one port";
        if (route_.nowhere) return std::nullopt;
        return route_.rewritten ? route_.rewrite : bytes;
    }
};

TEST_F(SwitchClusterTest, AnotherHostsFrameFloodsToEveryLocalPortWhileItsDestinationIsUnknown) {
    EXPECT_EQ(ports_of(from_remote(3, 1, frame(kB, kA))), (PortSet{0, 1, 2}));
    EXPECT_EQ(ports_of(from_remote(3, 1, frame(kBroadcast, kA))), (PortSet{0, 1, 2}));
}

TEST_F(SwitchClusterTest, AnAddressLearnedOnAnotherHostGetsNoLocalPort) {
    remote(3, 1);
    from_remote(3, 1, frame(kBroadcast, kB));  // B speaks from node 3's port 1
    EXPECT_EQ(send_to(0, frame(kB, kA)), PortSet{}) << "node 3's daemon delivers it";
    // A, learned here at port 0, is delivered here only at port 0.
    EXPECT_EQ(ports_of(from_remote(3, 1, frame(kA, kB))), (PortSet{0}));
    EXPECT_EQ(ports_of(from_remote(2, 4, frame(kBroadcast, kC))), (PortSet{0, 1, 2}));
    EXPECT_NE(stats().find("\nmac 02:00:00:00:00:0b vlan 1 port 3:1 age 0\n"), std::string::npos)
        << stats();
    EXPECT_NE(stats().find("\nmac 02:00:00:00:00:0a vlan 1 port 0 age 0\n"), std::string::npos)
        << stats();
}

TEST_F(SwitchClusterTest, AnAddressThatMovesBetweenHostsFollowsTheOrder) {
    remote(3, 1);
    from_remote(3, 1, frame(kBroadcast, kB));
    EXPECT_EQ(send_to(0, frame(kB, kA)), PortSet{});
    send(2, frame(kBroadcast, kB));  // B moved here, port 2
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{2}));
    from_remote(3, 1, frame(kBroadcast, kB));  // and back
    EXPECT_EQ(send_to(0, frame(kB, kA)), PortSet{});
}

TEST_F(SwitchClusterTest, AnotherHostsPortThatStopsReceivingFloodsAsALocalOneWould) {
    remote(3, 1);
    from_remote(3, 1, frame(kBroadcast, kB));
    EXPECT_EQ(send_to(0, frame(kB, kA)), PortSet{});
    remote(3, 1, false);
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 2}));
    // Never told of at all (its join not ordered here yet): flooded too.
    from_remote(2, 5, frame(kBroadcast, kC));
    EXPECT_EQ(send_to(0, frame(kC, kA)), (PortSet{1, 2}));
}

TEST_F(SwitchClusterTest, AgedEntriesOnlyFlood) {
    remote(3, 1);
    from_remote(3, 1, frame(kBroadcast, kB));
    clock_.advance(std::chrono::seconds(301));
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 2}));
}

TEST_F(SwitchClusterTest, PlaceSendsAFrameAsATrunkBetweenHostsCarriesIt) {
    run_ok("vlan 0 10\ntrunk 1 20,30\nvlan 2 none\nmirror 3 on");
    // VLAN 1 untagged: as written.
    EXPECT_EQ(placed(1, frame(kB, kA)), frame(kB, kA));
    // An access port of VLAN 10: tagged with it; a priority tag keeps its PCP.
    EXPECT_EQ(placed(0, frame(kB, kA)), tagged_frame(kB, kA, 10));
    EXPECT_EQ(placed(0, tagged_frame(kB, kA, 0xa000)), tagged_frame(kB, kA, 0xa00a));
    // A trunk's tagged frame: as written.
    EXPECT_EQ(placed(1, tagged_frame(kB, kA, 20)), tagged_frame(kB, kA, 20));
    // What the port's VLANs do not take, a mirror's and a runt stay home, counted.
    EXPECT_EQ(placed(1, tagged_frame(kB, kA, 40)), std::nullopt);
    EXPECT_EQ(placed(2, frame(kB, kA)), std::nullopt);
    EXPECT_EQ(placed(3, frame(kB, kA)), std::nullopt);
    EXPECT_EQ(placed(1, Bytes(5)), std::nullopt);
    EXPECT_EQ(counter("vlan_drops"), 2U);
    EXPECT_EQ(counter("malformed"), 1U);
    EXPECT_NE(stats().find("\nmirror 3 dropped 1\n"), std::string::npos) << stats();
}

TEST_F(SwitchClusterTest, EachHostDeliversATrunkFrameInItsOwnPortsForms) {
    make(4, {0, 1, 2, 3});
    run_ok("vlan 0 10\ntrunk 1 10,20\nvlan 2 20\nmirror 3 on");
    // VLAN 10 from another host: port 0 untagged, trunk 1 tagged, the mirror
    // as it travelled; port 2 (VLAN 20) nothing.
    Deliveries d = from_remote(2, 0, tagged_frame(kBroadcast, kA, 10));
    EXPECT_EQ(ports_of(d), (PortSet{0, 1, 3}));
    EXPECT_EQ(d[0], frame(kBroadcast, kA));
    EXPECT_EQ(d[1], tagged_frame(kBroadcast, kA, 10));
    EXPECT_EQ(d[3], tagged_frame(kBroadcast, kA, 10));
    // This host's own frame comes back in the order in the trunk's form too.
    d = send(0, tagged_frame(kBroadcast, kC, 10));
    EXPECT_EQ(ports_of(d), (PortSet{1, 3}));
    // VLAN 1 untagged: the trunk's untagged VLAN (1, the default) and the mirror.
    EXPECT_EQ(ports_of(from_remote(2, 0, frame(kBroadcast, kB))), (PortSet{1, 3}));
}

TEST_F(SwitchClusterTest, TheSpanningTreeStaysOnOneHost) {
    bus::Status s = run("stp on");
    EXPECT_TRUE(FailsWith(s, std::errc::not_supported));
    EXPECT_NE(s.reason.find("scope node"), std::string::npos) << s.reason;
    sw_.on_scope(false);
    ASSERT_TRUE(IsOk(run("stp on")));
    s = sw_.spans_hosts_now();
    EXPECT_TRUE(FailsWith(s, std::errc::not_supported));
    EXPECT_NE(s.reason.find("stp off"), std::string::npos) << s.reason;
}

TEST_F(SwitchClusterTest, BackOnOneHostOtherHostsAddressesAreForgotten) {
    remote(3, 1);
    from_remote(3, 1, frame(kBroadcast, kB));
    sw_.on_scope(false);
    EXPECT_EQ(stats().find("port 3:1"), std::string::npos) << stats();
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 2}));
    // A frame from no port of ours is nobody's on one host.
    route_.clear();
    route_.origin = {3, 0, 1};
    sw_.route(kElsewhere, frame(kBroadcast, kB), route_);
    EXPECT_TRUE(flatten(route_, frame(kBroadcast, kB)).empty());
}

}  // namespace
}  // namespace ipnfs::test
