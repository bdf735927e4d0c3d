// A network with the switch policy, end to end through bus::Network: the
// bytes each port reads when the switch tags and untags at the edge, and the
// place in the order that every form of one frame shares.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "bus_test_support.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;

class NetworkSwitch : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(IsOk(bus::Network::create("lan", {}, catalog_, "switch", net_)));
        // 0 and 1: access VLAN 10.  2: access VLAN 20.  3: trunk of 10 and 20.
        ASSERT_TRUE(
            IsOk(net_->control("vlan 0 10\nvlan 1 10\nvlan 2 20\nvlan 3 none\n"
                               "trunk 3 10,20\n")));
        for (bus::PortId p = 0; p < 4; ++p) {
            ASSERT_TRUE(IsOk(net_->connect(p, true, true, conns_.emplace_back()))) << p;
        }
    }

    void send(bus::PortId from, const Bytes& frame) {
        EXPECT_TRUE(IsOk(net_->send(conns_[from], frame))) << "from port " << from;
    }

    // The next message queued at the port, or null.
    bus::MessageRef take(bus::PortId port) {
        bus::Received r = net_->receive(conns_[port], nullptr);
        if (r.outcome == Outcome::message) return r.message;
        EXPECT_EQ(r.outcome, Outcome::would_block);
        return nullptr;
    }

    static Bytes bytes_of(const bus::MessageRef& m) {
        auto p = m->payload();
        return {p.begin(), p.end()};
    }

    policies::Catalog catalog_;  // outlives net_
    std::shared_ptr<bus::Network> net_;
    std::vector<Connection> conns_;
};

TEST_F(NetworkSwitch, AnAccessPortsFrameReachesTheTrunkTaggedInTheSamePlaceOfTheOrder) {
    Bytes sent = frame(kBroadcast, station(0xa), "from port 0");
    send(0, sent);
    bus::MessageRef at1 = take(1);
    bus::MessageRef at3 = take(3);
    ASSERT_NE(at1, nullptr);
    ASSERT_NE(at3, nullptr);
    EXPECT_EQ(bytes_of(at1), sent);
    EXPECT_EQ(bytes_of(at3), tagged_frame(kBroadcast, station(0xa), 10, "from port 0"));
    EXPECT_EQ(at1->seq(), at3->seq()) << "one send, one place in the order";
    EXPECT_EQ(at3->from(), 0u);
    EXPECT_EQ(take(2), nullptr) << "VLAN 20 never sees VLAN 10";
    EXPECT_EQ(take(0), nullptr) << "never back to the sender";
    EXPECT_EQ(take(1), nullptr);
    EXPECT_EQ(take(3), nullptr);
}

TEST_F(NetworkSwitch, ATrunksTaggedFrameReachesItsVlansAccessPortUntagged) {
    send(0, frame(kBroadcast, station(0xa)));
    bus::MessageRef first = take(1);
    ASSERT_NE(first, nullptr);
    take(3);
    // PCP 5 on VLAN 20, to an address nobody has used yet: flooded in VLAN 20.
    send(3, tagged_frame(station(0xb), station(0xc), 0xa000 | 20, "to VLAN 20"));
    bus::MessageRef at2 = take(2);
    ASSERT_NE(at2, nullptr);
    EXPECT_EQ(bytes_of(at2), frame(station(0xb), station(0xc), "to VLAN 20"));
    EXPECT_GT(at2->seq(), first->seq());
    EXPECT_EQ(take(0), nullptr);
    EXPECT_EQ(take(1), nullptr);
    // Port 0's station was learned: a reply to it goes to port 0 alone, tagless.
    send(3, tagged_frame(station(0xa), station(0xc), 10, "reply"));
    bus::MessageRef at0 = take(0);
    ASSERT_NE(at0, nullptr);
    EXPECT_EQ(bytes_of(at0), frame(station(0xa), station(0xc), "reply"));
    EXPECT_EQ(take(1), nullptr);
    EXPECT_EQ(take(2), nullptr);
}

TEST_F(NetworkSwitch, StatsAndCtlShowTheSwitch) {
    send(0, frame(kBroadcast, station(0xa)));
    send(1, Bytes(5));
    std::string stats = net_->stats();
    EXPECT_NE(stats.find("\nswitch mac_entries 1 maclimit 4096 expire 300 malformed 1 "
                         "vlan_drops 0 table_full 0\n"
                         "mac 02:00:00:00:00:0a vlan 10 port 0 age 0\n"
                         "swport 1 malformed 1 vlan_drops 0\n"),
              std::string::npos)
        << stats;
    std::string ctl = net_->describe();
    EXPECT_EQ(ctl.rfind("policy switch\n", 0), 0u) << ctl;
    EXPECT_NE(ctl.find("vlan 0 10\nvlan 1 10\nvlan 2 20\nvlan 3 none\ntrunk 3 10,20\n"),
              std::string::npos)
        << ctl;
    EXPECT_NE(ctl.find("Policies: group, hub, switch."), std::string::npos) << ctl;
    EXPECT_NE(ctl.find("#   trunk PORT VID[,VID...]|none"), std::string::npos) << ctl;
}

TEST_F(NetworkSwitch, AMalformedFrameIsSentButReachesNobody) {
    EXPECT_TRUE(IsOk(net_->send(conns_[0], Bytes(13))));
    for (bus::PortId p = 0; p < 4; ++p) EXPECT_EQ(take(p), nullptr) << p;
}

TEST_F(NetworkSwitch, ATagThatWouldPassTheLargestMessageSizeDropsThatCopyOnly) {
    ASSERT_TRUE(IsOk(net_->control("mtu 65535")));
    Bytes big = frame(kBroadcast, station(0xa), std::string(65535 - 14, 'x'));
    ASSERT_EQ(big.size(), 65535u);
    send(0, big);
    bus::MessageRef at1 = take(1);
    ASSERT_NE(at1, nullptr);
    EXPECT_EQ(at1->payload().size(), 65535u) << "untagged copies go as sent";
    EXPECT_EQ(take(3), nullptr) << "65539 bytes tagged: no reader could take it whole";
    EXPECT_EQ(parse_stats(net_->stats()).rows[3].drops, 1u);
}

// A lossless send that waits is routed again each time room may have
// appeared; what the switch counts, it counts once.
TEST(NetworkSwitchLossless, AWaitingMalformedFrameIsCountedOnce) {
    policies::Catalog catalog;
    std::shared_ptr<bus::Network> net;
    ASSERT_TRUE(
        IsOk(bus::Network::create("lan", {.queue = 1, .lossless = true}, catalog, "switch", net)));
    std::vector<Connection> c(3);
    for (bus::PortId p = 0; p < 3; ++p) ASSERT_TRUE(IsOk(net->connect(p, true, true, c[p])));
    ASSERT_TRUE(IsOk(net->send(c[0], frame(kBroadcast, station(0xa)))));  // fills 1 and 2
    RecordingSendWaiter full("full");
    RecordingSendWaiter bad("bad");
    ASSERT_TRUE(net->send(c[0], frame(kBroadcast, station(0xa)), &full).parked);
    ASSERT_TRUE(net->send(c[1], Bytes(5), &bad).parked) << "waits behind the first, in order";
    // Room appears three times: each is a retry of the head of the line.
    ASSERT_EQ(net->receive(c[1], nullptr).outcome, Outcome::message);
    ASSERT_EQ(net->receive(c[2], nullptr).outcome, Outcome::message);
    ASSERT_TRUE(full.wait());
    ASSERT_TRUE(bad.wait());
    EXPECT_NE(net->stats().find(" malformed 1 "), std::string::npos) << net->stats();
    for (auto& conn : c) net->disconnect(conn);
}

}  // namespace
}  // namespace ipnfs::test
