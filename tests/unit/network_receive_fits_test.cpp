// receive() with a filter: the next message is taken only if it fits, and a
// rejected one stays first in the queue.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Fits;
using bus::Outcome;
using Texts = std::vector<std::string>;

class NetworkReceiveFits : public HubNetworkTest {
  protected:
    // Takes messages of at most `size` bytes.
    static Fits up_to(std::size_t size) {
        return [size](const bus::Message& m) { return m.payload().size() <= size; };
    }
};

TEST_F(NetworkReceiveFits, RejectedMessageStaysQueuedAndTheAnswerIsWouldBlock) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "too long");
    send(w, "ok");
    Fits small = up_to(3);
    RecordingWaiter& waiter = receive_waiter();
    bus::Received got = net_->receive(r, &waiter, &small);
    EXPECT_EQ(got.outcome, Outcome::would_block) << "a waiter given, but something is queued";
    EXPECT_EQ(got.message, nullptr);
    EXPECT_EQ(waiter.calls(), 0);
    EXPECT_EQ(stat("parked_readers"), "0");
    EXPECT_EQ(stats().rows[1].queued, 2u);
    EXPECT_EQ(drain(r), (Texts{"too long", "ok"})) << "the filter skipped or lost a message";
}

TEST_F(NetworkReceiveFits, MessageThatFitsIsTaken) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "ok");
    send(w, "too long");
    Fits small = up_to(3);
    bus::Received got = net_->receive(r, nullptr, &small);
    ASSERT_EQ(got.outcome, Outcome::message);
    EXPECT_EQ(text(got.message), "ok");
    EXPECT_EQ(net_->receive(r, nullptr, &small).outcome, Outcome::would_block);
    EXPECT_EQ(drain(r), Texts{"too long"});
    EXPECT_EQ(stats().rows[1].msgs_out, 2u);
}

TEST_F(NetworkReceiveFits, FilterSeesEachMessageBeforeItIsTaken) {
    Connection w = writer(0);
    Connection r = reader(1);
    for (const auto* m : {"a", "b", "c"}) send(w, m);
    Texts seen;
    Fits all = [&](const bus::Message& m) {
        seen.push_back(
            std::string(reinterpret_cast<const char*>(m.payload().data()), m.payload().size()));
        return true;
    };
    Texts got;
    for (;;) {
        bus::Received r1 = net_->receive(r, nullptr, &all);
        if (r1.outcome != Outcome::message) break;
        got.push_back(text(r1.message));
    }
    EXPECT_EQ(got, (Texts{"a", "b", "c"}));
    EXPECT_EQ(seen, (Texts{"a", "b", "c"}));
}

TEST_F(NetworkReceiveFits, EmptyQueueWithAFilterStillParksAWaiter) {
    Connection w = writer(0);
    Connection r = reader(1);
    Fits any = up_to(100);
    RecordingWaiter& waiter = receive_waiter();
    ASSERT_EQ(net_->receive(r, &waiter, &any).outcome, Outcome::parked);
    send(w, "m");
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_EQ(text(waiter.result().message), "m");
}

TEST_F(NetworkReceiveFits, RejectedEventStaysQueuedToo) {
    Connection w = writer(0);
    Connection r = reader(1);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));
    Fits data_only = [](const bus::Message& m) { return !m.is_event(); };
    EXPECT_EQ(net_->receive(r, nullptr, &data_only).outcome, Outcome::would_block);
    EXPECT_EQ(drain_all(r), (Texts{"join 0", "counts 1 1"}));
    (void)w;
}

TEST_F(NetworkReceiveFits, RejectedEventBeyondAFullQueueStaysQueued) {
    remake({.ports = 8, .queue = 1});
    Connection w = writer(0);
    Connection r = reader(1);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));  // join 0 in the queue, counts beyond it
    Fits data_only = [](const bus::Message& m) { return !m.is_event(); };
    bus::Received join = net_->receive(r, nullptr, &data_only);
    EXPECT_EQ(join.outcome, Outcome::would_block) << "the join in the queue was taken";
    EXPECT_EQ(show(net_->receive(r, nullptr).message), "join 0");
    EXPECT_EQ(net_->receive(r, nullptr, &data_only).outcome, Outcome::would_block);
    EXPECT_EQ(drain_all(r), Texts{"counts 1 1"});
    (void)w;
}

TEST_F(NetworkReceiveFits, LosslessRejectedMessageKeepsItsPlaceInThePool) {
    control_ok("lossless on\nqueue 4\npool 1");
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "too long");
    Fits small = up_to(3);
    EXPECT_EQ(net_->receive(r, nullptr, &small).outcome, Outcome::would_block);
    EXPECT_EQ(stat("pool_used"), "1");
    EXPECT_EQ(drain(r), Texts{"too long"});
    EXPECT_EQ(stat("pool_used"), "0");
}

TEST_F(NetworkReceiveFits, RejectedMessageAfterHangUpIsWouldBlockNotEndOfFile) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "too long");
    net_->hang_up();
    Fits small = up_to(3);
    EXPECT_EQ(net_->receive(r, nullptr, &small).outcome, Outcome::would_block)
        << "end of file reported while a message is still queued";
    bus::Received got = net_->receive(r, nullptr);
    ASSERT_EQ(got.outcome, Outcome::message);
    EXPECT_EQ(text(got.message), "too long");
    EXPECT_EQ(net_->receive(r, nullptr, &small).outcome, Outcome::hung_up);
}

TEST_F(NetworkReceiveFits, ReceiveOnAWriteOnlyConnectionWouldBlock) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "m");
    RecordingWaiter& waiter = receive_waiter();
    EXPECT_EQ(net_->receive(w, nullptr).outcome, Outcome::would_block);
    EXPECT_EQ(net_->receive(w, &waiter).outcome, Outcome::would_block);
    Fits any = up_to(100);
    EXPECT_EQ(net_->receive(w, &waiter, &any).outcome, Outcome::would_block);
    EXPECT_EQ(waiter.calls(), 0);
    EXPECT_EQ(stat("parked_readers"), "0");
    EXPECT_EQ(drain(r), Texts{"m"});
}

TEST_F(NetworkReceiveFits, ReceiveOnAWriteOnlyConnectionOfALosslessNetworkWouldBlock) {
    control_ok("lossless on");
    Connection w = writer(0);
    RecordingWaiter& waiter = receive_waiter();
    EXPECT_EQ(net_->receive(w, &waiter).outcome, Outcome::would_block);
    EXPECT_EQ(waiter.calls(), 0);
}

}  // namespace
}  // namespace ipnfs::test
