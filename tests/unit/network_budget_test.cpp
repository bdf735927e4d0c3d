// Byte budgets: a network holds at most its limit of queued message bytes,
// and the networks of one non-root owner together at most theirs; each
// message counts once however many queues hold it.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;

constexpr std::size_t kPayload = 1000;

class NetworkBudget : public HubNetworkTest {
  protected:
    // Limits in messages of kPayload bytes, plus room for `ring_bytes` of
    // readers' rings (see rings()).
    void limit(std::uint64_t network_msgs, std::uint64_t owner_msgs, std::uint64_t ring_bytes,
               uid_t owner = 1000) {
        bus::ByteLimits limits{network_msgs * held_ + ring_bytes, owner_msgs * held_ + ring_bytes};
        budgets_ = std::make_shared<bus::Budgets>(limits);
        net_->set_budgets(budgets_);
        net_->set_access({0755, owner, 0});
    }

    void send_n(const Connection& w, int n) {
        for (int i = 0; i < n; ++i) send(w, std::string(kPayload, static_cast<char>('a' + i % 26)));
    }

    // What n readers' rings of `queue` messages are charged.
    static std::uint64_t rings(std::uint64_t n, std::uint64_t queue) {
        return n * queue * sizeof(bus::MessageRef);
    }

    [[nodiscard]] std::uint64_t held(const std::string& key = "held_bytes") const {
        return std::stoull(stat(key));
    }

    // What one message of kPayload bytes is charged.
    const std::uint64_t held_ =
        bus::Message::make(0, bytes(std::string(kPayload, 'x')))->held_bytes();
    std::shared_ptr<bus::Budgets> budgets_;
};

TEST_F(NetworkBudget, AMessageCountsOnceWhileAnyQueueHoldsIt) {
    control_ok("queue 100");
    limit(50, 50, rings(3, 100));
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    Connection r3 = reader(3);
    const std::uint64_t base = rings(3, 100);
    EXPECT_EQ(held(), base) << "each reader's ring counts";
    send_n(w, 10);
    EXPECT_EQ(held(), base + 10 * held_) << "three queues, one count";
    EXPECT_EQ(held("owner_held"), base + 10 * held_);
    EXPECT_EQ(drain(r1).size(), 10U);
    EXPECT_EQ(drain(r2).size(), 10U);
    EXPECT_EQ(held(), base + 10 * held_) << "r3 still holds every message";
    EXPECT_EQ(drain(r3).size(), 10U);
    EXPECT_EQ(held(), base);
    net_->disconnect(r1);
    net_->disconnect(r2);
    net_->disconnect(r3);
    EXPECT_EQ(held(), 0U);
    EXPECT_EQ(held("owner_held"), 0U);
}

TEST_F(NetworkBudget, LossyNetworkDropsBeyondItsLimitAndCountsIt) {
    control_ok("queue 65536");
    const std::uint64_t base = rings(2, 65536);
    limit(20, 1000, base);
    Connection w = writer(0);
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    send_n(w, 100);
    EXPECT_EQ(held(), base + 20 * held_);
    EXPECT_EQ(stat("held_limit"), std::to_string(base + 20 * held_));
    EXPECT_EQ(stat("over_limit_drops"), "160") << "80 messages, lost at two readers each";
    EXPECT_EQ(stats().rows[1].drops, 80U);
    EXPECT_EQ(drain(r1).size(), 20U);
    EXPECT_EQ(drain(r2).size(), 20U);
    send_n(w, 5);
    EXPECT_EQ(drain(r1).size(), 5U) << "room again once read";
}

TEST_F(NetworkBudget, NetworksOfOneOwnerShareOneBudget) {
    control_ok("queue 1000");
    const std::uint64_t ring = rings(1, 1000);
    limit(100, 30, 2 * ring);
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("net1", {}, catalog_, "hub", other)));
    ASSERT_TRUE(IsOk(other->control("queue 1000")));
    other->set_budgets(budgets_);
    other->set_access({0755, 1000, 0});
    Connection w = writer(0);
    Connection r = reader(1);
    send_n(w, 20);
    Connection ow;
    Connection orr;
    ASSERT_TRUE(IsOk(other->connect(0, false, true, ow)));
    ASSERT_TRUE(IsOk(other->connect(1, true, false, orr)));
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(IsOk(other->send(ow, bytes(std::string(kPayload, 'o')))));
    EXPECT_EQ(held("owner_held"), 2 * ring + 30 * held_)
        << "the second network got only what was left";
    EXPECT_EQ(parse_stats(other->stats()).totals["over_limit_drops"], "10");
    EXPECT_EQ(drain(r).size(), 20U);
    other->disconnect(ow);
    other->disconnect(orr);
    EXPECT_EQ(held("owner_held"), ring) << "r's ring";
}

TEST_F(NetworkBudget, RootOwnedNetworksAreBoundedOnlyByTheNetworkLimit) {
    control_ok("queue 1000");
    limit(40, 5, rings(1, 1000), 0);
    Connection w = writer(0);
    Connection r = reader(1);
    send_n(w, 50);
    EXPECT_EQ(held(), rings(1, 1000) + 40 * held_);
    EXPECT_EQ(stat("owner_limit"), "0");
    EXPECT_EQ(drain(r).size(), 40U);
}

TEST_F(NetworkBudget, ChownKeepsEachMessageChargedToItsOwnerAtQueueTime) {
    control_ok("queue 1000");
    const std::uint64_t ring = rings(1, 1000);
    limit(100, 100, ring, 1000);
    Connection w = writer(0);
    Connection r = reader(1);
    send_n(w, 10);
    bus::ByteBudget* first = budgets_->owner(1000);
    net_->set_access({0755, 2000, 0});
    send_n(w, 5);
    EXPECT_EQ(first->held(), ring + 10 * held_);
    EXPECT_EQ(budgets_->owner(2000)->held(), 5 * held_);
    EXPECT_EQ(drain(r).size(), 15U);
    EXPECT_EQ(first->held(), ring);
    EXPECT_EQ(budgets_->owner(2000)->held(), 0U);
    net_->disconnect(r);
    EXPECT_EQ(first->held(), 0U) << "the ring goes back where it was charged";
}

TEST_F(NetworkBudget, LosslessSendWaitsForBytesAndNeverDrops) {
    control_ok("queue 1000\nlossless on");
    limit(5, 100, rings(1, 1000));
    Connection w = writer(0);
    Connection r = reader(1);
    send_n(w, 5);
    RecordingSendWaiter& waiter = send_waiter();
    bus::SendResult res = net_->send(w, bytes(std::string(kPayload, 'z')), &waiter);
    ASSERT_TRUE(IsOk(res.status));
    EXPECT_TRUE(res.parked) << "the sixth message passed the byte limit";
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("x")), std::errc::resource_unavailable_try_again));
    EXPECT_TRUE(take(r).has_value());
    ASSERT_TRUE(waiter.wait());
    EXPECT_TRUE(IsOk(waiter.status()));
    EXPECT_EQ(drain(r).size(), 5U);
    EXPECT_EQ(stat("over_limit_drops"), "0");
    EXPECT_EQ(stat("drops"), "0");
}

TEST_F(NetworkBudget, AReaderWhoseRingWouldPassTheBudgetIsENOBUFS) {
    control_ok("queue 65536");
    limit(0, 1000, rings(2, 65536));
    Connection r1 = reader(1);
    Connection r2 = reader(2);
    EXPECT_EQ(held(), rings(2, 65536));
    Connection r3;
    EXPECT_TRUE(FailsWith(net_->connect(3, true, false, r3), std::errc::no_buffer_space));
    EXPECT_TRUE(IsOk(net_->connect(3, false, true, r3))) << "a writer has no ring";
    Connection any;
    EXPECT_TRUE(FailsWith(net_->connect_any(true, false, any, true), std::errc::no_buffer_space));
    EXPECT_EQ(stat("connected"), "3") << "a refused exclusive open left nothing behind";
    net_->disconnect(r1);
    EXPECT_TRUE(IsOk(net_->connect(4, true, false, any))) << "r1's ring was given back";
    net_->disconnect(r2);
}

TEST_F(NetworkBudget, LockFreeReadersOfALossyNetworkReleaseEveryByte) {
    control_ok("queue 64");
    limit(1000, 1000, rings(3, 64));
    Connection w = writer(0);
    std::vector<Connection> readers{reader(1), reader(2), reader(3)};
    std::atomic<bool> sending{true};
    std::vector<std::thread> threads;
    for (const Connection& r : readers) {
        threads.emplace_back([&, r] {
            while (sending.load()) net_->receive(r, nullptr);
        });
    }
    for (int i = 0; i < 20000; ++i) send(w, "x");
    sending = false;
    for (auto& t : threads) t.join();
    for (const Connection& r : readers) drain(r);
    EXPECT_EQ(held(), rings(3, 64));
    EXPECT_EQ(held("owner_held"), rings(3, 64));
}

// A rest a reader keeps (fs: the unread part of a message) counts against
// both budgets until its charge goes; what does not fit is counted lost.
TEST_F(NetworkBudget, KeptRestsCountUntilReleasedAndAreRefusedBeyondTheLimit) {
    limit(3, 100, rings(1, 64));
    Connection r = reader(1);
    const std::uint64_t base = rings(1, 64);
    {
        bus::Charge first;
        bus::Charge second;
        ASSERT_TRUE(net_->charge_rest(r, held_, first));
        ASSERT_TRUE(net_->charge_rest(r, held_, second));
        EXPECT_EQ(held(), base + 2 * held_);
        EXPECT_EQ(held("owner_held"), base + 2 * held_);
        bus::Charge third;
        ASSERT_TRUE(net_->charge_rest(r, held_, third));
        bus::Charge fourth;
        EXPECT_FALSE(net_->charge_rest(r, held_, fourth)) << "past the network's limit";
        EXPECT_EQ(held(), base + 3 * held_) << "a refused rest charges nothing";
        EXPECT_EQ(stat("over_limit_drops"), "1");
        EXPECT_EQ(stat("drops"), "1");
        // Moved, a charge is given back once.
        bus::Charge moved = std::move(third);
    }
    EXPECT_EQ(held(), base);
    EXPECT_EQ(held("owner_held"), base);
}

// A lossless sender never waits for a rest: a stall cannot take it back.
TEST_F(NetworkBudget, LosslessSendersDoNotWaitForKeptRests) {
    control_ok("queue 1000\nlossless on");
    limit(5, 100, rings(1, 1000));
    Connection w = writer(0);
    Connection r = reader(1);
    std::vector<bus::Charge> rests(5);
    for (bus::Charge& c : rests) ASSERT_TRUE(net_->charge_rest(r, held_, c));
    send_n(w, 5);  // none waits
    RecordingSendWaiter& waiter = send_waiter();
    bus::SendResult res = net_->send(w, bytes(std::string(kPayload, 'z')), &waiter);
    ASSERT_TRUE(IsOk(res.status));
    EXPECT_TRUE(res.parked) << "queued messages still count";
    EXPECT_TRUE(take(r).has_value());
    ASSERT_TRUE(waiter.wait());
    EXPECT_EQ(drain(r).size(), 5U);
}

}  // namespace
}  // namespace ipnfs::test
