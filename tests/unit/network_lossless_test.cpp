// Lossless networks: a send that cannot be queued to every recipient now
// waits (or fails with EAGAIN) instead of dropping, and goes to all of them
// or to none.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;
using bus::SendResult;
using Texts = std::vector<std::string>;

class NetworkLossless : public HubNetworkTest {
  protected:
    void SetUp() override {
        HubNetworkTest::SetUp();
        lossless();
    }
};

TEST_F(NetworkLossless, SendWithoutAWaiterIsEagainWhenARecipientIsFull) {
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("b")), std::errc::resource_unavailable_try_again));
    EXPECT_EQ(drain(r), Texts{"a"}) << "the refused message was queued anyway";
    EXPECT_EQ(stat("msgs_in"), "1") << "a refused send was counted";
    EXPECT_EQ(stat("drops"), "0") << "a lossless network dropped";
    send_now(w, "c");
    EXPECT_EQ(drain(r), Texts{"c"});
}

TEST_F(NetworkLossless, ParkedSendIsCompletedOnceWithSuccessWhenAReceiveMakesRoom) {
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    EXPECT_EQ(stat("parked_senders"), "1");
    EXPECT_EQ(take(r), "a");
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_TRUE(IsOk(waiter.status()));
    EXPECT_EQ(stat("parked_senders"), "0");
    EXPECT_EQ(take(r), "b");
    send_now(w, "c");
    EXPECT_EQ(take(r), "c");
    EXPECT_EQ(waiter.calls(), 1) << "a completed send was completed again";
}

TEST_F(NetworkLossless, SendThatFitsIsNotParkedEvenWithAWaiter) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingSendWaiter& waiter = send_waiter();
    send_now(w, "a", &waiter);
    EXPECT_EQ(waiter.calls(), 0);
    EXPECT_EQ(drain(r), Texts{"a"});
}

TEST_F(NetworkLossless, ParkedMessageGoesToAllRecipientsOrToNone) {
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    send_now(w, "a");
    EXPECT_EQ(take(r2), "a");  // r2 has room now, r1 does not
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    EXPECT_EQ(take(r2), std::nullopt) << "r2 got a copy while r1 was still full";
    EXPECT_EQ(take(r1), "a");
    EXPECT_EQ(waiter.calls(), 1);
    EXPECT_EQ(drain(r1), Texts{"b"});
    EXPECT_EQ(drain(r2), Texts{"b"});
}

TEST_F(NetworkLossless, ParkedSendersCompleteInTheOrderTheyParked) {
    Connection r = reader(1);
    Connection w0 = writer(0);
    Connection w2 = writer(2);
    Connection w3 = writer(3);
    CompletionLog log;
    RecordingSendWaiter& b = send_waiter("b", &log);
    RecordingSendWaiter& c = send_waiter("c", &log);
    RecordingSendWaiter& d = send_waiter("d", &log);
    send_now(w0, "a");
    park(w2, "b", b);
    park(w3, "c", c);
    park(w0, "d", d);
    Texts got;
    for (int i = 0; i < 4; ++i) {
        auto m = take(r);
        ASSERT_TRUE(m.has_value()) << "after " << i << " messages";
        got.push_back(*m);
    }
    EXPECT_EQ(got, (Texts{"a", "b", "c", "d"}));
    EXPECT_EQ(log.labels(), (Texts{"b", "c", "d"}));
}

// As above: the send from port 1 would fit, but a send is already parked.
TEST_F(NetworkLossless, LaterSendWaitsBehindParkedOnesEvenIfItFits) {
    Connection w = writer(0);
    Connection one = duplex(1);
    Connection two = reader(2);
    send_now(w, "x");
    EXPECT_EQ(take(two), "x");
    RecordingSendWaiter& head = send_waiter();
    RecordingSendWaiter& next = send_waiter();
    park(w, "head", head);
    EXPECT_TRUE(
        FailsWith(net_->send(one, bytes("eager")), std::errc::resource_unavailable_try_again));
    park(one, "next", next);
    EXPECT_EQ(take(two), std::nullopt);
    EXPECT_EQ(take(one), "x");
    EXPECT_EQ(head.calls(), 1);
    EXPECT_EQ(next.calls(), 0) << "port 2 holds head now";
    EXPECT_EQ(take(two), "head");
    EXPECT_EQ(next.calls(), 1);
    EXPECT_EQ(drain(two), Texts{"next"});
    EXPECT_EQ(drain(one), Texts{"head"});
}

TEST_F(NetworkLossless, CancelledParkedSendIsNeverCompletedNorDelivered) {
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    EXPECT_TRUE(net_->cancel(waiter));
    EXPECT_EQ(stat("parked_senders"), "0");
    EXPECT_EQ(take(r), "a");
    EXPECT_EQ(take(r), std::nullopt) << "a cancelled message was delivered";
    EXPECT_FALSE(net_->cancel(waiter)) << "cancelled twice";
    send_now(w, "c");
    EXPECT_EQ(drain(r), Texts{"c"});
    EXPECT_EQ(waiter.calls(), 0);
    EXPECT_EQ(stat("msgs_in"), "2");
}

TEST_F(NetworkLossless, CancelBeforeAWaitingSendMakesItInterrupted) {
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& waiter = send_waiter();
    EXPECT_FALSE(net_->cancel(waiter)) << "an idle waiter is not parked";
    SendResult s = net_->send(w, bytes("b"), &waiter);
    EXPECT_TRUE(FailsWith(s.status, std::errc::interrupted));
    EXPECT_FALSE(s.parked);
    EXPECT_EQ(stat("parked_senders"), "0");
    EXPECT_EQ(drain(r), Texts{"a"});
    EXPECT_EQ(waiter.calls(), 0);
}

TEST_F(NetworkLossless, CancelledCompletedSendReturnsFalse) {
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    EXPECT_EQ(take(r), "a");
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_FALSE(net_->cancel(waiter));
    EXPECT_EQ(drain(r), Texts{"b"});
}

// Port 1 is full; port 2 has room.  A send from port 0 (to 1 and 2) is
// parked; a send from port 1 (to 2 only) fits but waits behind it.
TEST_F(NetworkLossless, CancellingTheHeadLetsTheNextParkedSendGoIfItFits) {
    Connection w = writer(0);
    Connection one = duplex(1);
    Connection two = reader(2);
    send_now(w, "x");
    EXPECT_EQ(take(two), "x");
    RecordingSendWaiter& head = send_waiter();
    RecordingSendWaiter& next = send_waiter();
    park(w, "head", head);
    park(one, "next", next);
    EXPECT_TRUE(net_->cancel(head));
    ASSERT_EQ(next.calls(), 1);
    EXPECT_TRUE(IsOk(next.status()));
    EXPECT_EQ(drain(two), Texts{"next"});
    EXPECT_EQ(drain(one), Texts{"x"}) << "the cancelled head reached port 1";
    EXPECT_EQ(head.calls(), 0);
}

TEST_F(NetworkLossless, HangUpCompletesParkedSendsWithBrokenPipe) {
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& b = send_waiter();
    RecordingSendWaiter& c = send_waiter();
    park(w, "b", b);
    park(w, "c", c);
    net_->hang_up();
    for (auto* waiter : {&b, &c}) {
        ASSERT_EQ(waiter->calls(), 1);
        EXPECT_TRUE(FailsWith(waiter->status(), std::errc::broken_pipe));
        EXPECT_FALSE(net_->cancel(*waiter));
    }
    EXPECT_EQ(stat("parked_senders"), "0");
    bus::Received got = net_->receive(r, nullptr);
    ASSERT_EQ(got.outcome, Outcome::message);
    EXPECT_EQ(text(got.message), "a");
    EXPECT_EQ(net_->receive(r, nullptr).outcome, Outcome::hung_up);
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("d")), std::errc::broken_pipe));
}

TEST_F(NetworkLossless, PoolCountsAMessageOnceHoweverManyRecipients) {
    control_ok("queue 8\npool 1");
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    Connection r3 = reader(3);
    send_now(w, "a");
    EXPECT_EQ(stat("pool_used"), "1");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    EXPECT_EQ(take(r1), "a");
    EXPECT_EQ(take(r2), "a");
    EXPECT_EQ(waiter.calls(), 0) << "b went while r3 still held a";
    EXPECT_EQ(stat("pool_used"), "1");
    EXPECT_EQ(take(r3), "a");
    EXPECT_EQ(waiter.calls(), 1);
    EXPECT_EQ(stat("pool_used"), "1");
    for (auto* r : {&r1, &r2, &r3}) EXPECT_EQ(drain(*r), Texts{"b"});
    EXPECT_EQ(stat("pool_used"), "0");
}

TEST_F(NetworkLossless, UsedUpPoolMakesSendsWaitOrFailWithEagain) {
    control_ok("queue 8\npool 2");
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    send_now(w, "b");
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("c")), std::errc::resource_unavailable_try_again));
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "c", waiter);
    EXPECT_EQ(take(r), "a");
    EXPECT_EQ(waiter.calls(), 1);
    EXPECT_EQ(drain(r), (Texts{"b", "c"}));
}

TEST_F(NetworkLossless, RaisingThePoolLetsParkedSendsGo) {
    control_ok("queue 8\npool 1");
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    control_ok("pool 2");
    EXPECT_EQ(waiter.calls(), 1);
    EXPECT_EQ(drain(r), (Texts{"a", "b"}));
}

TEST_F(NetworkLossless, MessageHandedToAParkedReaderDoesNotUseThePool) {
    control_ok("pool 1");
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter& reading = receive_waiter();
    ASSERT_EQ(net_->receive(r, &reading).outcome, Outcome::parked);
    send_now(w, "a");
    ASSERT_EQ(reading.calls(), 1);
    EXPECT_EQ(text(reading.result().message), "a");
    EXPECT_EQ(stat("pool_used"), "0");
    send_now(w, "b");  // the pool still has room for one
    EXPECT_EQ(stat("pool_used"), "1");
    EXPECT_EQ(drain(r), Texts{"b"});
    EXPECT_EQ(stat("pool_used"), "0");
}

TEST_F(NetworkLossless, DropWhenFullPortLosesItsOwnCopiesWithoutHoldingSenders) {
    Connection w = writer(0);
    Connection lossy = reader(1);
    Connection r = reader(2);
    control_ok("dropwhenfull 1 on");
    send_now(w, "a");
    EXPECT_EQ(take(r), "a");
    send_now(w, "b");  // port 1 is full and drops; port 2 has room
    EXPECT_EQ(drain(lossy), Texts{"a"});
    EXPECT_EQ(drain(r), Texts{"b"});
    Stats st = stats();
    EXPECT_EQ(st.rows[1].drops, 1u);
    EXPECT_EQ(st.rows[2].drops, 0u);
    EXPECT_EQ(st.totals["pool_used"], "0");
}

TEST_F(NetworkLossless, TurningDropWhenFullOnLetsAParkedSendGo) {
    Connection w = writer(0);
    Connection slow = reader(1);
    Connection r = reader(2);
    send_now(w, "a");
    EXPECT_EQ(take(r), "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    control_ok("dropwhenfull 1 on");
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_TRUE(IsOk(waiter.status()));
    EXPECT_EQ(drain(r), Texts{"b"});
    EXPECT_EQ(drain(slow), Texts{"a"});
    EXPECT_EQ(stats().rows[1].drops, 1u);
}

TEST_F(NetworkLossless, RecipientDisconnectingLetsAParkedSendGo) {
    Connection w = writer(0);
    Connection slow = reader(1);
    Connection r = reader(2);
    send_now(w, "a");
    EXPECT_EQ(take(r), "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    net_->disconnect(slow);
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_TRUE(IsOk(waiter.status()));
    EXPECT_EQ(drain(r), Texts{"b"});
}

TEST_F(NetworkLossless, LastReaderLeavingDiscardsItsQueueAndReleasesThePool) {
    control_ok("queue 8\npool 2");
    Connection w = writer(0);
    Connection first = reader(1);
    Connection second = reader(1);
    send_now(w, "a");
    send_now(w, "b");
    EXPECT_EQ(stat("pool_used"), "2");
    net_->disconnect(first);
    EXPECT_EQ(stat("pool_used"), "2") << "a reader is still there";
    net_->disconnect(second);
    Stats st = stats();
    EXPECT_EQ(st.totals["pool_used"], "0");
    EXPECT_EQ(st.rows[1].drops, 2u);
    EXPECT_EQ(st.rows[1].queued, 0u);
    Connection again = reader(1);
    send_now(w, "c");
    send_now(w, "d");
    EXPECT_EQ(drain(again), (Texts{"c", "d"}));
}

TEST_F(NetworkLossless, DiscardedMessagesAreNotCountedAsTaken) {
    control_ok("queue 8");
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "abc");
    send_now(w, "def");
    EXPECT_EQ(take(r), "abc");
    net_->disconnect(r);
    Stats st = stats();
    EXPECT_EQ(st.rows[1].msgs_out, 1u) << "a discarded message counted as read";
    EXPECT_EQ(st.rows[1].bytes_out, 3u);
    EXPECT_EQ(st.rows[1].drops, 1u);
}

TEST_F(NetworkLossless, SendWithNoRecipientsGoesThrough) {
    Connection w = writer(0);
    send_now(w, "nobody listens");
    send_now(w, "still nobody");
    EXPECT_EQ(stat("pool_used"), "0");
}

// Settings given at creation work like the same settings given through ctl.
TEST_F(NetworkLossless, LosslessGivenAtCreationFreesRoomOnReceive) {
    remake({.ports = 8, .mtu = 1514, .queue = 1, .lossless = true, .pool = 16});
    EXPECT_EQ(stat("lossless"), "on");
    Connection w = writer(0);
    Connection r = reader(1);
    send_now(w, "a");
    RecordingSendWaiter& waiter = send_waiter();
    park(w, "b", waiter);
    EXPECT_EQ(take(r), "a");
    EXPECT_EQ(waiter.calls(), 1) << "the receive freed room but the parked send stayed";
    EXPECT_EQ(take(r), "b");
    EXPECT_EQ(stat("pool_used"), "0");
}

}  // namespace
}  // namespace ipnfs::test
