// Membership events: join, leave and counts, for ports that asked for them
// and for observers (readers of the network's events file).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Kind;
using bus::Outcome;
using bus::PortId;
using Texts = std::vector<std::string>;

class NetworkEvents : public HubNetworkTest {
  protected:
    void SetUp() override { remake({.ports = 16}); }

    // A reader of port `id` with events on and its snapshot already read.
    Connection subscriber(PortId id) {
        Connection s = reader(id);
        EXPECT_TRUE(IsOk(net_->set_events(id, true)));
        drain_all(s);
        return s;
    }
};

TEST_F(NetworkEvents, EventsOnGivesAJoinForEveryOtherConnectedPortThenTheCounts) {
    Connection w = writer(0);
    Connection r = reader(2);
    Connection both = duplex(9);
    Connection s = reader(1);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));
    EXPECT_EQ(drain_all(s), (Texts{"join 0", "join 2", "join 9", "counts 3 2"}));
    (void)w, (void)r, (void)both;
}

TEST_F(NetworkEvents, EventsOnThroughCtlGivesTheSameSnapshot) {
    Connection w = writer(3);
    Connection s = reader(1);
    control_ok("events 1 on");
    EXPECT_EQ(drain_all(s), (Texts{"join 3", "counts 1 1"}));
    EXPECT_NE(net_->describe().find("\nevents 1 on\n"), std::string::npos);
    (void)w;
}

TEST_F(NetworkEvents, EventsOnAgainGivesNoSecondSnapshot) {
    Connection w = writer(3);
    Connection s = subscriber(1);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));
    control_ok("events 1 on");
    EXPECT_EQ(drain_all(s), Texts{});
    (void)w;
}

TEST_F(NetworkEvents, SnapshotOfALonePortIsJustTheCounts) {
    Connection s = reader(1);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));
    EXPECT_EQ(drain_all(s), Texts{"counts 1 0"});
}

TEST_F(NetworkEvents, SnapshotComesFirstWhenAReaderOpensAPortWithEventsOn) {
    control_ok("events 1 on");
    Connection w = writer(0);
    Connection s = reader(1);
    EXPECT_EQ(drain_all(s), (Texts{"join 0", "counts 1 1"}));
    (void)w;
}

TEST_F(NetworkEvents, EventsOnForAPortWithoutAReaderQueuesNothing) {
    Connection w = writer(0);
    ASSERT_TRUE(IsOk(net_->set_events(1, true)));
    EXPECT_EQ(stats().rows.count(1), 0u) << "port 1 got a row, so something was queued";
    Connection s = reader(1);
    EXPECT_EQ(drain_all(s), (Texts{"join 0", "counts 1 1"}));
    (void)w;
}

TEST_F(NetworkEvents, EventsForAMissingPortIsNoSuchPort) {
    EXPECT_TRUE(FailsWith(net_->set_events(16, true), std::errc::no_such_file_or_directory));
    EXPECT_TRUE(FailsWith(net_->control("events 16 on"), std::errc::invalid_argument));
}

TEST_F(NetworkEvents, LaterConnectsAndDisconnectsArriveInOrder) {
    Connection s = subscriber(1);
    Connection five = duplex(5);
    Connection five_again = reader(5);  // port 5 is already connected and receiving
    Connection three = writer(3);
    net_->disconnect(five_again);
    net_->disconnect(five);
    Connection five_writer = writer(5);
    EXPECT_EQ(drain_all(s), (Texts{"join 5", "counts 2 1", "join 3", "counts 2 2", "leave 5",
                                   "counts 1 1", "join 5", "counts 1 2"}));
    (void)three, (void)five_writer;
}

TEST_F(NetworkEvents, PortAddingOrLosingAReaderOrWriterChangesOnlyTheCounts) {
    Connection s = subscriber(1);
    Connection w = writer(4);
    Connection r = reader(4);
    net_->disconnect(w);
    net_->disconnect(r);
    EXPECT_EQ(drain_all(s),
              (Texts{"join 4", "counts 1 1", "counts 2 1", "counts 2 0", "leave 4", "counts 1 0"}));
}

TEST_F(NetworkEvents, PortNeverGetsItsOwnJoinOrLeave) {
    control_ok("events 1 on");
    Connection s = reader(1);
    Connection own_writer = writer(1);
    Connection other = writer(2);
    net_->disconnect(other);
    net_->disconnect(own_writer);
    for (const std::string& e : drain_all(s)) {
        EXPECT_NE(e, "join 1");
        EXPECT_NE(e, "leave 1");
    }
}

TEST_F(NetworkEvents, JoinComesBeforeAPortsFirstDataAndLeaveAfterItsLast) {
    Connection s = subscriber(1);
    Connection p = writer(4);
    send(p, "hi");
    send(p, "bye");
    net_->disconnect(p);
    EXPECT_EQ(drain_all(s),
              (Texts{"join 4", "counts 1 1", "data hi", "data bye", "leave 4", "counts 1 0"}));
}

TEST_F(NetworkEvents, EventsCarryTheMemberAndShareTheTotalOrderWithData) {
    Connection s = subscriber(1);
    Connection p = duplex(6);
    send(p, "x");
    net_->disconnect(p);
    std::vector<std::uint64_t> seqs;
    std::vector<Kind> kinds;
    for (;;) {
        bus::Received r = net_->receive(s, nullptr);
        if (r.outcome != Outcome::message) break;
        seqs.push_back(r.message->seq());
        kinds.push_back(r.message->kind());
        EXPECT_EQ(r.message->is_event(), r.message->kind() != Kind::data);
        if (r.message->kind() == Kind::join || r.message->kind() == Kind::leave) {
            EXPECT_EQ(r.message->from(), 6u);
            EXPECT_TRUE(r.message->payload().empty());
        }
        if (r.message->kind() == Kind::counts) {
            EXPECT_EQ(r.message->payload().size(), 8u);
        }
    }
    EXPECT_EQ(kinds,
              (std::vector<Kind>{Kind::join, Kind::counts, Kind::data, Kind::leave, Kind::counts}));
    EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
    EXPECT_EQ(std::adjacent_find(seqs.begin(), seqs.end()), seqs.end()) << "a repeated seq";
}

TEST_F(NetworkEvents, EventsOffStopsNewEventsButKeepsQueuedOnes) {
    Connection s = subscriber(1);
    Connection a = writer(2);
    control_ok("events 1 off");
    Connection b = writer(3);
    EXPECT_EQ(drain_all(s), (Texts{"join 2", "counts 1 1"}));
    (void)a, (void)b;
}

TEST_F(NetworkEvents, ParkedReaderIsHandedTheNextEvent) {
    Connection s = subscriber(1);
    RecordingWaiter& waiter = receive_waiter();
    ASSERT_EQ(net_->receive(s, &waiter).outcome, Outcome::parked);
    Connection w = writer(7);
    ASSERT_EQ(waiter.calls(), 1);
    ASSERT_EQ(waiter.result().outcome, Outcome::message);
    EXPECT_EQ(show(waiter.result().message), "join 7");
    EXPECT_EQ(drain_all(s), Texts{"counts 1 1"});
    (void)w;
}

TEST_F(NetworkEvents, EventsAreNotCountedAsMessages) {
    Connection s = subscriber(1);
    Connection w = writer(2);
    net_->disconnect(w);
    drain_all(s);
    Stats st = stats();
    EXPECT_EQ(st.totals["msgs_out"], "0");
    EXPECT_EQ(st.totals["drops"], "0");
}

// Queue 1: the data fills port 1's queue, every event after it waits beyond
// the queue, and data sent meanwhile is dropped (the network is lossy).  The
// joins all wait; of the counts only the newest (bus/backlog.hpp).
TEST_F(NetworkEvents, EventsBeyondAFullQueueAllArriveInOrderAfterTheQueuedData) {
    remake({.ports = 16, .queue = 1});
    Connection w = writer(0);
    Connection s = subscriber(1);
    send(w, "queued");
    std::vector<Connection> members;
    Texts expected{"data queued"};
    for (PortId p = 5; p < 10; ++p) {
        members.push_back(duplex(p));
        expected.push_back("join " + std::to_string(p));
    }
    send(w, "dropped");
    net_->disconnect(members.back());
    members.pop_back();  // its join, still waiting, and its leave cancel out
    expected.pop_back();
    expected.emplace_back("counts 5 5");
    EXPECT_EQ(stats().rows[1].queued, 6u);
    EXPECT_EQ(drain_all(s), expected);
    EXPECT_EQ(stats().rows[1].drops, 1u) << "the data sent behind the events";
    send(w, "after");
    EXPECT_EQ(drain_all(s), Texts{"data after"}) << "the queue is usable again";
}

// The same on a lossless network: the data waits instead of dropping, and
// goes once the events ahead of it are read.
TEST_F(NetworkEvents, LosslessDataBehindEventsWaitsAndGoesOnceTheyAreRead) {
    remake({.ports = 16, .queue = 1});
    control_ok("lossless on");
    Connection w = writer(0);
    Connection s = subscriber(1);
    send(w, "queued");
    Connection member = writer(5);
    EXPECT_TRUE(
        FailsWith(net_->send(w, bytes("eager")), std::errc::resource_unavailable_try_again));
    RecordingSendWaiter& waiter = send_waiter();
    ASSERT_TRUE(net_->send(w, bytes("waits"), &waiter).parked);
    EXPECT_EQ(drain_all(s), (Texts{"data queued", "join 5", "counts 1 2", "data waits"}));
    EXPECT_EQ(waiter.calls(), 1);
    EXPECT_EQ(stats().rows[1].drops, 0u);
    (void)member;
}

// Replays join and leave events into a set of connected ports; false when an
// event contradicts the view (a join of a member, a leave of a non-member).
::testing::AssertionResult replay(const Texts& events, std::set<PortId>& view) {
    for (const std::string& e : events) {
        if (e.rfind("join ", 0) == 0) {
            if (!view.insert(static_cast<PortId>(std::stoul(e.substr(5)))).second) {
                return ::testing::AssertionFailure() << "'" << e << "' of a member";
            }
        } else if (e.rfind("leave ", 0) == 0) {
            if (view.erase(static_cast<PortId>(std::stoul(e.substr(6)))) != 1) {
                return ::testing::AssertionFailure() << "'" << e << "' of a non-member";
            }
        }
    }
    return ::testing::AssertionSuccess();
}

// Ports opening and closing thousands of times while the subscriber does not
// read: the backlog stays bounded and replaying it still gives the truth.
TEST_F(NetworkEvents, BacklogStaysBoundedUnderChurnAndReplaysToTheTrueMembership) {
    constexpr PortId kPorts = 4;
    constexpr std::uint32_t kQueue = 1;
    remake({.ports = kPorts, .queue = kQueue});
    Connection s = subscriber(0);
    Connection observer;
    ASSERT_TRUE(IsOk(net_->connect_observer(observer)));  // its snapshot stays unread
    Connection stays = writer(3);
    for (int i = 0; i < 5000; ++i) {
        Connection c = connect(1 + i % 2, i % 3 != 0, i % 3 != 1);
        net_->disconnect(c);
    }
    Connection last = reader(2);
    Connection gone = writer(1);
    net_->disconnect(gone);

    // docs/usage.md: the queue, then at most a leave and a join per other
    // port and one counts (an observer is no port: every port is other).
    const std::size_t bound = kQueue + 2 * (kPorts - 1) + 1;
    const std::size_t observer_bound = kQueue + 2 * kPorts + 1;
    EXPECT_LE(stats().rows[0].queued, bound);
    Texts events = drain_all(s);
    EXPECT_LE(events.size(), bound);
    std::set<PortId> view;
    EXPECT_TRUE(replay(events, view));
    EXPECT_EQ(view, (std::set<PortId>{2, 3}));
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back(), "counts 2 1");

    Texts seen = drain_all(observer);
    EXPECT_LE(seen.size(), observer_bound);
    std::set<PortId> observed;
    EXPECT_TRUE(replay(seen, observed));
    EXPECT_EQ(observed, (std::set<PortId>{0, 2, 3}));
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back(), "counts 2 1");
    (void)stays, (void)last;
}

// A port that comes and goes unseen leaves nothing behind, at every moment
// (not only once enough has piled up), and only the newest counts waits:
// what a reader that comes back reads is its queue plus what is true now.
TEST_F(NetworkEvents, AJoinAndALaterLeaveCancelAtOnceAndOnlyTheNewestCountsWaits) {
    remake({.ports = 32, .queue = 1});
    Connection s = subscriber(0);
    Connection w = writer(3);  // "join 3" fills the queue: the rest waits beyond it
    for (int i = 0; i < 15; ++i) net_->disconnect(writer(5));
    EXPECT_EQ(stats().rows[0].queued, 2u) << "join 3 in the queue, then counts 1 1";
    EXPECT_EQ(drain_all(s), (Texts{"join 3", "counts 1 1"}));
    (void)w;
}

// A port whose join was already queued and that left and came back waits
// as its leave and then its join: two connections, perhaps two users, so
// the pair is kept, and a port never waits as more.
TEST_F(NetworkEvents, ALeaveAndALaterJoinBothWaitAndBoundAPortToTwoEvents) {
    remake({.ports = 32, .queue = 1});
    Connection s = subscriber(0);
    Connection first = writer(3);  // "join 3" fills the queue
    net_->disconnect(first);
    Connection again = writer(3);
    for (int i = 0; i < 10; ++i) {
        net_->disconnect(again);
        again = writer(3);
    }
    EXPECT_EQ(drain_all(s), (Texts{"join 3", "leave 3", "join 3", "counts 1 1"}));
}

// Churn of every port while the subscriber does not read: beyond its queue
// it never holds more than two events per other port and one counts.
TEST_F(NetworkEvents, BacklogNeverExceedsTwoEventsPerOtherPortPlusTheCounts) {
    constexpr PortId kPorts = 8;
    remake({.ports = kPorts, .queue = 1});
    Connection s = subscriber(0);
    std::vector<Connection> held;
    for (PortId p = 1; p < kPorts; ++p) held.push_back(writer(p));  // joins queued or waiting
    drain_all(s);
    std::size_t most = 0;
    for (int round = 0; round < 50; ++round) {
        for (Connection& c : held) {
            net_->disconnect(c);
            c = writer(c.id);
            most = std::max<std::size_t>(most, stats().rows[0].queued);
        }
    }
    EXPECT_LE(most, 1 + 2 * (kPorts - 1) + 1);
    std::set<PortId> view{1, 2, 3, 4, 5, 6, 7};
    Texts events = drain_all(s);
    EXPECT_TRUE(replay(events, view));
    EXPECT_EQ(view, (std::set<PortId>{1, 2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(events.back(), "counts 1 7");
}

TEST_F(NetworkEvents, ObserverGetsTheSnapshotFirstThenOnlyEvents) {
    Connection w = writer(0);
    Connection r = reader(2);
    Connection observer;
    ASSERT_TRUE(IsOk(net_->connect_observer(observer)));
    EXPECT_TRUE(observer.observer());
    EXPECT_TRUE(observer.reads);
    EXPECT_FALSE(observer.writes);
    EXPECT_GE(observer.id, bus::Limits::kFirstObserver);
    send(w, "data is not for observers");
    Connection five = reader(5);
    net_->disconnect(w);
    EXPECT_EQ(drain_all(observer), (Texts{"join 0", "join 2", "counts 1 1", "join 5", "counts 2 1",
                                          "leave 0", "counts 2 0"}));
    EXPECT_EQ(drain(r), Texts{"data is not for observers"});
    (void)five;
}

TEST_F(NetworkEvents, ObserversAreNotMembers) {
    Connection s = subscriber(1);
    Connection a;
    Connection b;
    ASSERT_TRUE(IsOk(net_->connect_observer(a)));
    ASSERT_TRUE(IsOk(net_->connect_observer(b)));
    EXPECT_NE(a.id, b.id);
    EXPECT_EQ(drain_all(b), (Texts{"join 1", "counts 1 0"})) << "an observer saw another observer";
    net_->disconnect(a);
    EXPECT_EQ(drain_all(s), Texts{}) << "a port saw an observer come and go";
    Stats st = stats();
    EXPECT_EQ(st.totals["connected"], "1");
    EXPECT_EQ(st.totals["event_readers"], "1");
}

TEST_F(NetworkEvents, ObserverCountsInStatsUntilItDisconnects) {
    EXPECT_EQ(stat("event_readers"), "0");
    Connection a;
    Connection b;
    ASSERT_TRUE(IsOk(net_->connect_observer(a)));
    ASSERT_TRUE(IsOk(net_->connect_observer(b)));
    EXPECT_EQ(stat("event_readers"), "2");
    net_->disconnect(a);
    EXPECT_EQ(stat("event_readers"), "1");
    Connection w = writer(4);  // an event for b only
    EXPECT_EQ(drain_all(b), (Texts{"counts 0 0", "join 4", "counts 0 1"}));
    net_->disconnect(b);
    EXPECT_EQ(stat("event_readers"), "0");
    net_->disconnect(w);  // nobody is told, nothing breaks
}

TEST_F(NetworkEvents, ObserverCannotSend) {
    Connection observer;
    ASSERT_TRUE(IsOk(net_->connect_observer(observer)));
    EXPECT_TRUE(FailsWith(net_->send(observer, bytes("x")), std::errc::bad_file_descriptor));
    EXPECT_FALSE(net_->poll_writable(observer));
}

TEST_F(NetworkEvents, ObserverParksAndIsWokenByTheNextEvent) {
    Connection observer;
    ASSERT_TRUE(IsOk(net_->connect_observer(observer)));
    drain_all(observer);
    RecordingListener listener;
    net_->set_listener(&listener);
    EXPECT_FALSE(net_->poll_readable(observer));
    RecordingWaiter& waiter = receive_waiter();
    ASSERT_EQ(net_->receive(observer, &waiter).outcome, Outcome::parked);
    EXPECT_EQ(stat("parked_readers"), "1");
    Connection w = writer(3);
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_EQ(show(waiter.result().message), "join 3");
    EXPECT_EQ(listener.ports(), std::vector<PortId>{observer.id});
    EXPECT_TRUE(net_->poll_readable(observer));
    net_->set_listener(nullptr);
    (void)w;
}

TEST_F(NetworkEvents, ObserverGetsEndOfFileAfterHangUp) {
    Connection observer;
    ASSERT_TRUE(IsOk(net_->connect_observer(observer)));
    RecordingWaiter& waiter = receive_waiter();
    drain_all(observer);
    ASSERT_EQ(net_->receive(observer, &waiter).outcome, Outcome::parked);
    net_->hang_up();
    ASSERT_EQ(waiter.calls(), 1);
    EXPECT_EQ(waiter.result().outcome, Outcome::hung_up);
    Connection late;
    EXPECT_TRUE(FailsWith(net_->connect_observer(late), std::errc::no_such_file_or_directory));
    net_->disconnect(observer);
}

}  // namespace
}  // namespace ipnfs::test
