// Capture readers: a copy of every data message the network accepts, as
// sent, in order, time-stamped; never an event; never a reason for a sender
// to wait, lossless or not.
#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "bus_test_support.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;

std::uint64_t realtime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

class NetworkCapture : public HubNetworkTest {
  protected:
    Connection capture() {
        Connection conn;
        EXPECT_TRUE(IsOk(net_->connect_capture(conn)));
        EXPECT_TRUE(conn.observer());
        return conn;
    }
    // Every message the connection has queued.
    std::vector<bus::MessageRef> take_all(const Connection& conn) {
        std::vector<bus::MessageRef> out;
        for (;;) {
            bus::Received r = net_->receive(conn, nullptr);
            if (r.outcome != Outcome::message) {
                EXPECT_EQ(r.outcome, Outcome::would_block);
                return out;
            }
            out.push_back(r.message);
        }
    }
};

TEST_F(NetworkCapture, GetsEveryDataMessageOnceInSendOrderWithTimeStampsAndNoEvents) {
    Connection cap = capture();
    std::uint64_t before = realtime_ns();
    Connection a = duplex(0);  // join and counts events: not captured
    Connection b = duplex(1);
    send(a, "one");
    send(b, "two");
    send(a, "three");
    Connection events;
    ASSERT_TRUE(IsOk(net_->connect_observer(events)));
    net_->disconnect(b);  // leave: not captured
    std::uint64_t after = realtime_ns();

    std::vector<bus::MessageRef> got = take_all(cap);
    ASSERT_EQ(got.size(), 3u);
    std::vector<std::string> texts;
    for (const auto& m : got) {
        texts.push_back(text(m));
        EXPECT_FALSE(m->is_event());
        EXPECT_GE(m->time_ns(), before);
        EXPECT_LE(m->time_ns(), after);
    }
    EXPECT_EQ(texts, (std::vector<std::string>{"one", "two", "three"}));
    EXPECT_EQ(got[0]->from(), 0u);
    EXPECT_EQ(got[1]->from(), 1u);
    EXPECT_LT(got[0]->seq(), got[1]->seq());
    EXPECT_LT(got[1]->seq(), got[2]->seq());
    EXPECT_LE(got[0]->time_ns(), got[1]->time_ns());
    EXPECT_LE(got[1]->time_ns(), got[2]->time_ns());
    // The events reader still hears events, and no capture reader counts as one.
    EXPECT_FALSE(drain_all(events).empty());
    EXPECT_EQ(stat("event_readers"), "1");
    EXPECT_EQ(stat("capture_readers"), "1");
    EXPECT_EQ(stat("captured"), "3");
    EXPECT_EQ(stat("capture_drops"), "0");
    net_->disconnect(events);
    net_->disconnect(cap);
    EXPECT_EQ(stat("capture_readers"), "0");
}

TEST_F(NetworkCapture, MessagesWithoutACaptureReaderCarryNoTimeStamp) {
    Connection a = duplex(0);
    Connection b = reader(1);
    send(a, "unwatched");
    bus::Received r = net_->receive(b, nullptr);
    ASSERT_EQ(r.outcome, Outcome::message);
    EXPECT_EQ(r.message->time_ns(), 0u) << "the clock is read only while someone captures";
}

TEST_F(NetworkCapture, SeesMessagesNobodyElseReceivesButNotRefusedOnes) {
    Connection cap = capture();
    Connection a = writer(0);  // a hub with no receiver: accepted, delivered to nobody
    send(a, "into the void");
    ASSERT_EQ(take_all(cap).size(), 1u);

    ASSERT_TRUE(IsOk(net_->control("mtu 4")));
    EXPECT_FALSE(net_->send(a, bytes("too long")).ok());
    EXPECT_TRUE(take_all(cap).empty()) << "a refused send is not traffic";
}

TEST_F(NetworkCapture, AParkedCaptureReadIsCompletedByTheNextMessage) {
    Connection cap = capture();
    RecordingWaiter& waiter = receive_waiter();
    ASSERT_EQ(net_->receive(cap, &waiter).outcome, Outcome::parked);
    Connection a = writer(0);
    EXPECT_EQ(waiter.calls(), 0) << "events do not wake a capture reader";
    send(a, "wake");
    ASSERT_TRUE(waiter.wait());
    ASSERT_EQ(waiter.result().outcome, Outcome::message);
    EXPECT_EQ(text(waiter.result().message), "wake");
    net_->hang_up();
    EXPECT_EQ(net_->receive(cap, nullptr).outcome, Outcome::hung_up);
}

TEST_F(NetworkCapture, ACaptureReaderThatNeverReadsNeverHoldsALosslessSender) {
    remake({.ports = 4, .mtu = 1514, .queue = 8, .lossless = true, .pool = 16});
    Connection cap = capture();
    Connection a = writer(0);
    Connection b = reader(1);
    constexpr int kMessages = 5000;
    for (int i = 0; i < kMessages; ++i) {
        std::string msg = std::to_string(i);
        // No waiter: a send that would wait fails with EAGAIN instead.
        ASSERT_TRUE(IsOk(net_->send(a, bytes(msg)))) << "message " << i;
        ASSERT_EQ(take(b), msg);
        ASSERT_TRUE(net_->poll_writable(a)) << "message " << i;
    }
    EXPECT_EQ(stat("pool_used"), "0") << "captured copies are not in the pool";
    EXPECT_EQ(stat("parked_senders"), "0");
    std::uint64_t kept = bus::Limits::kCaptureQueue;
    EXPECT_EQ(stat("captured"), std::to_string(kept));
    EXPECT_EQ(stat("capture_drops"), std::to_string(kMessages - kept));
    EXPECT_EQ(bus::Network::drops(cap), kMessages - kept);
    EXPECT_EQ(stat("drops"), "0") << "port drops are the ports' own";

    // What it kept is the oldest, in order; taking it frees no pool room.
    std::vector<bus::MessageRef> got = take_all(cap);
    ASSERT_EQ(got.size(), kept);
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(text(got[i]), std::to_string(i));
    EXPECT_EQ(stat("pool_used"), "0");
    net_->disconnect(cap);
    EXPECT_EQ(stat("capture_drops"), std::to_string(kMessages - kept)) << "kept after it closed";
}

TEST_F(NetworkCapture, ACaptureReaderHoldsAtMostItsBytesWhateverTheMtu) {
    // 1024 messages of 64 KiB would be 64 MiB outside every byte budget.
    remake({.ports = 4, .mtu = 65535, .queue = 8});
    Connection cap = capture();
    Connection a = writer(0);
    const std::string big(65535, 'x');
    constexpr int kMessages = 200;
    for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(IsOk(net_->send(a, bytes(big))));
    std::vector<bus::MessageRef> got = take_all(cap);
    ASSERT_FALSE(got.empty());
    std::uint64_t held = 0;
    for (const auto& m : got) held += m->held_bytes();
    EXPECT_LE(held, bus::Limits::kCaptureBytes);
    EXPECT_GT(held + got.front()->held_bytes(), bus::Limits::kCaptureBytes) << "it filled up";
    EXPECT_EQ(stat("capture_drops"), std::to_string(kMessages - got.size()));
    // Read, it has room again.
    ASSERT_TRUE(IsOk(net_->send(a, bytes(big))));
    EXPECT_EQ(take_all(cap).size(), 1U);
    net_->disconnect(cap);
}

TEST_F(NetworkCapture, AQueuedCaptureCopyIsNotInThePoolOfALosslessNetwork) {
    remake({.ports = 4, .mtu = 1514, .queue = 2, .lossless = true, .pool = 1});
    Connection cap = capture();
    Connection a = writer(0);
    Connection b = reader(1);
    send(a, "x");
    EXPECT_EQ(stat("pool_used"), "1");
    ASSERT_EQ(take(b), "x");
    EXPECT_EQ(stat("pool_used"), "0") << "the capture's copy keeps no pool slot";
    send(a, "y");  // the pool of 1 is free again: no wait
    ASSERT_EQ(take_all(cap).size(), 2u);
    ASSERT_EQ(take(b), "y");
    EXPECT_EQ(stat("pool_used"), "0");
}

class NetworkSwitchCapture : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(IsOk(bus::Network::create("lan", {}, catalog_, "switch", net_)));
        // 0: access VLAN 10.  1: trunk of 10: the switch tags what it sends there.
        ASSERT_TRUE(IsOk(net_->control("vlan 0 10\nvlan 1 none\ntrunk 1 10\n")));
        ASSERT_TRUE(IsOk(net_->connect(0, true, true, a_)));
        ASSERT_TRUE(IsOk(net_->connect(1, true, true, b_)));
        ASSERT_TRUE(IsOk(net_->connect_capture(cap_)));
    }
    policies::Catalog catalog_;  // outlives net_
    std::shared_ptr<bus::Network> net_;
    Connection a_, b_, cap_;
};

TEST_F(NetworkSwitchCapture, CapturesTheFrameAsSentNotTheTaggedVariant) {
    EXPECT_TRUE(net_->ethernet());
    Bytes sent = frame(kBroadcast, station(0xa), "untagged");
    ASSERT_TRUE(IsOk(net_->send(a_, sent)));
    bus::Received at_trunk = net_->receive(b_, nullptr);
    ASSERT_EQ(at_trunk.outcome, Outcome::message);
    auto tagged = at_trunk.message->payload();
    EXPECT_EQ(Bytes(tagged.begin(), tagged.end()),
              tagged_frame(kBroadcast, station(0xa), 10, "untagged"));

    bus::Received got = net_->receive(cap_, nullptr);
    ASSERT_EQ(got.outcome, Outcome::message);
    auto captured = got.message->payload();
    EXPECT_EQ(Bytes(captured.begin(), captured.end()), sent);
    EXPECT_EQ(net_->receive(cap_, nullptr).outcome, Outcome::would_block) << "one copy per send";
}

TEST(NetworkLinkType, OnlyTheSwitchSaysItCarriesEthernet) {
    policies::Catalog catalog(IPNFS_PLUGIN_DIR);
    // A plugin cannot say so: the C table has no such field.
    for (const char* policy : {"hub", "group", "switch", "topic"}) {
        std::shared_ptr<bus::Network> net;
        ASSERT_TRUE(IsOk(bus::Network::create("n", {}, catalog, policy, net)));
        EXPECT_EQ(net->ethernet(), std::string_view(policy) == "switch") << policy;
    }
}

}  // namespace
}  // namespace ipnfs::test
