// The switch with spanning tree on: what it forwards in each port state,
// the BPDUs it keeps and sends, its ctl verb; and the network's side of a
// policy that sends frames itself (Policy::tick, bus/network_originate.cpp).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "bus_test_support.hpp"
#include "policies/stp.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using namespace std::chrono_literals;
namespace stp = policies::stp;

struct Collect final : bus::Originate {
    void send(bus::PortId port, std::span<const std::byte> payload) override {
        sent.emplace_back(port, Bytes(payload.begin(), payload.end()));
    }
    std::vector<std::pair<bus::PortId, Bytes>> sent;
};

class SwitchStp : public SwitchTest {
  protected:
    void tick() { sw_.tick(out_); }
    void wait(std::chrono::seconds s) {
        for (auto t = 0s; t < s; t += 1s) {
            clock_.advance(1s);
            tick();
        }
    }
    Bytes bpdu_from(Mac src, stp::BridgeId root) {
        stp::Bpdu b;
        b.root = b.bridge = root;
        b.port = 0x8001;
        b.max_age = 20 * 256;
        b.hello = 2 * 256;
        b.forward_delay = 4 * 256;
        Bytes out;
        stp::encode(b, src, out);
        return out;
    }
    Collect out_;
};

TEST_F(SwitchStp, OffFloodsBpdusAsFramesAndSendsNone) {
    make(3, {0, 1, 2});
    Bytes bpdu = bpdu_from(station(1), stp::make_bridge_id(0, station(1)));
    EXPECT_EQ(send_to(0, bpdu), (PortSet{1, 2}));
    tick();
    EXPECT_TRUE(out_.sent.empty());
}

TEST_F(SwitchStp, OnKeepsBpdusAndForwardsOnlyOnceForwarding) {
    make(3, {0, 1, 2});
    run_ok("stp forward-delay 4\nstp on");
    tick();
    // Its own BPDUs go out on every port (it believes itself the root).
    ASSERT_EQ(out_.sent.size(), 3U);
    std::optional<stp::Bpdu> mine = stp::parse(out_.sent[0].second);
    ASSERT_TRUE(mine.has_value());
    EXPECT_EQ(mine->forward_delay, 4 * 256);
    // A BPDU is the bridge's: nobody gets it.
    EXPECT_EQ(send_to(0, bpdu_from(station(9), stp::make_bridge_id(65535, station(9)))), PortSet{});
    // Listening: nothing passes, nothing is learned.
    Bytes data = frame(kBroadcast, station(0xa));
    EXPECT_EQ(send_to(0, data), PortSet{});
    EXPECT_EQ(counter("mac_entries"), 0U);
    wait(4s);  // learning: learned, not forwarded
    EXPECT_EQ(send_to(0, data), PortSet{});
    EXPECT_EQ(counter("mac_entries"), 1U);
    wait(4s);
    EXPECT_EQ(send_to(0, data), (PortSet{1, 2}));
    EXPECT_NE(stats().find("stport 0 role designated state forwarding"), std::string::npos)
        << stats();
    EXPECT_NE(stats().find("bpdus_in 1"), std::string::npos) << stats();
}

TEST_F(SwitchStp, ABetterRootBlocksTheSecondPathToIt) {
    make(3, {0, 1, 2});
    run_ok("stp forward-delay 4\nstp on");
    stp::BridgeId root = stp::make_bridge_id(0, station(1));
    // The same root heard on ports 0 and 1 (two paths to it): port 0 is the
    // root port, port 1 blocks.
    send(0, bpdu_from(station(1), root));
    stp::Bpdu via1;
    via1.root = root;
    via1.root_cost = 100;
    via1.bridge = stp::make_bridge_id(0, station(2));
    via1.port = 0x8002;
    via1.max_age = 20 * 256;
    via1.hello = 2 * 256;
    via1.forward_delay = 4 * 256;
    Bytes b;
    stp::encode(via1, station(2), b);
    send(1, b);
    tick();
    std::string s = stats();
    EXPECT_NE(s.find("root_port 0 root_path_cost 100"), std::string::npos) << s;
    EXPECT_NE(s.find("stport 1 role blocked state blocking"), std::string::npos) << s;
    // Keep the root's information fresh while the ports come up.
    for (int i = 0; i < 5; ++i) {
        wait(2s);
        send(0, bpdu_from(station(1), root));
        send(1, b);
    }
    EXPECT_EQ(send_to(2, frame(kBroadcast, station(0xb))), PortSet{0});
    EXPECT_GT(counter("mac_entries"), 0U);
}

TEST_F(SwitchStp, MalformedBpdusAreCountedAndChangeNothing) {
    make(2, {0, 1});
    run_ok("stp on");
    Bytes bpdu = bpdu_from(station(9), stp::make_bridge_id(0, station(9)));
    bpdu.resize(30);  // cut in the middle
    EXPECT_EQ(send_to(0, bpdu), PortSet{});
    EXPECT_NE(stats().find("bad_bpdus 1"), std::string::npos) << stats();
    EXPECT_EQ(stats().find("root_port 0"), std::string::npos) << stats();
}

TEST_F(SwitchStp, SettingsDescribeAndReadBack) {
    make(4, {});
    run_ok(
        "stp priority 4096\nstp hello 1\nstp maxage 6\nstp forward-delay 2\n"
        "stp cost 1 50\nstp port-priority 2 16\nstp on");
    std::string want =
        "stp priority 4096\nstp hello 1\nstp maxage 6\nstp forward-delay 2\n"
        "stp cost 1 50\nstp port-priority 2 16\nstp on\n";
    EXPECT_EQ(described(), want);
    policies::Switch other{clock_.source()};
    other.on_ports(4);
    run_policy_lines(other, described());
    EXPECT_EQ(policy_describe(other), want);
    run_ok("stp off");
    EXPECT_EQ(described().find("stp on"), std::string::npos);
}

TEST_F(SwitchStp, CtlRefusesWhatIsOutOfRange) {
    make(2, {});
    for (const char* bad :
         {"stp maybe", "stp priority 65536", "stp hello 0", "stp hello 11", "stp maxage 5",
          "stp maxage 41", "stp forward-delay 1", "stp forward-delay 31", "stp cost x 10",
          "stp cost 1 0", "stp cost 2 10", "stp cost 1 65536", "stp port-priority 1 17",
          "stp port-priority 1 256", "stp colour 1 1", "stp on now"}) {
        EXPECT_EQ(run(bad).code, std::errc::invalid_argument) << bad;
    }
    EXPECT_EQ(described(), "");
}

TEST_F(SwitchStp, TheBridgeIdComesFromTheNetworksName) {
    policies::Switch a{clock_.source()};
    policies::Switch b{clock_.source()};
    a.on_network("lan");
    b.on_network("wan");
    a.on_ports(1);
    b.on_ports(1);
    run_policy_lines(a, "stp on");
    run_policy_lines(b, "stp on");
    std::string sa = policy_stats(a);
    std::string sb = policy_stats(b);
    std::string ida = sa.substr(sa.find("bridge_id ") + 10, 17);
    std::string idb = sb.substr(sb.find("bridge_id ") + 10, 17);
    EXPECT_EQ(ida.substr(0, 7), "8000.02");  // priority, locally administered
    EXPECT_NE(ida, idb);
    policies::Switch again{clock_.source()};
    again.on_network("lan");
    again.on_ports(1);
    run_policy_lines(again, "stp on");
    EXPECT_NE(policy_stats(again).find(ida), std::string::npos);
}

// ---- through bus::Network ----

TEST(NetworkStp, BpdusReachPortReadersAndCountAsTheirs) {
    policies::Catalog catalog;
    std::shared_ptr<bus::Network> net;
    ASSERT_TRUE(IsOk(bus::Network::create("lan", {}, catalog, "switch", net)));
    std::vector<bus::Connection> conns(2);
    for (bus::PortId p = 0; p < 2; ++p) ASSERT_TRUE(IsOk(net->connect(p, true, true, conns[p])));
    ASSERT_TRUE(IsOk(net->control("stp on")));
    for (bus::PortId p = 0; p < 2; ++p) {
        bus::Received r = net->receive(conns[p], nullptr);
        ASSERT_EQ(r.outcome, bus::Outcome::message) << p;
        std::optional<stp::Bpdu> b = stp::parse(r.message->payload());
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(b->root, b->bridge);
    }
    // A BPDU written to port 1 is the switch's: port 0 gets nothing, and it
    // counts as port 1's (its answer waits for the hold time).
    stp::Bpdu worse;
    worse.root = worse.bridge = stp::make_bridge_id(65535, station(0xee));
    worse.port = 0x8001;
    worse.max_age = 20 * 256;
    worse.hello = 2 * 256;
    worse.forward_delay = 15 * 256;
    Bytes frame;
    stp::encode(worse, station(0xee), frame);
    ASSERT_TRUE(IsOk(net->send(conns[1], frame)));
    EXPECT_EQ(net->receive(conns[0], nullptr).outcome, bus::Outcome::would_block);
    EXPECT_NE(net->stats().find("stport 1 role designated state listening cost 100 priority 128 "
                                "bpdus_in 1 bpdus_out 1"),
              std::string::npos)
        << net->stats();
    net->hang_up();
}

}  // namespace
}  // namespace ipnfs::test
