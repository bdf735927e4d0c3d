// poll(): whether a read would wait now, and one wake-up when that changes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;
using bus::PortId;
using Ports = std::vector<PortId>;

using NetworkPoll = PolledHubNetworkTest;

TEST_F(NetworkPoll, EmptyPortIsNotReadableAndTheListenerHearsTheNextMessage) {
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_FALSE(net_->poll_readable(r));
    EXPECT_EQ(listener_.ports(), Ports{}) << "told before anything happened";
    send(w, "m");
    EXPECT_EQ(listener_.ports(), Ports{1});
    EXPECT_TRUE(net_->poll_readable(r));
}

TEST_F(NetworkPoll, ListenerHearsOncePerPoll) {
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_FALSE(net_->poll_readable(r));
    send(w, "a");
    send(w, "b");
    EXPECT_EQ(listener_.ports(), Ports{1}) << "one poll, one wake-up";
    drain(r);
    EXPECT_FALSE(net_->poll_readable(r));
    send(w, "c");
    EXPECT_EQ(listener_.ports(), (Ports{1, 1})) << "a fresh poll is woken again";
}

TEST_F(NetworkPoll, MessagesWithoutAPollWakeNobody) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "a");
    drain(r);
    send(w, "b");
    EXPECT_EQ(listener_.ports(), Ports{});
}

TEST_F(NetworkPoll, OnlyThePolledPortIsReported) {
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    EXPECT_FALSE(net_->poll_readable(r2));
    send(w, "m");
    EXPECT_EQ(listener_.ports(), Ports{2});
    (void)r1;
}

TEST_F(NetworkPoll, PortWithAQueuedMessageIsReadable) {
    Connection w = writer(0);
    Connection r = reader(1);
    send(w, "m");
    EXPECT_TRUE(net_->poll_readable(r));
    EXPECT_TRUE(net_->poll_readable(r)) << "polling does not consume";
    EXPECT_EQ(take(r), "m");
    EXPECT_FALSE(net_->poll_readable(r));
}

TEST_F(NetworkPoll, MessageTakenByAParkedWaiterLeavesThePortUnreadable) {
    Connection w = writer(0);
    Connection r = reader(1);
    RecordingWaiter waiter;
    ASSERT_EQ(net_->receive(r, &waiter).outcome, Outcome::parked);
    EXPECT_FALSE(net_->poll_readable(r));
    send(w, "m");
    EXPECT_EQ(waiter.calls(), 1);
    EXPECT_FALSE(net_->poll_readable(r)) << "the waiter already has the message";
}

TEST_F(NetworkPoll, HungUpNetworkIsReadable) {
    Connection r = reader(1);
    net_->hang_up();
    EXPECT_TRUE(net_->poll_readable(r)) << "a read would return end of file at once";
}

TEST_F(NetworkPoll, HangUpWakesEveryWatchedPort) {
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    Connection r3 = reader(3);
    EXPECT_FALSE(net_->poll_readable(r1));
    EXPECT_FALSE(net_->poll_readable(r3));
    net_->hang_up();
    EXPECT_EQ(listener_.ports(), (Ports{1, 3}));
    (void)r2;
}

TEST_F(NetworkPoll, LastReaderLeavingForgetsThePoll) {
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_FALSE(net_->poll_readable(r));
    net_->disconnect(r);
    Connection again = reader(1);
    send(w, "m");
    EXPECT_EQ(listener_.ports(), Ports{}) << "woke a poll of a closed descriptor";
    EXPECT_TRUE(net_->poll_readable(again));
}

// A listener that calls back into the network, as the fs layer may.
class ReentrantListener : public bus::Listener {
  public:
    explicit ReentrantListener(bus::Network& net) : net_(net) {}
    void ready(PortId port) override {
        heard.push_back(port);
        stats = net_.stats();  // would deadlock if called under the bus lock
    }
    std::vector<PortId> heard;
    std::string stats;

  private:
    bus::Network& net_;
};

TEST_F(NetworkPoll, ListenerIsCalledWithoutTheNetworkLock) {
    ReentrantListener reentrant(*net_);
    net_->set_listener(&reentrant);
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_FALSE(net_->poll_readable(r));
    send(w, "m");
    EXPECT_EQ(reentrant.heard, Ports{1});
    EXPECT_NE(reentrant.stats.find("queued"), std::string::npos);
}

// A listener that sends once when it hears of a port, from the same thread.
class SendingListener : public RecordingListener {
  public:
    SendingListener(bus::Network& net, const Connection& out) : net_(net), out_(out) {}
    void ready(PortId port) override {
        if (!sent_) {
            sent_ = true;
            status_ = net_.send(out_, bytes("from the listener"));
        }
        RecordingListener::ready(port);
    }
    [[nodiscard]] bus::Status status() const { return status_; }

  private:
    bus::Network& net_;
    Connection out_;
    bool sent_ = false;
    bus::Status status_;
};

TEST_F(NetworkPoll, ListenerMaySendFromTheSameThread) {
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    SendingListener sending(*net_, writer(5));
    net_->set_listener(&sending);
    EXPECT_FALSE(net_->poll_readable(r1));
    EXPECT_FALSE(net_->poll_readable(r2));
    send(w, "m");
    EXPECT_TRUE(IsOk(sending.status()));
    EXPECT_EQ(sending.ports(), (Ports{1, 2})) << "each watched port is told exactly once";
    EXPECT_EQ(drain(r1), (std::vector<std::string>{"m", "from the listener"}));
    EXPECT_EQ(drain(r2), (std::vector<std::string>{"m", "from the listener"}));
}

TEST_F(NetworkPoll, ClearedListenerHearsNothing) {
    Connection w = writer(0);
    Connection r = reader(1);
    net_->set_listener(nullptr);
    EXPECT_FALSE(net_->poll_readable(r));
    send(w, "m");
    EXPECT_EQ(listener_.ports(), Ports{});
    EXPECT_TRUE(net_->poll_readable(r));
}

}  // namespace
}  // namespace ipnfs::test
