// The fixture of the cluster network unit tests: three daemons' networks of
// one name on the fake engine (tests/unit/fake_cluster.hpp), each with its
// own cluster::Service, one bus across them.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "cluster/service.hpp"
#include "fake_cluster.hpp"
#include "policies/catalog.hpp"

namespace ipnfs::test {

inline const bus::Caller kAdmin{.net_admin = true};

inline bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

class ClusterNetworkTest : public ::testing::Test {
  protected:
    static constexpr int kHosts = 3;

    void SetUp() override { make("queue 4096\n"); }
    // Each host's network of the group, set up by `settings` first.
    void make(const std::string& settings) {
        for (std::uint32_t node = 1; node <= kHosts; ++node) {
            services_[node - 1] =
                std::make_unique<cluster::Service>(cluster_.engine(node, 1000 + node));
            ASSERT_TRUE(IsOk(bus::Network::create("jobs", {}, catalog_, "hub", nets_[node - 1])));
            net(node).set_replicas(services_[node - 1].get());
            bus::Status s = net(node).control(settings + "scope cluster\n", kAdmin);
            ASSERT_TRUE(IsOk(s)) << s.reason;
        }
    }
    void TearDown() override {
        for (auto& n : nets_) n.reset();  // each leaves its group through its service
    }

    bus::Network& net(std::uint32_t node) { return *nets_.at(node - 1); }
    bus::Connection connect(std::uint32_t node, bus::PortId port, bool reads, bool writes) {
        bus::Connection conn;
        EXPECT_TRUE(IsOk(net(node).connect(port, reads, writes, conn)));
        return conn;
    }
    // The next message of the port, waiting for the group to deliver it.
    bus::MessageRef next(std::uint32_t node, const bus::Connection& conn) {
        bus::Received r = receive_blocking(net(node), conn);
        return r.outcome == bus::Outcome::message ? r.message : nullptr;
    }
    // The next data message, join or leave as text (counts are skipped).
    std::string next_text(std::uint32_t node, const bus::Connection& conn) {
        bus::MessageRef m = next(node, conn);
        while (m && m->kind() == bus::Kind::counts) m = next(node, conn);
        if (!m) return "(nothing)";
        if (m->kind() == bus::Kind::join)
            return fmt::format("join {} node {}", m->from(), m->node());
        if (m->kind() == bus::Kind::leave) {
            return fmt::format("leave {} node {}", m->from(), m->node());
        }
        if (m->is_event()) return "(event)";
        return text(m);
    }
    static bool nothing_for(bus::Network& n, const bus::Connection& conn,
                            std::chrono::milliseconds wait) {
        std::this_thread::sleep_for(wait);
        return n.receive(conn, nullptr).outcome == bus::Outcome::would_block;
    }

    policies::Catalog catalog_;
    FakeCluster cluster_;
    std::array<std::unique_ptr<cluster::Service>, kHosts> services_;
    std::array<std::shared_ptr<bus::Network>, kHosts> nets_;
};

}  // namespace ipnfs::test
