// What readers that are not ports may make a network hold, and what opening
// and closing costs: observer ids never wrap into port numbers (issue 16,
// finding 7), events and capture readers are bounded (findings 9, 10), and
// open/close does not grow with the port count (finding 15).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Limits;
using bus::PortId;

class NetworkBounds : public HubNetworkTest {};

TEST_F(NetworkBounds, ObserverIdsAtTheTopOfTheRangeNeverBecomePortNumbers) {
    // Billions of opens would get here; the hook starts the count near the end.
    net_->set_next_observer_for_test(0xFFFFFFFFU - 1);
    Connection port = reader(0);
    for (int i = 0; i < 50; ++i) {
        Connection c;
        ASSERT_TRUE(IsOk(i % 2 == 0 ? net_->connect_observer(c) : net_->connect_capture(c)))
            << "open " << i;
        EXPECT_TRUE(c.observer()) << "open " << i << " got id " << c.id;
        EXPECT_GE(c.id, Limits::kFirstObserver) << "open " << i;
        net_->disconnect(c);  // before the fix: id 0 closed as a port, then a crash
    }
    // Closed ids are used again; only as many as are open at once are taken.
    Connection a;
    Connection b;
    Connection c;
    ASSERT_TRUE(IsOk(net_->connect_observer(a)));
    ASSERT_TRUE(IsOk(net_->connect_observer(b)));
    bus::Status third = net_->connect_observer(c);
    EXPECT_TRUE(third.ok() || third.code == std::errc::too_many_files_open_in_system)
        << third.reason;
    if (third.ok()) {
        EXPECT_TRUE(c.observer()) << c.id;
        net_->disconnect(c);
    }
    EXPECT_TRUE(a.observer() && b.observer());
    net_->disconnect(a);
    net_->disconnect(b);
    Stats st = stats();
    EXPECT_EQ(st.totals["connected"], "1");
    EXPECT_EQ(st.totals["event_readers"], "0");
    EXPECT_EQ(st.totals["capture_readers"], "0");
    net_->disconnect(port);
}

TEST_F(NetworkBounds, ClosedObserverIdsAreUsedAgain) {
    std::set<PortId> ids;
    for (int i = 0; i < 1000; ++i) {
        Connection c;
        ASSERT_TRUE(IsOk(net_->connect_observer(c)));
        ids.insert(c.id);
        net_->disconnect(c);
    }
    EXPECT_EQ(ids.size(), 1U) << "every open took a new id";
}

TEST_F(NetworkBounds, EventsReadersBeyondTheBoundGetENFILE) {
    bus::Bounds bounds;
    bounds.event_readers = 3;
    net_->set_bounds(bounds);
    std::vector<Connection> held(3);
    for (Connection& c : held) ASSERT_TRUE(IsOk(net_->connect_observer(c)));
    Connection extra;
    bus::Status s = net_->connect_observer(extra);
    EXPECT_EQ(s.code, std::errc::too_many_files_open_in_system);
    EXPECT_NE(s.reason.find("max_event_readers=3"), std::string::npos) << s.reason;
    // Capture readers have their own bound.
    Connection cap;
    EXPECT_TRUE(IsOk(net_->connect_capture(cap)));
    net_->disconnect(cap);
    net_->disconnect(held[1]);
    EXPECT_TRUE(IsOk(net_->connect_observer(extra))) << "a closed reader's place was not freed";
    net_->disconnect(extra);
    net_->disconnect(held[0]);
    net_->disconnect(held[2]);
}

TEST_F(NetworkBounds, CaptureReadersBeyondTheBoundGetENFILE) {
    bus::Bounds bounds;
    bounds.capture_readers = 2;
    net_->set_bounds(bounds);
    Connection a;
    Connection b;
    Connection c;
    ASSERT_TRUE(IsOk(net_->connect_capture(a)));
    ASSERT_TRUE(IsOk(net_->connect_capture(b)));
    bus::Status s = net_->connect_capture(c);
    EXPECT_EQ(s.code, std::errc::too_many_files_open_in_system);
    EXPECT_NE(s.reason.find("max_capture_readers=2"), std::string::npos) << s.reason;
    net_->disconnect(a);
    EXPECT_TRUE(IsOk(net_->connect_capture(c)));
    net_->disconnect(b);
    net_->disconnect(c);
}

TEST_F(NetworkBounds, ConnectAnyTakesTheLowestFreePortAfterChurn) {
    bus::Settings settings;
    settings.ports = 200;
    remake(settings);
    std::vector<Connection> held;
    for (int i = 0; i < 150; ++i) {
        Connection c;
        ASSERT_TRUE(IsOk(net_->connect_any(false, true, c)));
        EXPECT_EQ(c.id, static_cast<PortId>(i));
        held.push_back(c);
    }
    net_->disconnect(held[70]);
    net_->disconnect(held[3]);
    Connection c;
    ASSERT_TRUE(IsOk(net_->connect_any(true, false, c)));
    EXPECT_EQ(c.id, 3U);
    Connection d;
    ASSERT_TRUE(IsOk(net_->connect_any(true, false, d)));
    EXPECT_EQ(d.id, 70U);
    // Shrinking and growing keeps the free set right.
    for (auto& h : held) {
        if (h.id >= 100) net_->disconnect(h);
    }
    ASSERT_TRUE(IsOk(net_->control("ports 100")));
    ASSERT_TRUE(IsOk(net_->control("ports 300")));
    Connection e;
    ASSERT_TRUE(IsOk(net_->connect_any(false, true, e)));
    EXPECT_EQ(e.id, 100U);
    for (auto& h : held) {
        if (h.id < 100 && h.id != 3 && h.id != 70) net_->disconnect(h);
    }
    net_->disconnect(c);
    net_->disconnect(d);
    net_->disconnect(e);
    EXPECT_EQ(stats().totals["connected"], "0");
}

// Seconds per open/close cycle on a network of `ports` ports whose ports but
// a few are taken (writers: no queue), with one events reader and one port
// with events on: connect_any, connect, a port setting, disconnect.
double cycle_cost(const std::shared_ptr<bus::Network>& net, PortId ports, int cycles) {
    std::vector<Connection> taken;
    for (PortId id = 0; id + 4 < ports; ++id) {
        Connection c;
        EXPECT_TRUE(IsOk(net->connect(id, false, true, c)));
        taken.push_back(c);
    }
    Connection observer;
    EXPECT_TRUE(IsOk(net->connect_observer(observer)));
    Connection listening;
    EXPECT_TRUE(IsOk(net->connect(ports - 1, true, false, listening)));
    EXPECT_TRUE(IsOk(net->set_events(ports - 1, true)));
    double best = 1e9;
    for (int round = 0; round < 3; ++round) {
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < cycles; ++i) {
            Connection any;
            EXPECT_TRUE(IsOk(net->connect_any(true, true, any)));
            Connection given;
            EXPECT_TRUE(IsOk(net->connect(ports - 3, true, false, given)));
            EXPECT_TRUE(IsOk(net->control_port(ports - 3, "dropwhenfull on", {.manage = true})));
            net->disconnect(given);
            net->disconnect(any);
            // Keep the events reader's queue from growing: it is not the point.
            while (net->receive(observer, nullptr).outcome == bus::Outcome::message) {
            }
            while (net->receive(listening, nullptr).outcome == bus::Outcome::message) {
            }
        }
        std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        best = std::min(best, took.count() / cycles);
    }
    net->disconnect(listening);
    net->disconnect(observer);
    for (auto& c : taken) net->disconnect(c);
    return best;
}

TEST_F(NetworkBounds, OpenAndCloseCostDoesNotGrowWithThePortCount) {
    constexpr int kCycles = 2000;
    bus::Settings small;
    small.ports = 64;
    remake(small);
    double cost_small = cycle_cost(net_, small.ports, kCycles);
    bus::Settings big;
    big.ports = Limits::kMaxPorts;
    remake(big);
    double cost_big = cycle_cost(net_, big.ports, kCycles);
    // O(ports) would be ~1000x; a shared 2-core machine gets a wide margin.
    EXPECT_LT(cost_big, 5 * cost_small + 2e-6)
        << "64 ports: " << cost_small * 1e6 << " us/cycle, 65536 ports: " << cost_big * 1e6
        << " us/cycle";
    RecordProperty("us_per_cycle_64", std::to_string(cost_small * 1e6));
    RecordProperty("us_per_cycle_65536", std::to_string(cost_big * 1e6));
}

}  // namespace
}  // namespace ipnfs::test
