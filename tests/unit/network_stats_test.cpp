// stats(): network totals in a header, then one row per port in use.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "bus/commands.hpp"
#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;

using NetworkStats = HubNetworkTest;

TEST_F(NetworkStats, FreshNetworkShowsItsNameAndZeroTotals) {
    EXPECT_EQ(net_->stats(),
              "network net0\npolicy hub\nports 32\nconnected 0\nmsgs_in 0\nbytes_in 0\n"
              "msgs_out 0\nbytes_out 0\ndrops 0\nlossless off\npool_used 0\npool 1024\n"
              "parked_readers 0\nparked_senders 0\nevent_readers 0\ncapture_readers 0\n"
              "captured 0\ncapture_drops 0\nheld_bytes 0\nheld_limit 0\nowner_held 0\n"
              "owner_limit 0\nover_limit_drops 0\nstalls 0\n\n"
              "port   readers writers    msgs_in     bytes_in   msgs_out    bytes_out    drops "
              "queued\n");
}

TEST_F(NetworkStats, ColumnTitlesNameEveryField) {
    EXPECT_EQ(stats().titles,
              (std::vector<std::string>{"port", "readers", "writers", "msgs_in", "bytes_in",
                                        "msgs_out", "bytes_out", "drops", "queued"}));
}

TEST_F(NetworkStats, HeaderNamesEveryTotalInOrder) {
    std::vector<std::string> keys;
    std::istringstream in(net_->stats());
    for (std::string line; std::getline(in, line) && !line.empty();) {
        keys.push_back(line.substr(0, line.find(' ')));
    }
    EXPECT_EQ(keys,
              (std::vector<std::string>{"network",         "policy",           "ports",
                                        "connected",       "msgs_in",          "bytes_in",
                                        "msgs_out",        "bytes_out",        "drops",
                                        "lossless",        "pool_used",        "pool",
                                        "parked_readers",  "parked_senders",   "event_readers",
                                        "capture_readers", "captured",         "capture_drops",
                                        "held_bytes",      "held_limit",       "owner_held",
                                        "owner_limit",     "over_limit_drops", "stalls"}));
}

TEST_F(NetworkStats, HeaderCountsParkedRequestsPoolAndEventReaders) {
    ASSERT_TRUE(IsOk(net_->control("lossless on\nqueue 1\npool 3")));
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    RecordingWaiter& parked_reader = receive_waiter();
    ASSERT_EQ(net_->receive(r2, &parked_reader).outcome, Outcome::parked);
    EXPECT_EQ(stat("parked_readers"), "1");

    send(w, "a");  // r2's waiter takes it, r1 queues it: the pool holds it once
    EXPECT_EQ(parked_reader.calls(), 1);
    EXPECT_EQ(stat("parked_readers"), "0");
    EXPECT_EQ(stat("pool_used"), "1");
    RecordingSendWaiter& parked_sender = send_waiter();
    ASSERT_TRUE(net_->send(w, bytes("b"), &parked_sender).parked);
    EXPECT_EQ(stat("parked_senders"), "1");

    Connection observer;
    ASSERT_TRUE(IsOk(net_->connect_observer(observer)));
    EXPECT_EQ(stat("event_readers"), "1");

    Stats st = stats();
    EXPECT_EQ(st.totals["lossless"], "on");
    EXPECT_EQ(st.totals["pool"], "3");

    EXPECT_EQ(take(r1), "a");
    EXPECT_EQ(parked_sender.calls(), 1);
    st = stats();
    EXPECT_EQ(st.totals["parked_senders"], "0");
    EXPECT_EQ(st.totals["pool_used"], "1") << "b is queued at r1 and r2";
    net_->disconnect(observer);
    EXPECT_EQ(stat("event_readers"), "0");
}

TEST_F(NetworkStats, HeaderFollowsPortCountAndPolicy) {
    ASSERT_TRUE(IsOk(net_->control("ports 7")));
    Stats st = stats();
    EXPECT_EQ(st.totals["network"], "net0");
    EXPECT_EQ(st.totals["policy"], "hub");
    EXPECT_EQ(st.totals["ports"], "7");
}

TEST_F(NetworkStats, CountersFollowSendsReceivesDropsAndQueues) {
    remake({.ports = 8, .mtu = 1514, .queue = 2});
    Connection w = writer(0);
    Connection r1 = reader(1);
    reader(2);
    for (int i = 0; i < 3; ++i) send(w, "abc");  // each reader keeps 2, drops 1
    ASSERT_EQ(net_->receive(r1, nullptr).outcome, Outcome::message);

    Stats st = stats();
    EXPECT_EQ(st.totals["connected"], "3");
    EXPECT_EQ(st.totals["msgs_in"], "3");
    EXPECT_EQ(st.totals["bytes_in"], "9");
    EXPECT_EQ(st.totals["msgs_out"], "1");
    EXPECT_EQ(st.totals["bytes_out"], "3");
    EXPECT_EQ(st.totals["drops"], "2");

    const PortRow& sender = st.rows[0];
    EXPECT_EQ(sender.readers, 0u);
    EXPECT_EQ(sender.writers, 1u);
    EXPECT_EQ(sender.msgs_in, 3u);
    EXPECT_EQ(sender.bytes_in, 9u);
    EXPECT_EQ(sender.msgs_out, 0u);

    const PortRow& one = st.rows[1];
    EXPECT_EQ(one.readers, 1u);
    EXPECT_EQ(one.writers, 0u);
    EXPECT_EQ(one.msgs_in, 0u);
    EXPECT_EQ(one.msgs_out, 1u);
    EXPECT_EQ(one.bytes_out, 3u);
    EXPECT_EQ(one.drops, 1u);
    EXPECT_EQ(one.queued, 1u);

    const PortRow& two = st.rows[2];
    EXPECT_EQ(two.msgs_out, 0u);
    EXPECT_EQ(two.drops, 1u);
    EXPECT_EQ(two.queued, 2u);
    EXPECT_EQ(st.rows.size(), 3u) << "idle ports are listed";
}

TEST_F(NetworkStats, RejectedSendsAreNotCounted) {
    remake({.ports = 4, .mtu = 3, .queue = 4});
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_FALSE(net_->send(w, bytes("toolong")).ok());
    EXPECT_FALSE(net_->send(r, bytes("x")).ok());
    Stats st = stats();
    EXPECT_EQ(st.totals["msgs_in"], "0");
    EXPECT_EQ(st.totals["bytes_in"], "0");
}

TEST_F(NetworkStats, PortKeepsItsRowWhileItHasCountsAfterDisconnect) {
    Connection w = writer(4);
    Connection r = reader(6);
    send(w, "hello");
    net_->disconnect(w);
    net_->disconnect(r);  // the unread message is dropped
    Stats st = stats();
    EXPECT_EQ(st.totals["connected"], "0");
    ASSERT_EQ(st.rows.count(4), 1u);
    EXPECT_EQ(st.rows[4].writers, 0u);
    EXPECT_EQ(st.rows[4].msgs_in, 1u);
    EXPECT_EQ(st.rows[4].bytes_in, 5u);
    ASSERT_EQ(st.rows.count(6), 1u);
    EXPECT_EQ(st.rows[6].readers, 0u);
    EXPECT_EQ(st.rows[6].drops, 1u);
    EXPECT_EQ(st.rows[6].queued, 0u);
}

TEST_F(NetworkStats, DiscardedMessagesCountAsDropsNotAsTaken) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "read");
    send(w, "unread");
    ASSERT_EQ(take(r), "read");
    net_->disconnect(r);
    Stats st = stats();
    EXPECT_EQ(st.rows[1].msgs_out, 1u) << "the discarded message was counted as taken";
    EXPECT_EQ(st.rows[1].bytes_out, 4u);
    EXPECT_EQ(st.rows[1].drops, 1u);
    EXPECT_EQ(st.totals["msgs_out"], "1");
}

TEST_F(NetworkStats, ConnectedPortWithNoTrafficHasARow) {
    reader(9);
    Stats st = stats();
    ASSERT_EQ(st.rows.count(9), 1u);
    EXPECT_EQ(st.rows[9].readers, 1u);
    EXPECT_EQ(st.rows.size(), 1u);
}

TEST_F(NetworkStats, RowsAreInPortOrder) {
    reader(20);
    reader(3);
    writer(11);
    std::string s = net_->stats();
    auto at = [&](const char* row) { return s.find(row); };
    ASSERT_NE(at("\n3 "), std::string::npos) << s;
    EXPECT_LT(at("\n3 "), at("\n11 "));
    EXPECT_LT(at("\n11 "), at("\n20 "));
}

}  // namespace
}  // namespace ipnfs::test
