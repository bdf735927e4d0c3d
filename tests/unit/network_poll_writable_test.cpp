// poll_writable(): whether a send would not wait now, and one wake-up of the
// writer's port when room may have appeared.
#include <gtest/gtest.h>

#include <deque>
#include <random>
#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::PortId;
using Ports = std::vector<PortId>;

using NetworkPollWritable = PolledHubNetworkTest;

TEST_F(NetworkPollWritable, LossyNetworkIsAlwaysWritableForAWriter) {
    control_ok("queue 1");
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_TRUE(net_->poll_writable(w));
    send(w, "a");
    send(w, "b");  // dropped: lossy networks never make a sender wait
    EXPECT_TRUE(net_->poll_writable(w));
    Connection both = duplex(2);
    EXPECT_TRUE(net_->poll_writable(both));
    (void)r;
}

TEST_F(NetworkPollWritable, ReadOnlyConnectionIsNeverWritable) {
    Connection r = reader(1);
    EXPECT_FALSE(net_->poll_writable(r));
    net_->disconnect(r);
    lossless();
    Connection again = reader(1);
    EXPECT_FALSE(net_->poll_writable(again));
    net_->hang_up();
    EXPECT_FALSE(net_->poll_writable(again)) << "a read-only descriptor after hang-up";
}

TEST_F(NetworkPollWritable, LosslessWriterIsWritableWhileEveryOtherReceivingPortHasRoom) {
    lossless();
    Connection w = writer(0);
    EXPECT_TRUE(net_->poll_writable(w)) << "no recipients at all";
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    EXPECT_TRUE(net_->poll_writable(w));
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w));
    EXPECT_EQ(take(r1), "a");
    EXPECT_FALSE(net_->poll_writable(w)) << "r2 is still full";
    EXPECT_EQ(take(r2), "a");
    EXPECT_TRUE(net_->poll_writable(w));
}

TEST_F(NetworkPollWritable, ParkedReaderCountsAsRoom) {
    lossless();
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_EQ(take(r), "a");
    RecordingWaiter& waiting = receive_waiter();
    ASSERT_EQ(net_->receive(r, &waiting).outcome, bus::Outcome::parked);
    EXPECT_TRUE(net_->poll_writable(w));
}

TEST_F(NetworkPollWritable, OwnFullQueueDoesNotMakeAWriterWait) {
    lossless();
    Connection other = writer(0);
    Connection self = duplex(1);
    Connection r = reader(2);
    send(other, "a");  // fills ports 1 and 2
    EXPECT_EQ(take(r), "a");
    EXPECT_TRUE(net_->poll_writable(self)) << "port 1's own queue is not a recipient";
    EXPECT_TRUE(IsOk(net_->send(self, bytes("b"))));
}

TEST_F(NetworkPollWritable, DropWhenFullPortNeverMakesAWriterWait) {
    lossless("dropwhenfull 1 on");
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_TRUE(net_->poll_writable(w));
    (void)r;
}

TEST_F(NetworkPollWritable, UsedUpPoolMakesAWriterWait) {
    lossless("queue 8\npool 1");
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w)) << "r has room but the pool is used up";
    EXPECT_EQ(take(r), "a");
    EXPECT_TRUE(net_->poll_writable(w));
}

TEST_F(NetworkPollWritable, ParkedSenderMakesEveryWriterWait) {
    lossless();
    Connection w = writer(0);
    Connection self = duplex(1);
    Connection r = reader(2);
    send(w, "a");
    EXPECT_EQ(take(r), "a");
    RecordingSendWaiter& parked = park(w, "b");  // waits for port 1
    EXPECT_FALSE(net_->poll_writable(self)) << "port 2 has room, but a send is parked";
    EXPECT_EQ(take(self), "a");
    EXPECT_EQ(parked.calls(), 1);
    EXPECT_FALSE(net_->poll_writable(self)) << "port 2 holds b now";
    EXPECT_EQ(take(r), "b");
    EXPECT_TRUE(net_->poll_writable(self));
}

TEST_F(NetworkPollWritable, ListenerHearsTheWriterOnceWhenAReceiveMakesRoom) {
    lossless();
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w));
    EXPECT_EQ(listener_.ports(), Ports{}) << "told before anything happened";
    EXPECT_EQ(take(r), "a");
    EXPECT_EQ(listener_.ports(), Ports{0});
    send(w, "b");
    EXPECT_EQ(take(r), "b");
    EXPECT_EQ(listener_.ports(), Ports{0}) << "one poll, one wake-up";
    send(w, "c");
    EXPECT_FALSE(net_->poll_writable(w));
    EXPECT_EQ(take(r), "c");
    EXPECT_EQ(listener_.ports(), (Ports{0, 0})) << "a fresh poll is woken again";
}

TEST_F(NetworkPollWritable, ListenerHearsTheWriterWhenAFullRecipientDisconnects) {
    lossless();
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w));
    net_->disconnect(r);
    EXPECT_EQ(listener_.ports(), Ports{0});
    EXPECT_TRUE(net_->poll_writable(w));
}

TEST_F(NetworkPollWritable, ListenerHearsTheWriterWhenAFullRecipientTurnsDropWhenFullOn) {
    lossless();
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w));
    control_ok("dropwhenfull 1 on");
    EXPECT_TRUE(net_->poll_writable(w));
    EXPECT_EQ(listener_.ports(), Ports{0}) << "writable now, but the poller was not told";
    (void)r;
}

TEST_F(NetworkPollWritable, ListenerHearsTheWriterWhenThePoolGrows) {
    lossless("queue 8\npool 1");
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w));
    control_ok("pool 2");
    EXPECT_TRUE(net_->poll_writable(w));
    EXPECT_EQ(listener_.ports(), Ports{0}) << "writable now, but the poller was not told";
    (void)r;
}

TEST_F(NetworkPollWritable, ListenerHearsTheWriterWhenAParkedSenderIsCancelled) {
    lossless();
    Connection w = writer(0);
    Connection self = duplex(1);
    Connection r = reader(2);
    send(w, "a");
    EXPECT_EQ(take(r), "a");
    RecordingSendWaiter& parked = park(w, "b");
    EXPECT_FALSE(net_->poll_writable(self));
    ASSERT_TRUE(net_->cancel(parked));
    EXPECT_TRUE(net_->poll_writable(self));
    EXPECT_EQ(listener_.ports(), Ports{1}) << "writable now, but the poller was not told";
}

TEST_F(NetworkPollWritable, ListenerHearsTheWriterWhenAnEventIsTakenFromAFullQueue) {
    lossless();
    Connection w = writer(0);
    Connection r = reader(1);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));  // queue: join 0, then counts beyond it
    EXPECT_FALSE(net_->poll_writable(w));
    EXPECT_EQ(drain_all(r), (std::vector<std::string>{"join 0", "counts 1 1"}));
    EXPECT_TRUE(net_->poll_writable(w));
    EXPECT_EQ(listener_.ports(), Ports{0}) << "writable now, but the poller was not told";
}

TEST_F(NetworkPollWritable, HangUpMakesWritersWritableAndWakesThem) {
    lossless();
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    EXPECT_FALSE(net_->poll_writable(w));
    net_->hang_up();
    EXPECT_EQ(listener_.ports(), Ports{0});
    EXPECT_TRUE(net_->poll_writable(w)) << "a send fails at once with EPIPE";
    (void)r;
}

// poll_writable() agrees with what a send without a waiter then does, over a
// random walk of sends, receives, dropwhenfull flips, parked sends and cancels.
TEST_F(NetworkPollWritable, WritableExactlyWhenASendWouldNotWait) {
    lossless("queue 2\npool 5");
    Connection w = writer(0);
    Connection other = writer(7);
    std::vector<Connection> readers{reader(1), reader(2), reader(3)};
    std::deque<RecordingSendWaiter*> parked;
    std::mt19937 rng(7);
    int writable = 0;
    int would_wait = 0;
    for (int step = 0; step < 3000; ++step) {
        switch (rng() % 10) {
            case 0:
            case 1: {
                bool poll = net_->poll_writable(w);
                bus::Status s = net_->send(w, bytes("w" + std::to_string(step)));
                if (poll) {
                    ++writable;
                    ASSERT_TRUE(IsOk(s)) << "step " << step << ": polled writable";
                } else {
                    ++would_wait;
                    ASSERT_TRUE(FailsWith(s, std::errc::resource_unavailable_try_again))
                        << "step " << step << ": polled not writable";
                }
                break;
            }
            case 2:
            case 3:
            case 4:
            case 5:
                take(readers[rng() % readers.size()]);
                break;
            case 6: {
                PortId port = 1 + rng() % 3;
                bool on = rng() % 4 == 0;
                control_ok("dropwhenfull " + std::to_string(port) + (on ? " on" : " off"));
                break;
            }
            case 7: {
                RecordingSendWaiter& waiter = send_waiter();
                bus::SendResult r = net_->send(other, bytes("o"), &waiter);
                ASSERT_TRUE(IsOk(r.status));
                if (r.parked) parked.push_back(&waiter);
                break;
            }
            case 8:
            case 9:
                if (!parked.empty()) {
                    if (net_->cancel(*parked.front())) {
                        EXPECT_EQ(parked.front()->calls(), 0);
                    } else {
                        EXPECT_EQ(parked.front()->calls(), 1);
                    }
                    parked.pop_front();
                }
                break;
        }
    }
    EXPECT_GT(writable, 100);
    EXPECT_GT(would_wait, 100);
    RecordProperty("writable", writable);
    RecordProperty("would_wait", would_wait);
    net_->hang_up();
    for (RecordingSendWaiter* waiter : parked) EXPECT_EQ(waiter->calls(), 1);
    for (auto& waiter : send_waiters_) EXPECT_LE(waiter->calls(), 1);
}

}  // namespace
}  // namespace ipnfs::test
