// Cables between networks of one daemon, on real networks and the real
// engine: frames cross both ways byte-exact, ctl and stats show the cable,
// a loop of cables drops a frame after kHopLimit crossings, and either
// network's end ends the cable.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "netdev/cables.hpp"
#include "netdev/engine.hpp"
#include "netdev_test_support.hpp"

namespace ipnfs::test {
namespace {

const bus::Caller kAdmin{.net_admin = true};

class NetdevCables : public ::testing::Test, public bus::Directory {
  protected:
    void SetUp() override {
        for (const char* name : {"a", "b", "c"}) add(name, {});
    }

    void add(const std::string& name, const bus::Settings& settings, const char* policy = "hub") {
        std::shared_ptr<bus::Network> net;
        ASSERT_TRUE(IsOk(bus::Network::create(name, settings, catalog_, policy, net)));
        net->set_extension(std::make_unique<netdev::CablePorts>(*net, *this, cables_));
        nets_[name] = net;
    }

    [[nodiscard]] std::shared_ptr<bus::Network> find(std::string_view name) const override {
        auto it = nets_.find(std::string(name));
        return it == nets_.end() ? nullptr : it->second;
    }
    // The tree's answer, reduced to a list of networks no caller may open.
    [[nodiscard]] bus::Status may_open(std::string_view name, std::optional<bus::PortId> /*port*/,
                                       const bus::Caller& /*caller*/) const override {
        if (closed_.count(std::string(name)) == 0) return bus::Status::success();
        return bus::Status::error(std::errc::permission_denied, "closed");
    }
    std::set<std::string> closed_;

    bus::Network& net(const std::string& name) { return *nets_.at(name); }

    bus::Status ctl(const std::string& name, const std::string& line) {
        return net(name).control(line, kAdmin);
    }

    bus::Connection duplex(const std::string& name, bus::PortId port) {
        bus::Connection conn;
        EXPECT_TRUE(IsOk(net(name).connect(port, true, true, conn)));
        return conn;
    }

    // Messages the connection gets until none has come for 200 ms.
    std::vector<std::string> drain(const std::string& name, const bus::Connection& conn) {
        std::vector<std::string> got;
        for (;;) {
            bool more = wait_until(
                [&] {
                    bus::Received r = net(name).receive(conn, nullptr);
                    if (r.outcome != bus::Outcome::message) return false;
                    got.push_back(text(r.message));
                    return true;
                },
                200ms);
            if (!more) return got;
        }
    }

    // The cables table rows of a network's stats, by the network they lead to.
    std::map<std::string, std::vector<std::string>> cable_rows(const std::string& name) {
        std::map<std::string, std::vector<std::string>> rows;
        for (auto& row : parse_stats(net(name).stats()).table("cable_to").rows)
            rows[row.at(0)] = row;
        return rows;
    }

    // Member order: the networks go first (their ends unplug through the
    // cables), the cables before the engine they tear down on.
    netdev::Engine engine_;
    policies::Catalog catalog_;
    netdev::Cables cables_{engine_};
    std::map<std::string, std::shared_ptr<bus::Network>> nets_;
};

TEST_F(NetdevCables, FramesCrossBothWaysByteExact) {
    ASSERT_TRUE(IsOk(ctl("a", "cable b")));
    bus::Connection on_a = duplex("a", 5);
    bus::Connection on_b = duplex("b", 7);
    for (std::size_t size : {1UL, 60UL, 1514UL}) {
        std::string frame = make_frame(static_cast<std::uint32_t>(size), size);
        ASSERT_TRUE(IsOk(net("a").send(on_a, bytes(frame))));
        EXPECT_EQ(drain("b", on_b), std::vector<std::string>{frame}) << size;
        ASSERT_TRUE(IsOk(net("b").send(on_b, bytes(frame))));
        EXPECT_EQ(drain("a", on_a), std::vector<std::string>{frame}) << size;
    }
    auto a_rows = cable_rows("a");
    ASSERT_TRUE(a_rows.contains("b"));
    // cable_to port peer_port state frames_in bytes_in frames_out bytes_out drops hop_drops
    EXPECT_EQ(a_rows["b"][3], "running");
    EXPECT_EQ(a_rows["b"][4], "3");
    EXPECT_EQ(a_rows["b"][6], "3");
    EXPECT_EQ(a_rows["b"][5], std::to_string(1 + 60 + 1514));
    EXPECT_TRUE(cable_rows("b").contains("a"));
}

TEST_F(NetdevCables, CtlShowsTheCableOnTheNetworkThatMadeIt) {
    ASSERT_TRUE(IsOk(ctl("a", "cable b 3 4")));
    EXPECT_NE(net("a").describe().find("\ncable b 3 4\n"), std::string::npos)
        << net("a").describe();
    EXPECT_EQ(net("b").describe().find("\ncable a"), std::string::npos);
    auto rows = cable_rows("b");
    ASSERT_TRUE(rows.contains("a"));
    EXPECT_EQ(rows["a"][1], "4");
    EXPECT_EQ(rows["a"][2], "3");
}

TEST_F(NetdevCables, WrongRequestsGetTheirErrno) {
    EXPECT_TRUE(FailsWith(ctl("a", "cable nosuch"), std::errc::no_such_file_or_directory));
    EXPECT_TRUE(FailsWith(ctl("a", "cable a"), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(ctl("a", "cable b 32"), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(ctl("a", "cable b 0 x"), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(ctl("a", "uncable b"), std::errc::no_such_device));
    EXPECT_TRUE(FailsWith(net("a").control("cable b", {}), std::errc::operation_not_permitted));
    {
        bus::Connection busy = duplex("b", 2);
        EXPECT_TRUE(FailsWith(ctl("a", "cable b 1 2"), std::errc::device_or_resource_busy));
        net("b").disconnect(busy);
    }
    // The failed attempt let go of its port on a.
    bus::Connection first;
    EXPECT_TRUE(IsOk(net("a").connect(1, true, true, first, true)));
    net("a").disconnect(first);

    ASSERT_TRUE(IsOk(ctl("a", "cable b")));
    EXPECT_TRUE(FailsWith(ctl("a", "cable b"), std::errc::file_exists));
    EXPECT_TRUE(FailsWith(ctl("b", "cable a"), std::errc::file_exists));
    EXPECT_TRUE(IsOk(ctl("b", "uncable a")));
    EXPECT_TRUE(cable_rows("a").empty());
}

TEST_F(NetdevCables, ACableToANetworkTheCallerMayNotOpenIsRefusedAndTakesNoPort) {
    closed_.insert("b");
    EXPECT_TRUE(FailsWith(ctl("a", "cable b"), std::errc::permission_denied));
    EXPECT_TRUE(cable_rows("a").empty());
    bus::Connection first;
    EXPECT_TRUE(IsOk(net("a").connect(0, true, true, first, true)));
    net("a").disconnect(first);
    EXPECT_TRUE(IsOk(ctl("a", "cable c")));
}

TEST_F(NetdevCables, ALoopOfCablesDropsAFrameAfterTheHopLimit) {
    ASSERT_TRUE(IsOk(ctl("a", "cable b")));
    ASSERT_TRUE(IsOk(ctl("b", "cable c")));
    ASSERT_TRUE(IsOk(ctl("c", "cable a")));
    bus::Connection reader = duplex("a", 9);
    bus::Connection sender = duplex("a", 5);
    ASSERT_TRUE(IsOk(net("a").send(sender, bytes("round and round"))));
    // Hubs flood: the frame goes round the triangle both ways and comes back
    // to a after 3 and 6 crossings each way; the 9th crossing is refused.
    static_assert(netdev::kHopLimit == 8);
    EXPECT_EQ(drain("a", reader).size(), 1U + 2U + 2U);
    std::uint64_t hop_drops = 0;
    for (const char* name : {"a", "b", "c"}) {
        for (auto& [to, row] : cable_rows(name)) hop_drops += std::stoull(row.at(9));
    }
    EXPECT_EQ(hop_drops, 2U);
    // Quiet afterwards: nothing is still going round.
    EXPECT_TRUE(drain("a", reader).empty());
}

TEST_F(NetdevCables, EitherNetworksEndEndsTheCable) {
    ASSERT_TRUE(IsOk(ctl("a", "cable b 0 0")));
    ASSERT_TRUE(IsOk(ctl("c", "cable a 0 1")));
    net("b").hang_up();
    EXPECT_FALSE(cable_rows("a").contains("b"));
    EXPECT_TRUE(cable_rows("a").contains("c"));
    bus::Connection port0;
    EXPECT_TRUE(IsOk(net("a").connect(0, true, true, port0, true)));  // free again
    net("a").disconnect(port0);
    nets_.erase("c");  // destroyed without a hang_up first
    EXPECT_TRUE(cable_rows("a").empty());
    EXPECT_EQ(net("a").describe().find("\ncable "), std::string::npos);
}

TEST_F(NetdevCables, AFullLosslessFarSideDropsAtTheCableNotTheSender) {
    bus::Settings lossless;
    lossless.lossless = true;
    lossless.queue = 4;
    add("far", lossless);
    ASSERT_TRUE(IsOk(ctl("a", "cable far")));
    bus::Connection sleeper = duplex("far", 3);  // reads nothing
    bus::Connection sender = duplex("a", 5);
    constexpr int kFrames = 5000;
    for (int i = 0; i < kFrames; ++i) {
        ASSERT_TRUE(IsOk(net("a").send(sender, bytes(make_frame(i, 1000))))) << i;
        // Paced so the cable's own port queue on a keeps up: what is lost
        // is lost at the cable, whose socket pair fills once far stops
        // reading it.
        if (i % 32 == 31) {
            ASSERT_TRUE(
                wait_until([&] { return parse_stats(net("a").stats()).rows[0].queued == 0; }));
        }
    }
    // Every frame either crossed, was refused at the cable (the far side
    // stopped taking), or was dropped by the cable's port queue on a.
    ASSERT_TRUE(wait_until([&] {
        auto row = cable_rows("a")["far"];
        std::uint64_t queue_drops = parse_stats(net("a").stats()).rows[0].drops;
        return std::stoull(row[6]) + std::stoull(row[8]) + queue_drops == kFrames;
    })) << net("a").stats();
    EXPECT_GT(std::stoull(cable_rows("a")["far"][8]), 0U);
    // The far side delivered what it took, in order.
    std::vector<std::string> got = drain("far", sleeper);
    ASSERT_FALSE(got.empty());
    for (std::size_t i = 1; i < got.size(); ++i) {
        EXPECT_LT(frame_number(got[i - 1]), frame_number(got[i]));
    }
}

}  // namespace
}  // namespace ipnfs::test
