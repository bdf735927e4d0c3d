// `quorum on` (docs/cluster.md) on the fake engine: a cluster network
// refuses sends with ENETDOWN while this host's part of the cluster has no
// quorum, fails its parked sends the same way, and sends again once it has;
// without it, a side without quorum goes on.  The real votequorum is in
// tests/integration/cluster_test.cpp.
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "cluster/service.hpp"
#include "cluster_network_fixture.hpp"
#include "fake_cluster.hpp"
#include "policies/catalog.hpp"

namespace ipnfs::test {
namespace {

// True once `done` holds, false if it did not within kWaitLimit.
bool eventually(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

// The cluster network fixture, with no network until a test makes one.
class ClusterQuorumTest : public ClusterNetworkTest {
  protected:
    void SetUp() override {}
    // Each host's network `jobs`, set up by `settings`, then scope cluster;
    // returns once every daemon knows the three.
    void make(const std::string& settings) {
        ClusterNetworkTest::make(settings);
        for (std::uint32_t node = 1; node <= kHosts; ++node) {
            ASSERT_TRUE(eventually([&] { return knows_all(node); })) << net(node).stats();
        }
    }
    bool knows_all(std::uint32_t node) {
        std::string stats = net(node).stats();
        for (std::uint32_t n = 1; n <= kHosts; ++n) {
            if (!contains(stats, fmt::format("\n{:<6} {:>8} ", n, 1000 + n))) return false;
        }
        return true;
    }
    // Until host `node`'s stats say `line` (its service heard the news).
    bool stats_say(std::uint32_t node, const std::string& line) {
        return eventually([&] { return contains(net(node).stats(), "\n" + line + "\n"); });
    }
    // The next data message of the port as text (events skipped).
    std::string next_data(std::uint32_t node, const bus::Connection& conn) {
        for (;;) {
            bus::Received r = receive_blocking(net(node), conn);
            if (r.outcome != bus::Outcome::message) return "(nothing)";
            if (!r.message->is_event()) return text(r.message);
        }
    }
    // Host 3 alone, without quorum; hosts 1 and 2 keep it.
    void cut_host_3() {
        cluster_.split({{1, 2}, {3}});
        cluster_.set_quorate(3, false);
        ASSERT_TRUE(stats_say(3, "cluster_quorate no")) << net(3).stats();
    }
};

TEST_F(ClusterQuorumTest, WithoutQuorumOnASideWithoutQuorumStillSends) {
    make("");
    ASSERT_TRUE(stats_say(3, "cluster_quorate yes")) << net(3).stats();
    cut_host_3();
    bus::Connection reader = connect(3, 1, true, false);
    bus::Connection w = connect(3, 0, false, true);
    ASSERT_TRUE(IsOk(net(3).send(w, bytes("alone"))));
    EXPECT_EQ(next_data(3, reader), "alone");
    std::string stats = net(3).stats();
    EXPECT_TRUE(contains(stats, "\ncluster_quorum off\n")) << stats;
    EXPECT_TRUE(contains(stats, "\ncluster_quorum_refusals 0\n")) << stats;
}

TEST_F(ClusterQuorumTest, WithQuorumOnSendsFailWithEnetdownWhileItIsLostAndGoOnceItIsBack) {
    make("quorum on\n");
    ASSERT_TRUE(stats_say(3, "cluster_quorate yes")) << net(3).stats();
    bus::Connection r1 = connect(1, 1, true, false);
    bus::Connection r3 = connect(3, 1, true, false);
    bus::Connection w1 = connect(1, 0, false, true);
    bus::Connection w3 = connect(3, 0, false, true);
    ASSERT_TRUE(IsOk(net(3).send(w3, bytes("before"))));
    EXPECT_EQ(next_data(1, r1), "before");
    EXPECT_EQ(next_data(3, r3), "before");

    cut_host_3();
    bus::Status s = net(3).send(w3, bytes("refused"));
    EXPECT_TRUE(FailsWith(s, std::errc::network_down));
    EXPECT_TRUE(contains(s.reason, "no quorum")) << s.reason;
    EXPECT_TRUE(FailsWith(net(3).send(w3, bytes("refused too")), std::errc::network_down));
    EXPECT_TRUE(contains(net(3).stats(), "\ncluster_quorum_refusals 2\n")) << net(3).stats();
    EXPECT_TRUE(net(3).poll_writable(w3, false)) << "writable: the write says why";
    // Opening a port still works, and the quorate side goes on.
    bus::Connection more = connect(3, 2, false, true);
    bus::Connection r2 = connect(2, 1, true, false);
    ASSERT_TRUE(IsOk(net(1).send(w1, bytes("majority"))));
    EXPECT_EQ(next_data(2, r2), "majority");

    cluster_.heal();
    cluster_.set_quorate(3, true);
    ASSERT_TRUE(stats_say(3, "cluster_quorate yes")) << net(3).stats();
    ASSERT_TRUE(IsOk(net(3).send(w3, bytes("back"))));
    EXPECT_EQ(next_data(2, r2), "back");
    EXPECT_EQ(next_data(3, r3), "back") << "nothing refused was sent";
    EXPECT_TRUE(contains(net(1).stats(), "\ncluster_quorum_refusals 0\n")) << net(1).stats();
    net(3).disconnect(more);
}

TEST_F(ClusterQuorumTest, AParkedLosslessSendFailsWithEnetdownWhenQuorumIsLost) {
    make("mtu 65535\nqueue 8\nlossless on\nholdtime 0\nquorum on\n");
    connect(1, 1, true, false);  // a reader that never reads
    bus::Connection w = connect(2, 0, false, true);
    const std::string kib16(16 << 10, 'x');
    RecordingSendWaiter waiter;
    bus::SendResult r;
    // Fill host 1's window for host 2: the next send parks.
    for (int i = 0; i < 1000; ++i) {
        r = net(2).send(w, bytes(kib16), &waiter);
        ASSERT_TRUE(IsOk(r.status)) << r.status.reason;
        if (r.parked) break;
    }
    ASSERT_TRUE(r.parked) << "the window never filled";
    EXPECT_FALSE(waiter.wait(50ms));
    cluster_.set_quorate(2, false);
    ASSERT_TRUE(waiter.wait()) << "a parked send waited on without quorum";
    EXPECT_TRUE(FailsWith(waiter.status(), std::errc::network_down));
    EXPECT_TRUE(contains(net(2).stats(), "\ncluster_quorum_refusals 1\n")) << net(2).stats();
}

TEST_F(ClusterQuorumTest, AnotherQuorumSettingThanTheGroupsIsEexist) {
    make("");
    cluster::Service fourth(cluster_.engine(4, 1004));
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("jobs", {}, catalog_, "hub", other)));
    other->set_replicas(&fourth);
    bus::Status s = other->control("quorum on\nscope cluster", kAdmin);
    ASSERT_TRUE(FailsWith(s, std::errc::file_exists)) << s.reason;
    EXPECT_TRUE(contains(s.reason, "policy hub lossless off quorum on")) << s.reason;
    EXPECT_TRUE(contains(s.reason, "here: policy hub lossless off)") ||
                contains(s.reason, "(policy hub lossless off;"))
        << s.reason;
    ASSERT_TRUE(IsOk(other->control("quorum off\nscope cluster", kAdmin)));
    other.reset();
}

TEST_F(ClusterQuorumTest, QuorumIsSetBeforeScopeClusterAndTheCtlDumpSaysItInThatOrder) {
    make("");
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("other", {}, catalog_, "hub", other)));
    other->set_replicas(services_[0].get());
    EXPECT_FALSE(contains(other->describe(), "\nquorum on\n"));
    EXPECT_TRUE(FailsWith(other->control("quorum maybe"), std::errc::invalid_argument));
    bus::Connection c;
    ASSERT_TRUE(IsOk(other->connect(0, true, false, c)));
    ASSERT_TRUE(IsOk(other->control("quorum on"))) << "any port may be open";
    other->disconnect(c);
    ASSERT_TRUE(IsOk(other->control("scope cluster", kAdmin)));
    EXPECT_TRUE(contains(other->describe(), "\nquorum on\nscope cluster\n")) << other->describe();
    EXPECT_TRUE(FailsWith(other->control("quorum off"), std::errc::not_supported));
    EXPECT_TRUE(IsOk(other->control("quorum on"))) << "what it is";
    ASSERT_TRUE(IsOk(other->control("scope node", kAdmin)));
    EXPECT_TRUE(IsOk(other->control("quorum off")));
    EXPECT_FALSE(contains(other->describe(), "\nquorum on\n"));
}

TEST_F(ClusterQuorumTest, WithoutAQuorumServiceQuorumOnIsRefusedAtScopeCluster) {
    make("");
    cluster_.set_quorum_service(4, false);
    cluster::Service fourth(cluster_.engine(4, 1004));
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("solo", {}, catalog_, "hub", other)));
    other->set_replicas(&fourth);
    bus::Status s = other->control("quorum on\nscope cluster", kAdmin);
    EXPECT_TRUE(FailsWith(s, std::errc::not_supported)) << s.reason;
    EXPECT_TRUE(contains(s.reason, "votequorum")) << s.reason;
    EXPECT_FALSE(contains(other->describe(), "\nscope cluster\n"));
    // Without quorum on it joins, and stats says quorum is not known.
    ASSERT_TRUE(IsOk(other->control("quorum off\nscope cluster", kAdmin)));
    EXPECT_TRUE(contains(other->stats(), "\ncluster_quorate unknown\n")) << other->stats();
    other.reset();
}

}  // namespace
}  // namespace ipnfs::test
