// The switch's 802.1Q VLANs and port mirroring: which ports are in a frame's
// VLAN, and the exact bytes each one gets (tag added, removed or kept).
#include <gtest/gtest.h>

#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

constexpr Mac kA = station(0xa);
constexpr Mac kB = station(0xb);

// Ports 0 and 1: access VLAN 10.  2 and 3: access VLAN 20.  4: trunk of 10
// and 20, no untagged VLAN.  5: untagged VLAN 1 and tagged 10.  7: access
// VLAN 1 (the default).  6: nothing attached until a test says so.
class SwitchVlanTest : public SwitchTest {
  protected:
    void SetUp() override {
        make(8, {0, 1, 2, 3, 4, 5, 7});
        run_ok(
            "vlan 0 10\nvlan 1 10\nvlan 2 20\nvlan 3 20\nvlan 4 none\ntrunk 4 10,20\n"
            "trunk 5 10");
    }
};

TEST_F(SwitchVlanTest, AccessPortsOnDifferentVlansNeverSeeEachOther) {
    EXPECT_EQ(send_to(0, frame(kBroadcast, kA)), (PortSet{1, 4, 5}));
    EXPECT_EQ(send_to(2, frame(kBroadcast, kB)), (PortSet{3, 4}));
    EXPECT_EQ(send_to(7, frame(kBroadcast, station(7))), (PortSet{5}));
    // B is known, but in VLAN 20: from VLAN 10 it is an unknown address.
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1, 4, 5}));
    EXPECT_EQ(send_to(3, frame(kA, station(3))), (PortSet{2, 4}));
}

TEST_F(SwitchVlanTest, AddressesAreLearnedPerVlan) {
    send(0, frame(kBroadcast, kA));                      // A in VLAN 10 on port 0
    send(4, tagged_frame(kBroadcast, kA, 20));           // and A in VLAN 20 on the trunk
    EXPECT_EQ(send_to(1, frame(kA, kB)), (PortSet{0}));  // VLAN 10
    EXPECT_EQ(send_to(2, frame(kA, kB)), (PortSet{4}));  // VLAN 20
    EXPECT_NE(stats().find("mac 02:00:00:00:00:0a vlan 10 port 0 age 0\n"), std::string::npos);
    EXPECT_NE(stats().find("mac 02:00:00:00:00:0a vlan 20 port 4 age 0\n"), std::string::npos);
}

TEST_F(SwitchVlanTest, AnUntaggedFrameLeavesTrunksTaggedWithItsVlan) {
    Bytes sent = frame(kBroadcast, kA);
    Deliveries d = send(0, sent);
    EXPECT_EQ(d[1], sent);
    EXPECT_EQ(d[4], tagged_frame(kBroadcast, kA, 10)) << "TPID 0x8100, PCP 0, VID 10 at offset 12";
    EXPECT_EQ(d[5], tagged_frame(kBroadcast, kA, 10));
    // The original goes in `to`, the tagged form in one shared variant.
    EXPECT_EQ(route_.to, std::vector<bus::PortId>{1});
    ASSERT_EQ(route_.variants().size(), 1u);
    EXPECT_EQ(PortSet(route_.variants()[0].to.begin(), route_.variants()[0].to.end()),
              (PortSet{4, 5}));
}

TEST_F(SwitchVlanTest, ATaggedFrameLeavesAccessPortsUntagged) {
    Bytes sent = tagged_frame(kBroadcast, kA, 20);
    Deliveries d = send(4, sent);
    EXPECT_EQ(ports_of(d), (PortSet{2, 3}));
    EXPECT_EQ(d[2], frame(kBroadcast, kA)) << "the 4 tag bytes at offset 12 removed";
    EXPECT_EQ(d[3], frame(kBroadcast, kA));
    EXPECT_TRUE(route_.to.empty());
}

TEST_F(SwitchVlanTest, ATaggedFrameKeepsItsPriorityOnOtherTrunks) {
    // PCP 5 and DEI 1 on VLAN 10.
    Bytes sent = tagged_frame(kBroadcast, kA, 0xb000 | 10);
    Deliveries d = send(4, sent);
    EXPECT_EQ(ports_of(d), (PortSet{0, 1, 5}));
    EXPECT_EQ(d[5], sent) << "trunk to trunk: the very bytes sent";
    EXPECT_EQ(d[0], frame(kBroadcast, kA));
    EXPECT_EQ(route_.to, std::vector<bus::PortId>{5});
}

TEST_F(SwitchVlanTest, AHybridPortTakesUntaggedAndTaggedFramesInTheirOwnVlans) {
    EXPECT_EQ(send_to(5, frame(kBroadcast, kA)), (PortSet{7})) << "untagged: VLAN 1";
    Deliveries d = send(5, tagged_frame(kBroadcast, kA, 10));
    EXPECT_EQ(ports_of(d), (PortSet{0, 1, 4}));
    EXPECT_EQ(d[4], tagged_frame(kBroadcast, kA, 10));
}

TEST_F(SwitchVlanTest, UnicastToAnAddressLearnedOnATrunkIsTagged) {
    send(4, tagged_frame(kBroadcast, kB, 10));
    Deliveries d = send(0, frame(kB, kA));
    EXPECT_EQ(ports_of(d), (PortSet{4}));
    EXPECT_EQ(d[4], tagged_frame(kB, kA, 10));
    EXPECT_TRUE(route_.to.empty());
}

TEST_F(SwitchVlanTest, APriorityTagBelongsToThePortsUntaggedVlan) {
    // VID 0, PCP 3: only a priority.  Neither form leaves as sent.
    Bytes sent = tagged_frame(kBroadcast, kA, 0x6000);
    Deliveries d = send(0, sent);
    EXPECT_EQ(ports_of(d), (PortSet{1, 4, 5}));
    EXPECT_EQ(d[1], frame(kBroadcast, kA));
    EXPECT_EQ(d[4], tagged_frame(kBroadcast, kA, 0x6000 | 10)) << "VID filled in, PCP kept";
    EXPECT_EQ(d[5], tagged_frame(kBroadcast, kA, 0x6000 | 10));
    EXPECT_TRUE(route_.to.empty());
    EXPECT_EQ(route_.variants().size(), 2u);
    EXPECT_EQ(send_to(1, frame(kA, kB)), (PortSet{0})) << "A was learned in VLAN 10";
    EXPECT_EQ(counter("vlan_drops"), 0u);
}

TEST_F(SwitchVlanTest, APriorityTagOnAPortWithoutUntaggedVlanIsDropped) {
    EXPECT_TRUE(send_to(4, tagged_frame(kBroadcast, kA, 0x6000)).empty());
    EXPECT_EQ(counter("vlan_drops"), 1u);
}

TEST_F(SwitchVlanTest, FramesOfAVlanThePortDoesNotCarryAreDroppedAndCounted) {
    EXPECT_TRUE(send_to(4, tagged_frame(kBroadcast, kA, 30)).empty()) << "30 not on the trunk";
    EXPECT_TRUE(send_to(0, tagged_frame(kBroadcast, kA, 10)).empty())
        << "an access port takes no tagged frames, not even of its own VLAN";
    EXPECT_TRUE(send_to(4, frame(kBroadcast, kA)).empty()) << "no untagged VLAN";
    EXPECT_TRUE(send_to(4, tagged_frame(kBroadcast, kA, 4095)).empty()) << "reserved VID";
    EXPECT_EQ(counter("vlan_drops"), 4u);
    EXPECT_EQ(counter("mac_entries"), 0u) << "a dropped frame teaches nothing";
    std::string s = stats();
    EXPECT_NE(s.find("swport 0 malformed 0 vlan_drops 1\n"), std::string::npos) << s;
    EXPECT_NE(s.find("swport 4 malformed 0 vlan_drops 3\n"), std::string::npos) << s;
}

TEST_F(SwitchVlanTest, ChangingAnAttachedPortsVlanMovesItBetweenFloods) {
    run_ok("vlan 1 20");
    EXPECT_EQ(send_to(0, frame(kBroadcast, kA)), (PortSet{4, 5}));
    EXPECT_EQ(send_to(2, frame(kBroadcast, kB)), (PortSet{1, 3, 4}));
    run_ok("trunk 4 20");
    EXPECT_EQ(send_to(0, frame(kBroadcast, kA)), (PortSet{5}));
    run_ok("trunk 4 none\nvlan 4 10");
    EXPECT_EQ(send_to(0, frame(kBroadcast, kA)), (PortSet{4, 5}));
    EXPECT_EQ(send(0, frame(kBroadcast, kA))[4], frame(kBroadcast, kA)) << "now an access port";
}

TEST_F(SwitchVlanTest, AnAddressLearnedOnAPortThatLeftTheVlanFloods) {
    send(1, frame(kBroadcast, kB));
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{1}));
    run_ok("vlan 1 20");
    EXPECT_EQ(send_to(0, frame(kB, kA)), (PortSet{4, 5}));
}

TEST_F(SwitchVlanTest, APortUntaggedAndTaggedInOneVlanGetsItOnceUntagged) {
    run_ok("trunk 1 10,20");
    Deliveries d = send(0, frame(kBroadcast, kA));
    EXPECT_EQ(ports_of(d), (PortSet{1, 4, 5}));
    EXPECT_EQ(d[1], frame(kBroadcast, kA));
}

TEST_F(SwitchVlanTest, ConfigOfADetachedPortAppliesWhenItAttaches) {
    run_ok("vlan 6 20");
    EXPECT_EQ(send_to(2, frame(kBroadcast, kB)), (PortSet{3, 4}));
    sw_.on_attach(6);
    EXPECT_EQ(send_to(2, frame(kBroadcast, kB)), (PortSet{3, 4, 6}));
    sw_.on_detach(6);
    run_ok("vlan 6 10");
    sw_.on_attach(6);
    EXPECT_EQ(send_to(2, frame(kBroadcast, kB)), (PortSet{3, 4}));
}

TEST_F(SwitchVlanTest, AMirrorGetsEveryFrameOfEveryVlanInItsOwnForm) {
    run_ok("mirror 6 on");  // untagged VLAN 1, no trunk
    sw_.on_attach(6);
    Deliveries d = send(0, frame(kBroadcast, kA));
    EXPECT_EQ(d[6], tagged_frame(kBroadcast, kA, 10)) << "another VLAN: tagged";
    d = send(4, tagged_frame(kBroadcast, kB, 0x2000 | 20));
    EXPECT_EQ(d[6], tagged_frame(kBroadcast, kB, 0x2000 | 20));
    d = send(7, frame(kBroadcast, station(7)));
    EXPECT_EQ(d[6], frame(kBroadcast, station(7))) << "its own VLAN: untagged";
    EXPECT_EQ(ports_of(d), (PortSet{5, 6}));
    // Learned unicast too, which no other port would see.
    send(1, frame(kBroadcast, kB));
    d = send(0, frame(kB, kA));
    EXPECT_EQ(ports_of(d), (PortSet{1, 6}));
    EXPECT_EQ(d[6], tagged_frame(kB, kA, 10));
    // Frames the switch drops are not mirrored.
    EXPECT_TRUE(send_to(4, tagged_frame(kBroadcast, kA, 30)).empty());
}

// A SPAN destination port only listens: its frames go nowhere, are not
// learned, and are counted.
TEST_F(SwitchVlanTest, AMirrorsOwnFramesAreDroppedAndCounted) {
    run_ok("mirror 6 on");
    sw_.on_attach(6);
    EXPECT_EQ(send_to(6, frame(kBroadcast, kA)), PortSet{});
    EXPECT_EQ(send_to(6, frame(kB, kA)), PortSet{});
    std::string s = stats();
    EXPECT_NE(s.find("\nmirror 6 dropped 2\n"), std::string::npos) << s;
    EXPECT_EQ(s.find("mac "), std::string::npos) << s;
    run_ok("mirror 6 off");
    EXPECT_EQ(send_to(6, frame(kBroadcast, kA)), (PortSet{5, 7}));
}

TEST_F(SwitchVlanTest, AMirrorInTheFloodedVlanIsNamedOnce) {
    run_ok("mirror 1 on");
    Deliveries d = send(0, frame(kBroadcast, kA));
    EXPECT_EQ(ports_of(d), (PortSet{1, 4, 5}));
    EXPECT_EQ(d[1], frame(kBroadcast, kA));
}

TEST_F(SwitchVlanTest, AMirrorWithoutUntaggedVlanGetsEverythingTagged) {
    run_ok("mirror 6 on\nvlan 6 none");
    sw_.on_attach(6);
    EXPECT_EQ(send(7, frame(kBroadcast, kA))[6], tagged_frame(kBroadcast, kA, 1));
}

TEST_F(SwitchVlanTest, AMirrorWithoutReaderOrTurnedOffGetsNothing) {
    run_ok("mirror 6 on");
    EXPECT_FALSE(send_to(0, frame(kBroadcast, kA)).contains(6));
    sw_.on_attach(6);
    EXPECT_TRUE(send_to(0, frame(kBroadcast, kA)).contains(6));
    sw_.on_detach(6);
    EXPECT_FALSE(send_to(0, frame(kBroadcast, kA)).contains(6));
    sw_.on_attach(6);
    run_ok("mirror 6 off");
    EXPECT_FALSE(send_to(0, frame(kBroadcast, kA)).contains(6));
    run_ok("mirror 6 on");
    EXPECT_TRUE(send_to(0, frame(kBroadcast, kA)).contains(6));
}

TEST_F(SwitchVlanTest, ShrinkingThePortCountForgetsTheConfigOfRemovedPorts) {
    run_ok("mirror 6 on\nvlan 6 30\nvlan 7 40");
    sw_.on_detach(7);
    sw_.on_ports(6);
    EXPECT_EQ(described(),
              "vlan 0 10\nvlan 1 10\nvlan 2 20\nvlan 3 20\nvlan 4 none\n"
              "trunk 4 10,20\ntrunk 5 10\n");
    sw_.on_ports(8);
    sw_.on_attach(6);
    sw_.on_attach(7);
    EXPECT_EQ(send_to(5, frame(kBroadcast, kA)), (PortSet{6, 7})) << "back in VLAN 1, no mirror";
}

}  // namespace
}  // namespace ipnfs::test
