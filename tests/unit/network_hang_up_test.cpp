// A removed network: waiters get end of file, queues drain, nothing new starts.
#include <gtest/gtest.h>

#include <string>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;

using NetworkHangUp = HubNetworkTest;

TEST_F(NetworkHangUp, ParkedWaitersAreCompletedOnceWithHungUp) {
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    Connection r2b = reader(2);
    RecordingWaiter a;
    RecordingWaiter b;
    RecordingWaiter c;
    ASSERT_EQ(net_->receive(r1, &a).outcome, Outcome::parked);
    ASSERT_EQ(net_->receive(r2, &b).outcome, Outcome::parked);
    ASSERT_EQ(net_->receive(r2b, &c).outcome, Outcome::parked);
    net_->hang_up();
    for (RecordingWaiter* w : {&a, &b, &c}) {
        ASSERT_EQ(w->calls(), 1);
        EXPECT_EQ(w->result().outcome, Outcome::hung_up);
        EXPECT_EQ(w->result().message, nullptr);
    }
    net_->hang_up();  // a second hang-up completes nothing again
    EXPECT_EQ(a.calls(), 1);
}

TEST_F(NetworkHangUp, CancelledWaiterIsNotCompletedByHangUp) {
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    ASSERT_TRUE(net_->cancel(r, waiter));
    net_->hang_up();
    EXPECT_EQ(waiter.calls(), 0);
}

TEST_F(NetworkHangUp, QueuedMessagesDrainBeforeEndOfFile) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "one");
    send(w, "two");
    net_->hang_up();
    EXPECT_EQ(take(r), "one");
    RecordingWaiter waiter;
    bus::Received got = net_->receive(r, &waiter);
    ASSERT_EQ(got.outcome, Outcome::message) << "a waiter still gets what is queued";
    EXPECT_EQ(text(got.message), "two");
    EXPECT_EQ(net_->receive(r, nullptr).outcome, Outcome::hung_up);
    EXPECT_EQ(net_->receive(r, &waiter).outcome, Outcome::hung_up) << "it must not park";
    EXPECT_EQ(waiter.calls(), 0);
}

TEST_F(NetworkHangUp, SendIsBrokenPipeAndConnectIsNoSuchFile) {
    Connection w = writer(0);
    Connection r = reader(1);
    net_->hang_up();
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("late")), std::errc::broken_pipe));
    Connection c;
    EXPECT_TRUE(FailsWith(net_->connect(2, true, true, c), std::errc::no_such_file_or_directory));
    EXPECT_TRUE(FailsWith(net_->connect_any(true, true, c), std::errc::no_such_file_or_directory));
    EXPECT_EQ(net_->receive(r, nullptr).outcome, Outcome::hung_up);
}

TEST_F(NetworkHangUp, ConnectionsCanStillBeClosedAfterwards) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "left behind");
    net_->hang_up();
    net_->disconnect(w);
    net_->disconnect(r);
    Stats st = stats();
    EXPECT_EQ(st.totals["connected"], "0");
    EXPECT_EQ(st.rows[1].drops, 1u);
}

}  // namespace
}  // namespace ipnfs::test
