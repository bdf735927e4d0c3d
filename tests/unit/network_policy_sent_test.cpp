// Policy::sent(): the network tells the policy once per accepted message,
// however often it routed it (EAGAIN, parked and retried), and never for a
// send that did not go.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;

// Sends every message to every other receiving port, and counts the calls.
class CountingPolicy final : public bus::Policy {
  public:
    [[nodiscard]] std::string_view name() const override { return "counting"; }
    void on_ports(bus::PortId count) override { attached.resize(count, false); }
    void on_attach(bus::PortId port) override { attached[port] = true; }
    void on_detach(bus::PortId port) override { attached[port] = false; }
    void route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) override {
        ++routes;
        if (!payload.empty() && payload[0] == std::byte{'!'}) {
            out.refused = bus::Status::error(std::errc::host_unreachable, "refused");
            return;
        }
        for (bus::PortId p = 0; p < attached.size(); ++p) {
            if (attached[p] && p != from) out.to.push_back(p);
        }
        out.tally = 7;
    }
    void sent(bus::PortId /*from*/, const bus::Route& route) override {
        ++sents;
        EXPECT_TRUE(!route.refused.ok() || route.tally == 7) << "the accepted route's own tally";
    }
    [[nodiscard]] const bus::CommandTable& commands() const override { return none_; }
    void describe(std::string& /*out*/) const override {}

    std::vector<bool> attached;
    int routes = 0;
    int sents = 0;

  private:
    bus::CommandTable none_;
};

class CountingCatalog final : public bus::PolicyCatalog {
  public:
    explicit CountingCatalog(CountingPolicy*& made) : made_(made) {}
    [[nodiscard]] bus::MadePolicy make(std::string_view /*name*/) const override {
        auto p = std::make_unique<CountingPolicy>();
        made_ = p.get();
        return {bus::Status::success(), std::move(p)};
    }
    [[nodiscard]] std::string names() const override { return "counting"; }

  private:
    CountingPolicy*& made_;
};

class NetworkPolicySent : public ::testing::Test {
  protected:
    void SetUp() override {
        bus::Settings settings;
        settings.ports = 4;
        settings.queue = 1;
        settings.lossless = true;
        ASSERT_TRUE(IsOk(bus::Network::create("net0", settings, catalog_, "counting", net_)));
    }
    Connection connect(bus::PortId id, bool reads, bool writes) {
        Connection conn;
        EXPECT_TRUE(IsOk(net_->connect(id, reads, writes, conn)));
        return conn;
    }
    bool take(const Connection& c) {
        return net_->receive(c, nullptr).outcome == bus::Outcome::message;
    }

    RecordingSendWaiter waiter_;  // outlives net_
    CountingPolicy* policy_ = nullptr;
    CountingCatalog catalog_{policy_};
    std::shared_ptr<bus::Network> net_;
};

TEST_F(NetworkPolicySent, EagainRetriesAndParkedRetriesAreSentOnce) {
    Connection w = connect(0, false, true);
    Connection r = connect(1, true, false);
    ASSERT_TRUE(IsOk(net_->send(w, bytes("fill"))));
    EXPECT_EQ(policy_->sents, 1);
    for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(
            FailsWith(net_->send(w, bytes("x")), std::errc::resource_unavailable_try_again));
    }
    EXPECT_EQ(policy_->routes, 6);
    EXPECT_EQ(policy_->sents, 1) << "an EAGAIN is not a send";
    bus::SendResult parked = net_->send(w, bytes("y"), &waiter_);
    ASSERT_TRUE(parked.parked);
    ASSERT_TRUE(IsOk(net_->control("pool 1024")));  // routed again, still waits
    EXPECT_EQ(policy_->sents, 1);
    ASSERT_TRUE(take(r));  // room: y goes
    ASSERT_TRUE(waiter_.wait());
    EXPECT_GE(policy_->routes, 9);
    EXPECT_EQ(policy_->sents, 2);
    ASSERT_TRUE(take(r));
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("!")), std::errc::host_unreachable));
    EXPECT_EQ(policy_->sents, 3) << "a refusal ends its write: accepted once";
}

TEST_F(NetworkPolicySent, AnInterruptedParkedSendIsNeverSent) {
    Connection w = connect(0, false, true);
    Connection r = connect(1, true, false);
    ASSERT_TRUE(IsOk(net_->send(w, bytes("fill"))));
    ASSERT_TRUE(net_->send(w, bytes("y"), &waiter_).parked);
    ASSERT_TRUE(net_->cancel(waiter_));
    ASSERT_TRUE(take(r));
    EXPECT_EQ(policy_->sents, 1);
}

}  // namespace
}  // namespace ipnfs::test
