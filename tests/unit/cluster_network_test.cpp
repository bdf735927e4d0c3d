// Cluster networks on the fake engine (tests/unit/fake_cluster.hpp): three
// daemons' networks of one name, each with its own cluster::Service, one
// bus across them.  The real corosync is in tests/integration/cluster_test.cpp.
#include <array>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "cluster/replica.hpp"
#include "cluster/service.hpp"
#include "cluster_network_fixture.hpp"
#include "fake_cluster.hpp"
#include "policies/catalog.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

TEST_F(ClusterNetworkTest, AMessageReachesEveryHostsReadersButItsSender) {
    std::array<bus::Connection, kHosts> readers;
    for (std::uint32_t node = 1; node <= kHosts; ++node)
        readers[node - 1] = connect(node, 1, true, false);
    bus::Connection sender = connect(2, 0, true, true);
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("hello"))));
    for (std::uint32_t node = 1; node <= kHosts; ++node) {
        bus::MessageRef m = next(node, readers[node - 1]);
        ASSERT_TRUE(m) << "host " << node;
        EXPECT_EQ(text(m), "hello");
        EXPECT_EQ(m->from(), 0U);
        EXPECT_EQ(m->node(), 2U);
    }
    EXPECT_TRUE(nothing_for(net(2), sender, 100ms)) << "the sender got its own message";
}

TEST_F(ClusterNetworkTest, ConcurrentSendersOnThreeHostsGiveOneOrderEverywhere) {
    constexpr int kEach = 500;
    std::array<bus::Connection, kHosts> readers;
    for (std::uint32_t node = 1; node <= kHosts; ++node)
        readers[node - 1] = connect(node, 7, true, false);
    std::vector<std::thread> senders;
    for (std::uint32_t node = 1; node <= kHosts; ++node) {
        senders.emplace_back([this, node] {
            bus::Connection w = connect(node, 0, false, true);
            for (int i = 0; i < kEach; ++i) {
                EXPECT_TRUE(IsOk(net(node).send(w, bytes(fmt::format("{} {}", node, i)))));
            }
        });
    }
    for (auto& t : senders) t.join();
    std::array<std::vector<std::string>, kHosts> seen;
    for (std::uint32_t node = 1; node <= kHosts; ++node) {
        while (seen[node - 1].size() < kHosts * kEach) {
            bus::MessageRef m = next(node, readers[node - 1]);
            ASSERT_TRUE(m) << "host " << node << " after " << seen[node - 1].size();
            if (!m->is_event()) seen[node - 1].push_back(text(m));
        }
    }
    EXPECT_EQ(seen[0], seen[1]);
    EXPECT_EQ(seen[0], seen[2]);
}

TEST_F(ClusterNetworkTest, JoinsAndLeavesAreOrderedWithDataAndCarryTheNode) {
    bus::Connection watcher = connect(3, 4, true, false);
    ASSERT_TRUE(IsOk(net(3).set_events(4, true)));
    {
        bus::Connection w = connect(1, 2, false, true);
        ASSERT_TRUE(IsOk(net(1).send(w, bytes("one"))));
        net(1).disconnect(w);
    }
    // Its own port's join is the snapshot's; then host 1's port 2.
    std::vector<std::string> got;
    while (got.size() < 3) got.push_back(next_text(3, watcher));
    EXPECT_EQ(got, (std::vector<std::string>{"join 2 node 1", "one", "leave 2 node 1"}));
}

TEST_F(ClusterNetworkTest, AKilledNodesPortsLeaveAndTheOthersGoOn) {
    bus::Connection watcher = connect(1, 4, true, false);
    ASSERT_TRUE(IsOk(net(1).set_events(4, true)));
    bus::Connection w3 = connect(3, 0, false, true);
    ASSERT_EQ(next_text(1, watcher), "join 0 node 3");
    cluster_.kill(3);
    EXPECT_EQ(next_text(1, watcher), "leave 0 node 3");
    // Host 3's own service finds its engine gone when it next dispatches.
    auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
    while (contains(net(3).stats(), "cluster_engine ok") &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_FALSE(contains(net(3).stats(), "cluster_engine ok")) << net(3).stats();
    [[maybe_unused]] bus::Connection w2 = connect(2, 1, false, true);
    ASSERT_EQ(next_text(1, watcher), "join 1 node 2");
    net(3).disconnect(w3);
}

TEST_F(ClusterNetworkTest, ASplitMakesLeavesAndTheMergeJoins) {
    bus::Connection watcher = connect(1, 4, true, false);
    ASSERT_TRUE(IsOk(net(1).set_events(4, true)));
    bus::Connection w3 = connect(3, 0, false, true);
    ASSERT_EQ(next_text(1, watcher), "join 0 node 3");
    cluster_.split({{1, 2}, {3}});
    EXPECT_EQ(next_text(1, watcher), "leave 0 node 3");
    bus::Connection r3 = connect(3, 5, true, false);
    ASSERT_TRUE(IsOk(net(3).send(w3, bytes("alone"))));
    ASSERT_EQ(next_text(3, r3), "alone");  // ordered on its side before the merge
    cluster_.heal();
    // Both of host 3's ports join again, in the order host 3 announces them.
    std::set<std::string> joins{next_text(1, watcher), next_text(1, watcher)};
    EXPECT_EQ(joins, (std::set<std::string>{"join 0 node 3", "join 5 node 3"}));
    ASSERT_TRUE(IsOk(net(3).send(w3, bytes("back"))));
    EXPECT_EQ(next_text(1, watcher), "back") << "what a side sent alone stays there\n"
                                             << net(1).stats() << net(3).stats();
}

TEST_F(ClusterNetworkTest, ABusyEngineDelaysButLosesNothingUpToTheBound) {
    bus::Connection reader = connect(1, 1, true, false);
    bus::Connection w = connect(2, 0, false, true);
    cluster_.set_busy(2, true);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(IsOk(net(2).send(w, bytes(std::to_string(i)))));
    EXPECT_TRUE(nothing_for(net(1), reader, 50ms));
    cluster_.set_busy(2, false);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(next_text(1, reader), std::to_string(i));
}

TEST_F(ClusterNetworkTest, AStuckEngineBoundsWhatWaitsAndOpensFailWithEagain) {
    bus::Connection w = connect(2, 0, false, true);
    cluster_.set_busy(2, true);
    std::string kib(1000, 'x');
    // 4 MiB wait at most: the rest is dropped and counted.
    for (int i = 0; i < 6000; ++i) ASSERT_TRUE(IsOk(net(2).send(w, bytes(kib))));
    std::string stats = net(2).stats();
    EXPECT_FALSE(contains(stats, "cluster_drops 0\n")) << stats;
    // Filled to the last byte with the smallest records, a join does not fit.
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(IsOk(net(2).send(w, bytes("y"))));
    bus::Connection more;
    EXPECT_TRUE(
        FailsWith(net(2).connect(5, true, false, more), std::errc::resource_unavailable_try_again));
    cluster_.set_busy(2, false);
}

TEST_F(ClusterNetworkTest, ScopeRefusesWhatIsNotBuiltAndBusyNetworks) {
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("other", {}, catalog_, "group", other)));
    other->set_replicas(services_[0].get());
    EXPECT_TRUE(
        FailsWith(other->control("policy hub\nscope cluster"), std::errc::operation_not_permitted))
        << "scope needs CAP_NET_ADMIN";
    // A switch that runs its spanning tree does not span hosts.
    ASSERT_TRUE(IsOk(other->control("policy switch\nstp on")));
    EXPECT_TRUE(FailsWith(other->control("scope cluster", kAdmin), std::errc::not_supported));
    ASSERT_TRUE(IsOk(other->control("policy hub")));
    bus::Connection c;
    ASSERT_TRUE(IsOk(other->connect(0, true, false, c)));
    EXPECT_TRUE(
        FailsWith(other->control("scope cluster", kAdmin), std::errc::device_or_resource_busy));
    other->disconnect(c);
    ASSERT_TRUE(IsOk(other->control("scope cluster", kAdmin)));
    EXPECT_TRUE(FailsWith(other->control("policy group"), std::errc::not_supported));
    EXPECT_TRUE(FailsWith(other->control("lossless on"), std::errc::not_supported));
    EXPECT_TRUE(contains(other->describe(), "\nscope cluster\n"));
    ASSERT_TRUE(IsOk(other->control("scope node", kAdmin)));
    EXPECT_TRUE(IsOk(other->control("policy switch")));
}

// One name, one bus: a daemon whose network of that name has other shared
// settings is refused at `scope cluster`, with whose and which, and the
// others go on as they were.
TEST_F(ClusterNetworkTest, ScopeClusterWithOtherSettingsThanTheGroupsIsEexist) {
    cluster::Service fourth(cluster_.engine(4, 1004));
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("jobs", {}, catalog_, "hub", other)));
    other->set_replicas(&fourth);
    bus::Status s = other->control("lossless on\nscope cluster", kAdmin);
    ASSERT_TRUE(FailsWith(s, std::errc::file_exists)) << s.reason;
    EXPECT_TRUE(contains(s.reason, "lossless off")) << s.reason;
    EXPECT_TRUE(contains(s.reason, "lossless on")) << s.reason;
    EXPECT_FALSE(contains(other->describe(), "\nscope cluster\n"));
    // The others are one bus still, and forget the one that left.
    bus::Connection reader = connect(1, 1, true, false);
    bus::Connection w = connect(2, 0, false, true);
    ASSERT_TRUE(IsOk(net(2).send(w, bytes("still one"))));
    EXPECT_EQ(next_text(1, reader), "still one");
    for (int i = 0; i < 500 && contains(net(1).stats(), "differ"); ++i)
        std::this_thread::sleep_for(2ms);
    EXPECT_FALSE(contains(net(1).stats(), "differ")) << net(1).stats();
    // Alike, it joins.
    ASSERT_TRUE(IsOk(other->control("lossless off\nscope cluster", kAdmin)));
    other.reset();
}

// Lossless across hosts: every daemon holds back at most a window of each
// other daemon's messages for its own slow readers, and credits it back as
// they read; senders wait for credit, nothing is lost.
class ClusterLosslessTest : public ClusterNetworkTest {
  protected:
    void SetUp() override {
        make("mtu 65535\nqueue 8\nlossless on\nholdtime 0\n");
        // Credit counts the members a daemon knows: until its first
        // membership it knows none, and a send waits (EAGAIN here).
        for (std::uint32_t node = 1; node <= kHosts; ++node) {
            for (int i = 0; i < 500 && !knows_all(node); ++i) std::this_thread::sleep_for(2ms);
            ASSERT_TRUE(knows_all(node)) << net(node).stats();
        }
    }
    bool knows_all(std::uint32_t node) {
        std::string stats = net(node).stats();
        for (std::uint32_t n = 1; n <= kHosts; ++n) {
            if (!contains(stats, fmt::format("\n{:<6} {:>8} ", n, 1000 + n))) return false;
        }
        return true;
    }

    // Sends without waiting until the network says EAGAIN; how many went.
    int send_until_full(std::uint32_t node, const bus::Connection& w, const std::string& body,
                        int most) {
        for (int i = 0; i < most; ++i) {
            bus::Status s = net(node).send(w, bytes(body + std::to_string(i)));
            if (FailsWith(s, std::errc::resource_unavailable_try_again)) return i;
            EXPECT_TRUE(IsOk(s));
        }
        return most;
    }
};

TEST_F(ClusterLosslessTest, ASlowReaderOnOneHostHoldsTheSenderOnAnotherAndNothingIsLost) {
    bus::Connection slow = connect(1, 1, true, false);
    bus::Connection fast = connect(3, 1, true, false);
    bus::Connection w = connect(2, 0, false, true);
    const std::string kib16(16 << 10, 'x');
    // Credit for about a window (1 MiB) of messages: then EAGAIN.
    int sent = 0;
    for (int tries = 0; tries < 200 && sent < 1000; ++tries) {
        int n = send_until_full(2, w, kib16, 1000 - sent);
        sent += n;
        if (n == 0) break;
        // Credit comes back from hosts 2 and 3 as the group delivers.
        std::this_thread::sleep_for(20ms);
        while (net(3).receive(fast, nullptr).outcome == bus::Outcome::message) {
        }
    }
    // About a window (1 MiB) for host 1: its reader's queue of 8, the rest
    // held back in the order.
    EXPECT_GT(sent, 40);
    EXPECT_LT(sent, 80) << "host 1 holds back its reader's messages: about a window";
    std::string stats = net(2).stats();
    EXPECT_FALSE(contains(stats, "cluster_window_waits 0\n")) << stats;
    EXPECT_TRUE(contains(net(1).stats(), "cluster_inbound ")) << net(1).stats();
    // The slow reader reads: every message, in order, then more can go.
    for (int i = 0; i < sent; ++i) {
        std::string m = next_text(1, slow);
        ASSERT_EQ(m.substr(kib16.size()), std::to_string(i)) << "message " << i;
    }
    while (net(3).receive(fast, nullptr).outcome == bus::Outcome::message) {
    }
    std::this_thread::sleep_for(50ms);
    EXPECT_GT(send_until_full(2, w, kib16, 10), 0) << "the credit came back";
    for (auto& n : nets_) EXPECT_TRUE(contains(n->stats(), "\ndrops 0\n")) << n->stats();
}

// Joins and leaves wait behind the data at a slow daemon, so they take
// credit too: a port that opens and closes for ever cannot grow what waits
// there; its opens fail with EAGAIN once the window is used up.
TEST_F(ClusterLosslessTest, OpensTakeCreditSoFlappingPortsCannotGrowASlowHost) {
    bus::Connection slow = connect(1, 1, true, false);
    bus::Connection w = connect(2, 0, false, true);
    const std::string kib16(16 << 10, 'x');
    send_until_full(2, w, kib16, 1000);
    int opened = 0;
    for (int i = 0; i < 20000; ++i) {
        bus::Connection c;
        bus::Status s = net(2).connect(5, false, true, c);
        if (!s.ok()) {
            EXPECT_TRUE(FailsWith(s, std::errc::resource_unavailable_try_again));
            break;
        }
        ++opened;
        net(2).disconnect(c);
    }
    EXPECT_LT(opened, 20000) << "opens never ran out of credit";
    std::string stats = net(1).stats();
    auto at = stats.find("cluster_inbound ");
    ASSERT_NE(at, std::string::npos);
    EXPECT_LT(std::stoul(stats.substr(at + 16)), 20000U) << stats;
    // The reader reads: the data, then opens work again.  What the group
    // ordered may still be on its way to host 1 (a loaded machine delays
    // it), so the reader keeps reading until an open gets credit.
    bus::Connection again;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        while (net(1).receive(slow, nullptr).outcome == bus::Outcome::message) {
        }
        if (net(2).connect(5, false, true, again).ok()) break;
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(again.port != nullptr) << net(2).stats() << net(1).stats();
}

TEST_F(ClusterLosslessTest, FourSendersOnThreeHostsLoseNothingAndEveryReaderSeesOneOrder) {
    constexpr int kEach = 400;
    std::vector<bus::Connection> readers = {connect(1, 1, true, false), connect(2, 1, true, false),
                                            connect(3, 1, true, false), connect(3, 2, true, false)};
    std::vector<std::pair<std::uint32_t, bus::Connection>> writers = {
        {1, connect(1, 0, false, true)},
        {2, connect(2, 0, false, true)},
        {3, connect(3, 0, false, true)},
        {2, connect(2, 3, false, true)}};
    std::vector<std::thread> threads;
    for (std::size_t k = 0; k < writers.size(); ++k) {
        threads.emplace_back([&, k] {
            auto [node, w] = writers[k];
            std::string body(2000, static_cast<char>('a' + k));
            for (int i = 0; i < kEach; ++i) {
                RecordingSendWaiter waiter;
                bus::SendResult r = net(node).send(w, bytes(body + std::to_string(i)), &waiter);
                ASSERT_TRUE(IsOk(r.status));
                if (r.parked) {
                    ASSERT_TRUE(waiter.wait()) << "a parked send never got credit";
                    ASSERT_TRUE(IsOk(waiter.status()));
                }
            }
        });
    }
    // Readers 0 and 3 are slow: they hold every sender back, on every host.
    std::vector<std::vector<std::string>> seen(readers.size());
    std::vector<std::thread> reading;
    for (std::size_t r = 0; r < readers.size(); ++r) {
        reading.emplace_back([&, r] {
            std::uint32_t node = r == 3 ? 3 : static_cast<std::uint32_t>(r + 1);
            for (std::size_t i = 0; i < kEach * writers.size(); ++i) {
                if (r == 0 || r == 3) std::this_thread::sleep_for(100us);
                bus::MessageRef m = next(node, readers[r]);
                while (m && m->is_event()) m = next(node, readers[r]);
                ASSERT_TRUE(m) << "reader " << r << " got nothing after " << i;
                seen[r].push_back(text(m).substr(1999));
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& t : reading) t.join();
    // The writer on port 0 of a host never hears itself: its readers there
    // see the others only.  So compare per sender and across readers that
    // hear everyone.
    for (std::size_t r = 0; r < readers.size(); ++r) {
        std::array<int, 4> next_of{};
        for (const std::string& m : seen[r]) {
            int k = m[0] - 'a';
            ASSERT_EQ(m.substr(1), std::to_string(next_of.at(k)++)) << "reader " << r;
        }
    }
    EXPECT_EQ(seen[2], seen[3]) << "two readers of one host";
    EXPECT_EQ(seen[0], seen[2]) << "readers of two hosts";
    EXPECT_EQ(seen[1], seen[2]);
}

TEST_F(ClusterLosslessTest, ASendWaitingForADeadHostsCreditGoesWhenItLeaves) {
    connect(1, 1, true, false);  // a reader that never reads
    bus::Connection w = connect(2, 0, false, true);
    const std::string kib16(16 << 10, 'x');
    ASSERT_GT(send_until_full(2, w, kib16, 1000), 0);
    std::this_thread::sleep_for(50ms);
    send_until_full(2, w, kib16, 1000);
    RecordingSendWaiter waiter;
    bus::SendResult r = net(2).send(w, bytes(kib16), &waiter);
    ASSERT_TRUE(r.parked) << "credit left after filling the window";
    EXPECT_FALSE(waiter.wait(100ms));
    cluster_.kill(1);
    ASSERT_TRUE(waiter.wait()) << "the dead host's credit is not waited for";
    EXPECT_TRUE(IsOk(waiter.status()));
}

TEST_F(ClusterLosslessTest, WhenTheEngineIsGoneWaitingSendsFailWithEnotconn) {
    connect(1, 1, true, false);  // a reader that never reads
    bus::Connection w = connect(2, 0, false, true);
    const std::string kib16(16 << 10, 'x');
    send_until_full(2, w, kib16, 1000);
    std::this_thread::sleep_for(50ms);
    send_until_full(2, w, kib16, 1000);
    RecordingSendWaiter waiter;
    ASSERT_TRUE(net(2).send(w, bytes(kib16), &waiter).parked);
    cluster_.kill(2);
    ASSERT_TRUE(waiter.wait());
    EXPECT_TRUE(FailsWith(waiter.status(), std::errc::not_connected));
    EXPECT_TRUE(FailsWith(net(2).send(w, bytes("more")), std::errc::not_connected));
}

// The group across hosts: a unicast names a node's port, an anycast goes
// to one holder of the whole group in turn, multicast and broadcast reach
// every host's holders; what the sender's daemon placed, only the placed
// port's daemon delivers.
class ClusterGroupTest : public ClusterNetworkTest {
  protected:
    void SetUp() override { make("policy group\nqueue 4096\n"); }

    // Port `port` of host `node` receives, holding `instance` if any, and
    // every host knows it (the group ordered its presence).
    bus::Connection member(std::uint32_t node, bus::PortId port,
                           std::optional<std::uint32_t> instance = std::nullopt) {
        if (instance) {
            EXPECT_TRUE(
                IsOk(net(node).control(fmt::format("member {} {}", port, *instance), kAdmin)));
        }
        bus::Connection c = connect(node, port, true, true);
        for (std::uint32_t other = 1; other <= kHosts; ++other) {
            for (int i = 0; i < 500 && !knows(other, node, port, instance); ++i) {
                std::this_thread::sleep_for(2ms);
            }
            EXPECT_TRUE(knows(other, node, port, instance)) << net(other).stats();
        }
        return c;
    }
    // Whether host `at` can place a message at node:port (or its instance).
    bool knows(std::uint32_t at, std::uint32_t node, bus::PortId port,
               std::optional<std::uint32_t> instance) {
        if (at == node) return true;
        return contains(net(at).stats(),
                        instance ? fmt::format("remote {}:{} instance {}\n", node, port, *instance)
                                 : fmt::format("remote {}:{} instance none\n", node, port));
    }
    static bus::Address to_port(std::uint32_t node, bus::PortId port) {
        return {bus::To::port, port, node};
    }
};

TEST_F(ClusterGroupTest, AUnicastNamesANodesPortAndOnlyThatPortGetsIt) {
    bus::Connection on1 = member(1, 3);
    bus::Connection on3 = member(3, 3);
    bus::Connection sender = member(2, 0);
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("to 3:3"), to_port(3, 3))));
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("to 1:3"), to_port(1, 3))));
    EXPECT_EQ(next_text(3, on3), "to 3:3");
    EXPECT_EQ(next_text(1, on1), "to 1:3");
    EXPECT_TRUE(nothing_for(net(1), on1, 50ms));
    EXPECT_TRUE(nothing_for(net(3), on3, 0ms));
    // Node 0 and the sender's own node are this host.
    bus::Connection here = member(2, 4);
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("here"), to_port(0, 4))));
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("here too"), to_port(2, 4))));
    EXPECT_EQ(next_text(2, here), "here");
    EXPECT_EQ(next_text(2, here), "here too");
    EXPECT_TRUE(contains(net(2).stats(), "group unicast 4 ")) << net(2).stats();
}

TEST_F(ClusterGroupTest, AUnicastToAnUnknownNodeOrPortIsEhostunreach) {
    bus::Connection sender = member(2, 0);
    [[maybe_unused]] bus::Connection on1 = member(1, 3);
    bus::Status s = net(2).send(sender, bytes("x"), to_port(9, 3));
    EXPECT_TRUE(FailsWith(s, std::errc::host_unreachable));
    EXPECT_TRUE(contains(s.reason, "node 9")) << s.reason;
    EXPECT_TRUE(
        FailsWith(net(2).send(sender, bytes("x"), to_port(1, 4)), std::errc::host_unreachable));
    // A writer's port is no receiver.
    [[maybe_unused]] bus::Connection w = connect(1, 5, false, true);
    EXPECT_TRUE(
        FailsWith(net(2).send(sender, bytes("x"), to_port(1, 5)), std::errc::host_unreachable));
    EXPECT_TRUE(contains(net(2).stats(), "unreachable 3\n")) << net(2).stats();
}

TEST_F(ClusterGroupTest, AnAnycastReachesExactlyOneHolderInTurnOverEveryHost) {
    std::array<bus::Connection, kHosts> holders;
    for (std::uint32_t node = 1; node <= kHosts; ++node) holders[node - 1] = member(node, 2, 7);
    [[maybe_unused]] bus::Connection other = member(1, 3, 8);
    bus::Connection sender = member(2, 0);
    constexpr int kSends = 30;
    for (int i = 0; i < kSends; ++i) {
        ASSERT_TRUE(IsOk(net(2).send(sender, bytes(std::to_string(i)), {bus::To::anycast, 7, 7})));
    }
    // Each message once, in all; each holder a third, as turns go.
    std::set<std::string> all;
    for (std::uint32_t node = 1; node <= kHosts; ++node) {
        for (int i = 0; i < kSends / kHosts; ++i) {
            std::string got = next_text(node, holders[node - 1]);
            EXPECT_TRUE(all.insert(got).second) << got << " twice";
        }
        EXPECT_TRUE(nothing_for(net(node), holders[node - 1], node == 1 ? 50ms : 0ms));
    }
    EXPECT_EQ(all.size(), std::size_t{kSends});
    EXPECT_TRUE(FailsWith(net(2).send(sender, bytes("x"), {bus::To::anycast, 9, 9}),
                          std::errc::host_unreachable));
}

TEST_F(ClusterGroupTest, MulticastAndBroadcastReachEveryHostsReceivers) {
    bus::Connection a = member(1, 2, 5);
    bus::Connection b = member(3, 2, 6);
    bus::Connection c = member(3, 4, 9);
    bus::Connection sender = member(2, 0, 5);  // a holder, but fan-out leaves it out
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("m"), {bus::To::multicast, 5, 6})));
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("b"), {bus::To::broadcast, 0, 0})));
    EXPECT_EQ(next_text(1, a), "m");
    EXPECT_EQ(next_text(3, b), "m");
    EXPECT_EQ(next_text(3, c), "b");
    EXPECT_EQ(next_text(1, a), "b");
    EXPECT_EQ(next_text(3, b), "b");
    EXPECT_TRUE(nothing_for(net(2), sender, 50ms)) << "the sender got its own fan-out";
    // The sender's default destination is resolved where only it is known.
    ASSERT_TRUE(IsOk(net(2).control("dest 0 multicast 9", kAdmin)));
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("dest"))));
    EXPECT_EQ(next_text(3, c), "dest");
    ASSERT_TRUE(IsOk(net(2).control("dest 0 port 1:2", kAdmin)));
    EXPECT_TRUE(contains(net(2).describe(), "dest 0 port 1:2\n")) << net(2).describe();
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("to 1:2"))));
    EXPECT_EQ(next_text(1, a), "to 1:2");
}

TEST_F(ClusterGroupTest, AHolderThatLeavesIsNoLongerChosenAndWhatWasPlacedThereIsCounted) {
    bus::Connection kept = member(1, 2, 7);
    bus::Connection going = member(3, 2, 7);
    bus::Connection sender = member(2, 0);
    net(3).disconnect(going);
    for (int i = 0; i < 500 && knows(2, 3, 2, 7); ++i) std::this_thread::sleep_for(2ms);
    ASSERT_FALSE(knows(2, 3, 2, 7)) << net(2).stats();
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(IsOk(net(2).send(sender, bytes("a"), {bus::To::anycast, 7, 7})));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(next_text(1, kept), "a");
    // A member that changes its instance is chosen under the new one.
    ASSERT_TRUE(IsOk(net(1).control("member 2 8", kAdmin)));
    for (int i = 0; i < 500 && !knows(2, 1, 2, 8); ++i) std::this_thread::sleep_for(2ms);
    EXPECT_TRUE(FailsWith(net(2).send(sender, bytes("a"), {bus::To::anycast, 7, 7}),
                          std::errc::host_unreachable));
    ASSERT_TRUE(IsOk(net(2).send(sender, bytes("eight"), {bus::To::anycast, 8, 8})));
    EXPECT_EQ(next_text(1, kept), "eight");
}

// The switch across hosts: every daemon learns from the group's one order,
// so a unicast to an address learned on host 3 reaches only host 3's port;
// broadcast and unknown unicast flood every host's ports but the sender's.
class ClusterSwitchTest : public ClusterNetworkTest {
  protected:
    void SetUp() override { make("policy switch\nqueue 4096\n"); }

    bus::MessageRef frame_at(std::uint32_t node, const bus::Connection& conn) {
        bus::MessageRef m = next(node, conn);
        while (m && m->is_event()) m = next(node, conn);
        return m;
    }
    static Bytes payload(const bus::MessageRef& m) {
        return m ? Bytes(m->payload().begin(), m->payload().end()) : Bytes{};
    }
    // Waits until host `at` has learned `mac` at `where` ("3:1", or "1").
    bool learned(std::uint32_t at, std::string_view mac, std::string_view where) {
        std::string row = fmt::format("vlan 1 port {} age", where);
        for (int i = 0; i < 500; ++i) {
            std::string stats = net(at).stats();
            std::size_t pos = stats.find(fmt::format("mac {} ", mac));
            if (pos != std::string::npos && stats.compare(pos + 22, row.size(), row) == 0) {
                return true;
            }
            std::this_thread::sleep_for(2ms);
        }
        return false;
    }
};

TEST_F(ClusterSwitchTest, LearnedUnicastReachesOnlyItsHostsPortAndBroadcastEveryHost) {
    constexpr Mac kA = station(0xa);
    constexpr Mac kB = station(0xb);
    constexpr Mac kC = station(0xc);
    bus::Connection a = connect(1, 0, true, true);
    bus::Connection a2 = connect(1, 1, true, false);
    bus::Connection b = connect(2, 0, true, true);
    bus::Connection c = connect(3, 1, true, true);
    // B is unknown: its frame floods every host's ports but the sender.
    ASSERT_TRUE(IsOk(net(1).send(a, frame(kB, kA, "unknown"))));
    EXPECT_EQ(payload(frame_at(1, a2)), frame(kB, kA, "unknown"));
    EXPECT_EQ(payload(frame_at(2, b)), frame(kB, kA, "unknown"));
    EXPECT_EQ(payload(frame_at(3, c)), frame(kB, kA, "unknown"));
    // C speaks (a broadcast, to everyone but itself): every host learns it at 3:1.
    ASSERT_TRUE(IsOk(net(3).send(c, frame(kBroadcast, kC, "hello"))));
    EXPECT_EQ(payload(frame_at(1, a)), frame(kBroadcast, kC, "hello"));
    EXPECT_EQ(payload(frame_at(1, a2)), frame(kBroadcast, kC, "hello"));
    EXPECT_EQ(payload(frame_at(2, b)), frame(kBroadcast, kC, "hello"));
    EXPECT_TRUE(nothing_for(net(3), c, 50ms)) << "the sender got its own broadcast";
    EXPECT_TRUE(learned(1, "02:00:00:00:00:0c", "3:1")) << net(1).stats();
    EXPECT_TRUE(learned(3, "02:00:00:00:00:0c", "1")) << net(3).stats();
    // Host 2 writes to C: only host 3's port gets it.
    ASSERT_TRUE(IsOk(net(2).send(b, frame(kC, kB, "to c"))));
    EXPECT_EQ(payload(frame_at(3, c)), frame(kC, kB, "to c"));
    EXPECT_TRUE(nothing_for(net(1), a, 50ms));
    EXPECT_TRUE(nothing_for(net(1), a2, 0ms));
    EXPECT_TRUE(nothing_for(net(2), b, 0ms));
    // And C's answer to B reaches host 2's port only.
    ASSERT_TRUE(IsOk(net(3).send(c, frame(kB, kC, "to b"))));
    EXPECT_EQ(payload(frame_at(2, b)), frame(kB, kC, "to b"));
    EXPECT_TRUE(nothing_for(net(1), a, 50ms));
    EXPECT_TRUE(nothing_for(net(1), a2, 0ms));
}

TEST_F(ClusterSwitchTest, VlansTravelBetweenHostsAsOnATrunk) {
    constexpr Mac kA = station(0xa);
    // Host 1's port 0 is an access port of VLAN 10; host 2's port 0 one too,
    // host 2's port 1 a trunk of 10; host 3's port 0 is in VLAN 1 only.
    ASSERT_TRUE(IsOk(net(1).control("vlan 0 10", kAdmin)));
    ASSERT_TRUE(IsOk(net(2).control("vlan 0 10\nvlan 1 none\ntrunk 1 10", kAdmin)));
    bus::Connection a = connect(1, 0, true, true);
    bus::Connection access = connect(2, 0, true, false);
    bus::Connection trunk = connect(2, 1, true, false);
    bus::Connection other = connect(3, 0, true, false);
    ASSERT_TRUE(IsOk(net(1).send(a, frame(kBroadcast, kA, "ten"))));
    EXPECT_EQ(payload(frame_at(2, access)), frame(kBroadcast, kA, "ten"));
    EXPECT_EQ(payload(frame_at(2, trunk)), tagged_frame(kBroadcast, kA, 10, "ten"));
    EXPECT_TRUE(nothing_for(net(3), other, 50ms)) << "VLAN 1 got a VLAN 10 frame";
}

TEST_F(ClusterSwitchTest, StpAndScopeClusterRefuseEachOther) {
    bus::Status s = net(1).control("stp on", kAdmin);
    EXPECT_TRUE(FailsWith(s, std::errc::not_supported)) << s.reason;
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("other", {}, catalog_, "switch", other)));
    other->set_replicas(services_[0].get());
    ASSERT_TRUE(IsOk(other->control("stp on")));
    s = other->control("scope cluster", kAdmin);
    EXPECT_TRUE(FailsWith(s, std::errc::not_supported)) << s.reason;
    EXPECT_TRUE(contains(s.reason, "spanning tree")) << s.reason;
    EXPECT_TRUE(IsOk(other->control("stp off\nscope cluster", kAdmin)));
}

// A lossless switch across hosts: frames tagged on the way (an access port
// of VLAN 10) take credit in the form they travel, a slow reader on another
// host holds them back, and it gets every one, in order, untagged again.
class ClusterLosslessSwitchTest : public ClusterLosslessTest {
  protected:
    void SetUp() override {
        make("policy switch\nmtu 65535\nqueue 8\nlossless on\nholdtime 0\n");
        for (std::uint32_t node = 1; node <= kHosts; ++node) {
            for (int i = 0; i < 500 && !knows_all(node); ++i) std::this_thread::sleep_for(2ms);
            ASSERT_TRUE(knows_all(node)) << net(node).stats();
        }
    }
};

TEST_F(ClusterLosslessSwitchTest, TaggedOnTheWayAndHeldBackByASlowReaderNothingIsLost) {
    constexpr Mac kA = station(0xa);
    ASSERT_TRUE(IsOk(net(1).control("vlan 1 10", kAdmin)));
    ASSERT_TRUE(IsOk(net(2).control("vlan 0 10", kAdmin)));
    bus::Connection slow = connect(1, 1, true, false);
    bus::Connection w = connect(2, 0, false, true);
    constexpr int kFrames = 40;  // five times the reader's queue
    for (int i = 0; i < kFrames; ++i) {
        bus::Status s = net(2).send(w, frame(kBroadcast, kA, std::to_string(i)));
        ASSERT_TRUE(IsOk(s)) << i << ": " << s.reason;
    }
    for (int i = 0; i < kFrames; ++i) {
        bus::MessageRef m = next(1, slow);
        while (m && m->is_event()) m = next(1, slow);
        ASSERT_TRUE(m) << "frame " << i;
        EXPECT_EQ(Bytes(m->payload().begin(), m->payload().end()),
                  frame(kBroadcast, kA, std::to_string(i)));
    }
    for (auto& n : nets_) EXPECT_TRUE(contains(n->stats(), "\ndrops 0\n")) << n->stats();
}

}  // namespace
}  // namespace ipnfs::test
