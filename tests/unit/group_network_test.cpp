// The group on a real network: queue load steering anycast, waiting and
// dropping at full queues, and refusals reaching the sender.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "bus_test_support.hpp"
#include "group_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using Texts = std::vector<std::string>;

// Makes only the group, whatever the built-in catalog knows.
class GroupCatalog final : public bus::PolicyCatalog {
  public:
    [[nodiscard]] bus::MadePolicy make(std::string_view name) const override {
        if (name != "group") {
            return {bus::Status::error(std::errc::invalid_argument, "not group"), nullptr};
        }
        return {bus::Status::success(), std::make_unique<policies::Group>()};
    }
    [[nodiscard]] std::string names() const override { return "group"; }
};

class GroupNetwork : public ::testing::Test {
  protected:
    void make(bool lossless) {
        bus::Settings settings;
        settings.ports = 8;
        settings.queue = 1;
        settings.lossless = lossless;
        ASSERT_TRUE(IsOk(bus::Network::create("net0", settings, catalog_, "group", net_)));
    }
    Connection connect(bus::PortId id, bool reads, bool writes) {
        Connection conn;
        EXPECT_TRUE(IsOk(net_->connect(id, reads, writes, conn))) << "port " << id;
        return conn;
    }
    std::vector<std::string> drain(const Connection& conn) {
        std::vector<std::string> out;
        for (;;) {
            bus::Received r = net_->receive(conn, nullptr);
            if (r.outcome != bus::Outcome::message) return out;
            out.push_back(text(r.message));
        }
    }

    RecordingSendWaiter waiter_;  // outlives net_
    GroupCatalog catalog_;
    std::shared_ptr<bus::Network> net_;
};

TEST_F(GroupNetwork, LosslessAnycastWaitsWhileEveryHolderIsFullThenGoesToTheOneWithRoom) {
    make(true);
    Connection w = connect(0, false, true);
    Connection a = connect(1, true, false);
    Connection b = connect(2, true, false);
    ASSERT_TRUE(IsOk(net_->control("member 1 7\nmember 2 7")));
    ASSERT_TRUE(IsOk(net_->send(w, bytes("x"), anycast(7))));
    ASSERT_TRUE(IsOk(net_->send(w, bytes("y"), anycast(7))));
    bus::SendResult r = net_->send(w, bytes("z"), &waiter_, anycast(7));
    ASSERT_TRUE(IsOk(r.status));
    ASSERT_TRUE(r.parked) << "both holders are full";
    // z went to port 1 when both were full, so the turn is port 2's: only the
    // room port 1 makes can draw z back there.
    ASSERT_EQ(net_->receive(a, nullptr).outcome, bus::Outcome::message);
    ASSERT_TRUE(waiter_.wait());
    EXPECT_TRUE(IsOk(waiter_.status()));
    EXPECT_EQ(drain(a), Texts{"z"}) << "the retry did not go to the holder that made room";
    EXPECT_EQ(drain(b), Texts{"y"});
    EXPECT_NE(net_->stats().find("group unicast 0 anycast 3 "), std::string::npos)
        << "a retried message was counted again: " << net_->stats();
}

TEST_F(GroupNetwork, LossyAnycastToFullHoldersDropsOneCopy) {
    make(false);
    Connection w = connect(0, false, true);
    Connection a = connect(1, true, false);
    Connection b = connect(2, true, false);
    ASSERT_TRUE(IsOk(net_->control("member 1 7\nmember 2 7")));
    for (const auto* m : {"x", "y", "z"}) ASSERT_TRUE(IsOk(net_->send(w, bytes(m), anycast(7))));
    EXPECT_EQ(drain(a).size() + drain(b).size(), 2u);
    EXPECT_EQ(parse_stats(net_->stats()).totals.at("drops"), "1");
}

TEST_F(GroupNetwork, UnreachableAddressesFailTheSendWithEhostunreach) {
    make(false);
    Connection w = connect(0, false, true);
    Connection a = connect(1, true, false);
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("x"), unicast(3)), std::errc::host_unreachable));
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("x"), anycast(7)), std::errc::host_unreachable));
    EXPECT_TRUE(drain(a).empty());
}

TEST_F(GroupNetwork, APortSetsItsOwnDefaultDestination) {
    make(false);
    Connection w = connect(0, false, true);
    Connection a = connect(1, true, false);
    Connection b = connect(2, true, false);
    ASSERT_TRUE(IsOk(net_->control_port(2, "member 7", {.reads = true})));
    ASSERT_TRUE(IsOk(net_->control_port(0, "dest anycast 7", {.writes = true})));
    ASSERT_TRUE(IsOk(net_->send(w, bytes("job"))));
    EXPECT_EQ(drain(b), Texts{"job"});
    EXPECT_TRUE(drain(a).empty());
    EXPECT_NE(net_->describe().find("dest 0 anycast 7  # set by its holder: reset at its last "
                                    "close\nmember 2 7  # set by its holder: reset at its last "
                                    "close\n"),
              std::string::npos)
        << net_->describe();
}

// A message routed again and again (a non-blocking write that got EAGAIN
// five times, a parked send retried whenever room appeared) counts once.
TEST_F(GroupNetwork, AMessageRetriedAfterEagainOrParkedCountsOnce) {
    make(true);
    Connection w = connect(0, false, true);
    Connection a = connect(1, true, false);
    ASSERT_TRUE(IsOk(net_->send(w, bytes("fill"), unicast(1))));
    for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(FailsWith(net_->send(w, bytes("x"), unicast(1)),
                              std::errc::resource_unavailable_try_again));
    }
    ASSERT_EQ(drain(a), Texts{"fill"});
    ASSERT_TRUE(IsOk(net_->send(w, bytes("x"), unicast(1))));
    EXPECT_NE(net_->stats().find("group unicast 2 "), std::string::npos) << net_->stats();

    bus::SendResult r = net_->send(w, bytes("y"), &waiter_, unicast(1));
    ASSERT_TRUE(r.parked);
    ASSERT_TRUE(IsOk(net_->control("pool 1024")));  // routes the parked send again: still full
    ASSERT_EQ(drain(a), (Texts{"x", "y"}));
    ASSERT_TRUE(waiter_.wait());
    EXPECT_NE(net_->stats().find("group unicast 3 "), std::string::npos) << net_->stats();
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("z"), unicast(5)), std::errc::host_unreachable));
    EXPECT_NE(net_->stats().find(" unreachable 1"), std::string::npos)
        << "a refusal counts once per write: " << net_->stats();
}

// POLLOUT follows the writer's default destination: a full member holds
// back only the writers whose messages would go to it.
TEST_F(GroupNetwork, PollWritableFollowsTheWritersDefaultDestination) {
    make(true);
    Connection a = connect(1, true, false);
    Connection b = connect(2, true, false);
    Connection to_b = connect(3, false, true);
    Connection any = connect(4, false, true);
    Connection many = connect(5, false, true);
    Connection all = connect(6, false, true);
    Connection nobody = connect(7, false, true);
    ASSERT_TRUE(IsOk(net_->control(
        "member 1 7\nmember 2 7\ndest 3 port 2\ndest 4 anycast 7\ndest 5 multicast 7\n"
        "dest 7 port 0")));
    ASSERT_TRUE(IsOk(net_->send(all, bytes("fill"), unicast(1))));
    EXPECT_TRUE(net_->poll_writable(to_b)) << "port 2 has room";
    EXPECT_TRUE(net_->poll_writable(any)) << "one holder of 7 has room";
    EXPECT_FALSE(net_->poll_writable(many)) << "a holder of 7 is full";
    EXPECT_FALSE(net_->poll_writable(all)) << "port 1 is full";
    EXPECT_TRUE(net_->poll_writable(nobody)) << "refused at once: it does not wait";
    EXPECT_FALSE(net_->poll_writable(to_b, true)) << "a framed record may go to port 1";
    ASSERT_TRUE(IsOk(net_->send(any, bytes("any"))));
    EXPECT_EQ(drain(b), Texts{"any"});
    ASSERT_TRUE(IsOk(net_->send(to_b, bytes("b"))));
    EXPECT_EQ(drain(b), Texts{"b"});
    EXPECT_TRUE(FailsWith(net_->send(many, bytes("m")), std::errc::resource_unavailable_try_again));
    EXPECT_TRUE(FailsWith(net_->send(all, bytes("m")), std::errc::resource_unavailable_try_again));
    ASSERT_EQ(drain(a), Texts{"fill"});
    EXPECT_TRUE(net_->poll_writable(many));
    EXPECT_TRUE(net_->poll_writable(all));
}

}  // namespace
}  // namespace ipnfs::test
