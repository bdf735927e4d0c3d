// Network delivery through the hub: who gets a message, boundaries, limits,
// lossy queues and what disconnecting does to them.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;
using bus::PortId;
using Texts = std::vector<std::string>;

using NetworkDelivery = HubNetworkTest;

TEST(NetworkCreate, RejectsAnUnknownPolicyNamingTheKnownOnes) {
    policies::Catalog catalog;
    std::shared_ptr<bus::Network> net;
    bus::Status s = bus::Network::create("n", {}, catalog, "router", net);
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_NE(s.reason.find("router"), std::string::npos) << s.reason;
    EXPECT_NE(s.reason.find("group, hub, switch"), std::string::npos) << s.reason;
    EXPECT_EQ(net, nullptr);
}

TEST(NetworkCreate, UsesTheNameAndSettingsGiven) {
    policies::Catalog catalog;
    std::shared_ptr<bus::Network> net;
    ASSERT_TRUE(IsOk(
        bus::Network::create("lan", {.ports = 5, .mtu = 9000, .queue = 3}, catalog, "hub", net)));
    EXPECT_EQ(net->name(), "lan");
    EXPECT_EQ(net->port_count(), 5u);
    EXPECT_EQ(net->describe().rfind("policy hub\nports 5\nmtu 9000\nqueue 3\n", 0), 0u);
}

TEST_F(NetworkDelivery, ConnectToAPortBeyondTheCountIsNoSuchFile) {
    Connection c;
    bus::Status s = net_->connect(32, true, true, c);
    EXPECT_TRUE(FailsWith(s, std::errc::no_such_file_or_directory));
    EXPECT_NE(s.reason.find("32"), std::string::npos) << s.reason;
}

TEST_F(NetworkDelivery, ConnectionRecordsItsPortAndDirections) {
    Connection c = connect(4, true, false);
    EXPECT_EQ(c.id, 4u);
    EXPECT_TRUE(c.reads);
    EXPECT_FALSE(c.writes);
    EXPECT_NE(c.port, nullptr);
    EXPECT_EQ(reader(4).port, c.port) << "two connections to one port share it";
}

TEST_F(NetworkDelivery, AnExclusiveConnectionNeedsAFreePortAndKeepsOthersOut) {
    Connection shared = reader(2);
    Connection c;
    EXPECT_TRUE(
        FailsWith(net_->connect(2, true, true, c, true), std::errc::device_or_resource_busy))
        << "exclusive on a port someone has open";
    Connection sole;
    ASSERT_TRUE(IsOk(net_->connect(3, true, true, sole, true)));
    bus::Status s = net_->connect(3, true, false, c);
    EXPECT_TRUE(FailsWith(s, std::errc::device_or_resource_busy));
    EXPECT_NE(s.reason.find("port 3 is in use"), std::string::npos) << s.reason;
    net_->disconnect(sole);
    EXPECT_TRUE(IsOk(net_->connect(3, true, false, c))) << "released with its connection";
    net_->disconnect(c);
    net_->disconnect(shared);
}

TEST_F(NetworkDelivery, ExclusiveConnectAnyTakesTheLowestFreePort) {
    Connection first = reader(0);
    Connection sole;
    ASSERT_TRUE(IsOk(net_->connect_any(true, true, sole, true)));
    EXPECT_EQ(sole.id, 1u);
    Connection c;
    EXPECT_TRUE(FailsWith(net_->connect(1, false, true, c), std::errc::device_or_resource_busy));
    net_->disconnect(sole);
    net_->disconnect(first);
}

TEST_F(NetworkDelivery, ConnectAndDisconnectAreCountedPerPort) {
    Connection r1 = reader(2);
    Connection r2 = reader(2);
    Connection w = writer(2);
    Connection d = duplex(5);
    Stats st = stats();
    EXPECT_EQ(st.totals["connected"], "2");
    EXPECT_EQ(st.rows[2].readers, 2u);
    EXPECT_EQ(st.rows[2].writers, 1u);
    EXPECT_EQ(st.rows[5].readers, 1u);
    EXPECT_EQ(st.rows[5].writers, 1u);

    net_->disconnect(r1);
    net_->disconnect(d);
    st = stats();
    EXPECT_EQ(st.totals["connected"], "1");
    EXPECT_EQ(st.rows[2].readers, 1u);
    EXPECT_EQ(st.rows[2].writers, 1u);
    EXPECT_EQ(st.rows.count(5), 0u) << "an idle port with no traffic has no row";

    net_->disconnect(r2);
    net_->disconnect(w);
    EXPECT_EQ(stats().totals["connected"], "0");
}

TEST_F(NetworkDelivery, SendReachesReadersOfOtherPortsButNotTheSender) {
    Connection a = duplex(0);
    Connection b = reader(1);
    Connection c = duplex(2);
    writer(3);  // a port that only sends
    send(a, "from a");
    EXPECT_EQ(drain(a), Texts{});
    EXPECT_EQ(drain(b), Texts{"from a"});
    EXPECT_EQ(drain(c), Texts{"from a"});
    send(c, "from c");
    EXPECT_EQ(drain(a), Texts{"from c"});
    EXPECT_EQ(drain(b), Texts{"from c"});
    EXPECT_EQ(drain(c), Texts{});
    EXPECT_EQ(stats().rows[3].drops, 0u) << "a port nobody reads is not sent copies";
}

TEST_F(NetworkDelivery, WriterOnlyConnectionReachesEveryReader) {
    Connection r0 = reader(0);
    Connection r7 = reader(7);
    Connection w = writer(3);
    send(w, "hello");
    EXPECT_EQ(drain(r0), Texts{"hello"});
    EXPECT_EQ(drain(r7), Texts{"hello"});
}

TEST_F(NetworkDelivery, ReaderOfTheSendersPortOnAnotherDescriptorDoesNotReceive) {
    Connection w = writer(1);
    Connection r = reader(1);
    Connection other = reader(2);
    send(w, "x");
    EXPECT_EQ(drain(r), Texts{});
    EXPECT_EQ(drain(other), Texts{"x"});
}

TEST_F(NetworkDelivery, FanOutHandsEveryRecipientTheSameMessage) {
    Connection w = writer(0);
    std::vector<Connection> readers;
    for (PortId p = 1; p <= 5; ++p) readers.push_back(reader(p));
    send(w, "one buffer");
    std::set<const bus::Message*> seen;
    std::set<const std::byte*> buffers;
    for (const Connection& r : readers) {
        bus::Received got = net_->receive(r, nullptr);
        ASSERT_EQ(got.outcome, Outcome::message);
        seen.insert(got.message.get());
        buffers.insert(got.message->payload().data());
        EXPECT_EQ(got.message->from(), 0u);
        EXPECT_EQ(text(got.message), "one buffer");
    }
    EXPECT_EQ(seen.size(), 1u) << "each recipient got its own copy";
    EXPECT_EQ(buffers.size(), 1u);
}

TEST_F(NetworkDelivery, MessageBoundariesAreKept) {
    Connection w = writer(0);
    Connection r = reader(1);
    const Texts sent = {"a", "bc", "", std::string("\0\0z", 3), "def", std::string(1514, 'm')};
    for (const auto& m : sent) send(w, m);
    EXPECT_EQ(drain(r), sent);
}

TEST_F(NetworkDelivery, MessagesCarryTheirSenderPortAndIncreasingSeq) {
    Connection a = duplex(3);
    Connection b = duplex(9);
    Connection r = reader(20);
    send(a, "1");
    send(b, "2");
    send(a, "3");
    std::vector<std::pair<PortId, std::uint64_t>> got;
    for (bus::Received m; (m = net_->receive(r, nullptr)).outcome == Outcome::message;) {
        got.emplace_back(m.message->from(), m.message->seq());
    }
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].first, 3u);
    EXPECT_EQ(got[1].first, 9u);
    EXPECT_EQ(got[2].first, 3u);
    EXPECT_LT(got[0].second, got[1].second);
    EXPECT_LT(got[1].second, got[2].second);
}

TEST_F(NetworkDelivery, SendOnAConnectionWithoutWriteIsBadFileDescriptor) {
    Connection r = reader(0);
    Connection other = reader(1);
    EXPECT_TRUE(FailsWith(net_->send(r, bytes("x")), std::errc::bad_file_descriptor));
    EXPECT_EQ(drain(other), Texts{});
    EXPECT_EQ(stats().totals["msgs_in"], "0");
}

TEST_F(NetworkDelivery, MessageOverTheMtuIsMessageSizeAndGoesNowhere) {
    remake({.ports = 4, .mtu = 100, .queue = 8});
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_TRUE(IsOk(net_->send(w, bytes(std::string(100, 'a')))));
    bus::Status s = net_->send(w, bytes(std::string(101, 'b')));
    EXPECT_TRUE(FailsWith(s, std::errc::message_size));
    EXPECT_NE(s.reason.find("100"), std::string::npos) << s.reason;
    EXPECT_EQ(drain(r), Texts{std::string(100, 'a')});
    EXPECT_EQ(stats().totals["msgs_in"], "1");
}

TEST_F(NetworkDelivery, MessageOverTheLargestMtuIsAlwaysMessageSize) {
    ASSERT_TRUE(IsOk(net_->control("mtu 65535")));
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_TRUE(IsOk(net_->send(w, bytes(std::string(bus::Limits::kMaxMtu, 'a')))));
    EXPECT_TRUE(FailsWith(net_->send(w, bytes(std::string(bus::Limits::kMaxMtu + 1, 'b'))),
                          std::errc::message_size));
    EXPECT_EQ(drain(r).size(), 1u);
}

TEST_F(NetworkDelivery, FullQueueDropsOnlyThatPortsCopy) {
    remake({.ports = 4, .mtu = 1514, .queue = 4});
    Connection w = writer(0);
    Connection slow = reader(1);
    Connection fast = reader(2);
    Texts sent;
    Texts fast_got;
    for (int i = 0; i < 10; ++i) {
        sent.push_back("m" + std::to_string(i));
        send(w, sent.back());
        for (auto& m : drain(fast)) fast_got.push_back(m);
    }
    EXPECT_EQ(fast_got, sent) << "a port with room lost messages";
    Stats st = stats();
    EXPECT_EQ(st.rows[1].drops, 6u);
    EXPECT_EQ(st.rows[1].queued, 4u);
    EXPECT_EQ(st.rows[2].drops, 0u);
    EXPECT_EQ(st.totals["drops"], "6");
    EXPECT_EQ(drain(slow), (Texts{"m0", "m1", "m2", "m3"})) << "the oldest messages are kept";
    send(w, "after");
    EXPECT_EQ(drain(slow), Texts{"after"}) << "a drained queue takes messages again";
}

TEST_F(NetworkDelivery, LastReaderDisconnectingDiscardsItsQueue) {
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(1);
    for (const auto* m : {"a", "b", "c"}) send(w, m);
    net_->disconnect(r1);
    EXPECT_EQ(stats().rows[1].queued, 3u) << "another reader still holds the port";
    EXPECT_EQ(stats().rows[1].drops, 0u);
    net_->disconnect(r2);
    Stats st = stats();
    EXPECT_EQ(st.rows[1].drops, 3u);
    EXPECT_EQ(st.rows[1].queued, 0u);
    EXPECT_EQ(st.rows[1].readers, 0u);
    Connection again = reader(1);
    EXPECT_EQ(drain(again), Texts{}) << "a new reader saw messages from before it connected";
}

TEST_F(NetworkDelivery, TwoReadersOfOnePortShareItsQueue) {
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(1);
    for (const auto* m : {"a", "b", "c"}) send(w, m);
    EXPECT_EQ(take(r1), "a");
    EXPECT_EQ(take(r2), "b");
    EXPECT_EQ(take(r1), "c");
    EXPECT_EQ(take(r2), std::nullopt);
}

TEST_F(NetworkDelivery, MessagesSentBeforeAReaderConnectsAreNotKeptForIt) {
    Connection w = writer(0);
    send(w, "early");
    Connection r = reader(1);
    send(w, "late");
    EXPECT_EQ(drain(r), Texts{"late"});
}

TEST_F(NetworkDelivery, WriterLeavingKeepsWhatItSent) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "kept");
    net_->disconnect(w);
    EXPECT_EQ(drain(r), Texts{"kept"});
}

TEST_F(NetworkDelivery, ConnectAnyPicksTheLowestUnconnectedPort) {
    remake({.ports = 4, .mtu = 1514, .queue = 8});
    reader(0);
    writer(2);  // a writer alone makes a port connected too
    Connection c;
    ASSERT_TRUE(IsOk(net_->connect_any(true, true, c)));
    EXPECT_EQ(c.id, 1u);
    EXPECT_TRUE(c.reads);
    EXPECT_TRUE(c.writes);
    ASSERT_TRUE(IsOk(net_->connect_any(false, true, c)));
    EXPECT_EQ(c.id, 3u);
}

TEST_F(NetworkDelivery, ConnectAnyIsNoSpaceWhenEveryPortIsConnected) {
    remake({.ports = 3, .mtu = 1514, .queue = 8});
    std::vector<Connection> held;
    for (int i = 0; i < 3; ++i) {
        Connection c;
        ASSERT_TRUE(IsOk(net_->connect_any(true, false, c)));
        EXPECT_EQ(c.id, static_cast<PortId>(i));
        held.push_back(c);
    }
    Connection c;
    bus::Status s = net_->connect_any(true, false, c);
    EXPECT_TRUE(FailsWith(s, std::errc::no_space_on_device));
    EXPECT_NE(s.reason.find('3'), std::string::npos) << s.reason;

    net_->disconnect(held[1]);
    ASSERT_TRUE(IsOk(net_->connect_any(true, false, c)));
    EXPECT_EQ(c.id, 1u) << "a port freed by disconnect is picked again";
}

TEST_F(NetworkDelivery, ConnectAnyPortReceivesLikeAnyOther) {
    Connection w = writer(0);
    Connection c;
    ASSERT_TRUE(IsOk(net_->connect_any(true, false, c)));
    send(w, "hi");
    EXPECT_EQ(drain(c), Texts{"hi"});
}

TEST_F(NetworkDelivery, RandomConnectsAndDisconnectsRouteLikeASetModel) {
    constexpr PortId kPorts = 24;
    remake({.ports = kPorts, .mtu = 1514, .queue = 4});
    std::map<PortId, std::vector<Connection>> readers;  // model: ports with readers
    std::mt19937 rng(7);
    std::uniform_int_distribution<PortId> pick(0, kPorts - 1);
    for (int op = 0; op < 1500; ++op) {
        PortId p = pick(rng);
        auto& conns = readers[p];
        if (!conns.empty() && rng() % 2 == 0) {
            net_->disconnect(conns.back());
            conns.pop_back();
        } else if (conns.size() < 3) {
            conns.push_back(reader(p));
        }
        if (op % 5 != 0) continue;
        PortId from = pick(rng);
        Connection w = writer(from);
        std::string m = "op" + std::to_string(op);
        send(w, m);
        net_->disconnect(w);
        for (auto& [port, list] : readers) {
            if (list.empty()) continue;
            Texts want = port == from ? Texts{} : Texts{m};
            ASSERT_EQ(drain(list[rng() % list.size()]), want) << "port " << port << " op " << op;
        }
    }
    EXPECT_EQ(stats().totals["drops"], "0");
}

}  // namespace
}  // namespace ipnfs::test
