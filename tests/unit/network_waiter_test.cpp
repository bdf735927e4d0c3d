// Receivers that wait without a thread: parking, completion, cancellation.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;

using NetworkWaiter = HubNetworkTest;

TEST_F(NetworkWaiter, ReceiveOnAnEmptyPortWithoutAWaiterWouldBlock) {
    Connection r = reader(1);
    bus::Received got = net_->receive(r, nullptr);
    EXPECT_EQ(got.outcome, Outcome::would_block);
    EXPECT_EQ(got.message, nullptr);
}

TEST_F(NetworkWaiter, ReceiveWithAMessageQueuedReturnsItAndLeavesTheWaiterAlone) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "ready");
    RecordingWaiter waiter;
    bus::Received got = net_->receive(r, &waiter);
    ASSERT_EQ(got.outcome, Outcome::message);
    EXPECT_EQ(text(got.message), "ready");
    EXPECT_EQ(waiter.calls(), 0);
}

TEST_F(NetworkWaiter, ParkedWaiterIsCompletedOnceByTheNextSend) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    EXPECT_EQ(waiter.calls(), 0);

    send(w, "wake up");
    ASSERT_EQ(waiter.calls(), 1);
    bus::Received got = waiter.result();
    ASSERT_EQ(got.outcome, Outcome::message);
    EXPECT_EQ(text(got.message), "wake up");
    EXPECT_EQ(got.message->from(), 0u);

    send(w, "queued");
    EXPECT_EQ(waiter.calls(), 1) << "a completed waiter was completed again";
    EXPECT_EQ(take(r), "queued") << "the message after the waiter's went to the queue";
}

// A waiter handed over again while still parked (a caller that lost track
// of it) is not linked twice: the port's list stays sound, the waiter is
// completed once, and what comes after it is queued.
TEST_F(NetworkWaiter, AWaiterParkedAgainIsNotLinkedTwice) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    EXPECT_EQ(stat("parked_readers"), "1") << "the waiter was parked twice";
    RecordingWaiter other;
    ASSERT_EQ(net_->receive(r, &other).outcome, Outcome::parked);

    send(w, "first");
    send(w, "second");
    send(w, "third");
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_EQ(text(waiter.result().message), "first");
    ASSERT_EQ(other.calls(), 1);
    EXPECT_EQ(text(other.result().message), "second");
    EXPECT_EQ(take(r), "third");
    EXPECT_EQ(stat("parked_readers"), "0");
}

TEST_F(NetworkWaiter, MessageHandedToAWaiterCountsAsTakenNotQueued) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    send(w, "abcd");
    PortRow row = stats().rows[1];
    EXPECT_EQ(row.msgs_out, 1u);
    EXPECT_EQ(row.bytes_out, 4u);
    EXPECT_EQ(row.queued, 0u);
}

TEST_F(NetworkWaiter, WaitersOnOnePortAreCompletedInTheOrderTheyParked) {
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(1);
    RecordingWaiter first;
    RecordingWaiter second;
    ASSERT_EQ(net_->receive(r1, &first).outcome, Outcome::parked);
    ASSERT_EQ(net_->receive(r2, &second).outcome, Outcome::parked);
    send(w, "one");
    EXPECT_EQ(first.calls(), 1);
    EXPECT_EQ(second.calls(), 0);
    send(w, "two");
    EXPECT_EQ(text(first.result().message), "one");
    EXPECT_EQ(text(second.result().message), "two");
    EXPECT_EQ(first.calls(), 1);
    EXPECT_EQ(second.calls(), 1);
}

TEST_F(NetworkWaiter, EveryRecipientsWaiterGetsTheSameMessage) {
    Connection w = writer(0);
    std::vector<Connection> readers;
    std::vector<std::unique_ptr<RecordingWaiter>> waiters;
    for (bus::PortId p = 1; p <= 4; ++p) {
        readers.push_back(reader(p));
        waiters.push_back(std::make_unique<RecordingWaiter>());
        ASSERT_EQ(net_->receive(readers.back(), waiters.back().get()).outcome, Outcome::parked);
    }
    send(w, "all of you");
    for (auto& waiter : waiters) {
        ASSERT_EQ(waiter->calls(), 1);
        EXPECT_EQ(waiter->result().message.get(), waiters[0]->result().message.get());
    }
}

TEST_F(NetworkWaiter, CancelledParkedWaiterIsNeverCompleted) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    EXPECT_TRUE(net_->cancel(r, waiter)) << "a parked waiter must be cancellable";
    send(w, "not for the waiter");
    EXPECT_EQ(waiter.calls(), 0);
    EXPECT_EQ(take(r), "not for the waiter") << "the message was lost with the waiter";
    EXPECT_FALSE(net_->cancel(r, waiter)) << "cancelled twice";
}

TEST_F(NetworkWaiter, CancellingOneOfTwoParkedWaitersLeavesTheOther) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter gone;
    RecordingWaiter stays;
    ASSERT_EQ(net_->receive(r, &gone).outcome, Outcome::parked);
    ASSERT_EQ(net_->receive(r, &stays).outcome, Outcome::parked);
    EXPECT_TRUE(net_->cancel(r, gone));
    send(w, "m");
    EXPECT_EQ(gone.calls(), 0);
    ASSERT_EQ(stays.calls(), 1);
    EXPECT_EQ(text(stays.result().message), "m");
}

TEST_F(NetworkWaiter, CancelBeforeReceiveMakesTheReceiveReportCancelled) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    EXPECT_FALSE(net_->cancel(r, waiter)) << "nothing was parked to hand back";
    EXPECT_EQ(net_->receive(r, &waiter).outcome, Outcome::cancelled);
    send(w, "later");
    EXPECT_EQ(waiter.calls(), 0) << "a cancelled waiter was parked anyway";
    EXPECT_EQ(take(r), "later");
}

TEST_F(NetworkWaiter, CancelAfterCompletionReturnsFalse) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    send(w, "m");
    EXPECT_FALSE(net_->cancel(r, waiter));
    EXPECT_EQ(waiter.calls(), 1);
}

TEST_F(NetworkWaiter, CompletedWaiterCanParkAgain) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter first;
    ASSERT_EQ(net_->receive(r, &first).outcome, Outcome::parked);
    send(w, "1");
    // A waiter object reused for the next request.
    ASSERT_EQ(net_->receive(r, &first).outcome, Outcome::parked);
    send(w, "2");
    EXPECT_EQ(first.calls(), 2);
}

// A waiter whose completion sends again on the same thread, as a bridge
// forwarding each message it receives would.
class ForwardingWaiter : public RecordingWaiter {
  public:
    ForwardingWaiter(bus::Network& net, const Connection& out) : net_(net), out_(out) {}
    void complete(bus::Received received) override {
        if (received.message != nullptr) {
            status_ = net_.send(out_, bytes("fwd " + text(received.message)));
        }
        RecordingWaiter::complete(std::move(received));
    }
    [[nodiscard]] bus::Status status() const { return status_; }

  private:
    bus::Network& net_;
    Connection out_;
    bus::Status status_;
};

TEST_F(NetworkWaiter, CompletionMaySendAgainFromTheSameThread) {
    Connection w = writer(0);
    Connection in = reader(1);
    Connection out = writer(2);
    Connection far = reader(3);
    ForwardingWaiter forwarder(*net_, out);
    RecordingWaiter other;
    ASSERT_EQ(net_->receive(in, &forwarder).outcome, Outcome::parked);
    ASSERT_EQ(net_->receive(far, &other).outcome, Outcome::parked);

    send(w, "m");  // completes both; the forwarder sends "fwd m" while it runs
    EXPECT_EQ(forwarder.calls(), 1);
    EXPECT_EQ(other.calls(), 1);
    EXPECT_TRUE(IsOk(forwarder.status()));
    ASSERT_NE(forwarder.result().message, nullptr);
    EXPECT_EQ(text(forwarder.result().message), "m");
    ASSERT_NE(other.result().message, nullptr);
    EXPECT_EQ(text(other.result().message), "m");
    EXPECT_EQ(take(far), "fwd m");
    EXPECT_EQ(take(in), "fwd m");
}

}  // namespace
}  // namespace ipnfs::test
