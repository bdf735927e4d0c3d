// Lossless slow consumers: a port that holds senders back longer than the
// network's holdtime turns lossy until its reader reads again, and a reader
// with events on then learns how many messages it lost.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using Texts = std::vector<std::string>;

class NetworkHoldtime : public HubNetworkTest {
  protected:
    void SetUp() override {
        HubNetworkTest::SetUp();
        lossless("holdtime 100");
    }

    // A port that receives events, its snapshot already read.
    Connection event_reader(bus::PortId id) {
        Connection r = reader(id);
        EXPECT_TRUE(IsOk(net_->set_events(id, true)));
        drain_all(r);
        return r;
    }
};

TEST_F(NetworkHoldtime, DefaultIsFiveSecondsAndCtlShowsIt) {
    remake({});
    EXPECT_NE(net_->describe().find("\npool 1024\nholdtime 5000\n"), std::string::npos)
        << net_->describe();
    EXPECT_TRUE(FailsWith(net_->control("holdtime 3600001"), std::errc::invalid_argument));
    control_ok("holdtime 0");
}

TEST_F(NetworkHoldtime, AReaderThatNeverReadsHoldsSendersOnlyForTheHoldtime) {
    Connection w = writer(0);
    Connection live = reader(2);
    Connection stuck = event_reader(1);  // last: no join of another port fills its queue
    send(w, "a");
    auto t0 = std::chrono::steady_clock::now();
    RecordingSendWaiter& waiter = park(w, "b");
    EXPECT_EQ(drain(live), Texts{"a"});
    EXPECT_EQ(waiter.calls(), 0) << "port 1 is still full";
    ASSERT_TRUE(waiter.wait(std::chrono::seconds(5))) << "the stuck reader held the sender";
    EXPECT_TRUE(IsOk(waiter.status()));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(90));
    EXPECT_EQ(stat("stalls"), "1");
    EXPECT_EQ(drain(live), Texts{"b"});
    // Lossy for now: more sends go, port 1 loses them.
    send(w, "c");
    EXPECT_EQ(drain(live), Texts{"c"});
    EXPECT_EQ(stats().rows[1].drops, 2U);
    // Back: what it had queued, then how many it lost, then normal service.
    EXPECT_EQ(drain_all(stuck), (Texts{"data a", "lost 2"}));
    send(w, "d");
    EXPECT_EQ(drain(live), Texts{"d"});
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("e")), std::errc::resource_unavailable_try_again))
        << "port 1 is full again: lossless once more";
    EXPECT_EQ(drain_all(stuck), Texts{"data d"});
    EXPECT_EQ(stat("drops"), "2");
}

TEST_F(NetworkHoldtime, HoldtimeZeroHoldsSendersForEver) {
    control_ok("holdtime 0");
    Connection w = writer(0);
    Connection stuck = reader(1);
    send(w, "a");
    RecordingSendWaiter& waiter = park(w, "b");
    EXPECT_FALSE(waiter.wait(std::chrono::milliseconds(400)));
    // Setting a bound holds waiting senders to it too.
    control_ok("holdtime 50");
    ASSERT_TRUE(waiter.wait(std::chrono::seconds(5)));
    EXPECT_EQ(drain(stuck), Texts{"a"});
}

TEST_F(NetworkHoldtime, AFullPoolLetsGoOfWhatTheSlowestPortHolds) {
    control_ok("queue 10\npool 3");
    Connection w = writer(0);
    Connection stuck = event_reader(1);
    send(w, "a");
    send(w, "b");
    send(w, "c");
    RecordingSendWaiter& waiter = park(w, "d");
    ASSERT_TRUE(waiter.wait(std::chrono::seconds(5))) << "the full pool held the sender";
    EXPECT_EQ(stat("pool_used"), "1");
    EXPECT_EQ(drain_all(stuck), (Texts{"data d", "lost 3"}));
    EXPECT_EQ(stat("pool_used"), "0");
}

TEST_F(NetworkHoldtime, TheLastReaderLeavingEndsTheStall) {
    Connection w = writer(0);
    Connection stuck = reader(1);
    send(w, "a");
    RecordingSendWaiter& waiter = park(w, "b");
    ASSERT_TRUE(waiter.wait(std::chrono::seconds(5)));
    net_->disconnect(stuck);
    Connection again = event_reader(1);
    send(w, "c");
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("d")), std::errc::resource_unavailable_try_again))
        << "a new reader is not stalled";
    EXPECT_EQ(drain_all(again), Texts{"data c"}) << "a new reader owes nothing";
}

TEST_F(NetworkHoldtime, ANetworkDestroyedWithAHoldArmedIsForgotten) {
    Connection w = writer(0);
    Connection stuck = reader(1);
    send(w, "a");
    RecordingSendWaiter& waiter = park(w, "b");
    ASSERT_TRUE(net_->cancel(waiter));
    net_->disconnect(w);
    net_->disconnect(stuck);
    net_.reset();  // the timer must not call it back
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

}  // namespace
}  // namespace ipnfs::test
