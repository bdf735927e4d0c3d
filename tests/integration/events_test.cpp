// Membership events: join/leave/counts for ports that ask for them (ctl
// "events PORT on" or IPNFS_IOC_SET_EVENTS), and the read-only events file.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using Lines = std::vector<std::string>;

class EventsTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
    }
    std::string port(int n) const { return net_ + "/port" + std::to_string(n); }

    std::string net_;
};

TEST_F(EventsTest, TurnedOnInCtlAPortGetsAJoinForEachConnectedPortThenTheCounts) {
    Fd w2 = open_fd(port(2), O_WRONLY);
    Fd r5 = open_fd(port(5), O_RDONLY);
    Fd s = open_fd(port(1), O_RDONLY);
    EXPECT_TRUE(drain(s.get()).empty()) << "events before they were asked for";
    ASSERT_EQ(ctl(net_, "events 1 on\n"), 0);
    // Ports with a reader: 1 and 5; with a writer: 2.
    EXPECT_EQ(drain(s.get()), (Lines{"join 2\n", "join 5\n", "counts 2 1\n"}));
}

// The snapshot comes first: before it, the port must not get anything about
// its own connection (not even a counts event).
TEST_F(EventsTest, AFirstReaderOpeningWithEventsOnGetsTheSnapshotFirst) {
    ASSERT_EQ(ctl(net_, "events 1 on\n"), 0);
    Fd w2 = open_fd(port(2), O_WRONLY);
    Fd s = open_fd(port(1), O_RDONLY);
    EXPECT_EQ(drain(s.get()), (Lines{"join 2\n", "counts 1 1\n"}));
}

TEST_F(EventsTest, JoinLeaveAndCountsFollowTheOtherPorts) {
    Fd s = open_fd(port(1), O_RDONLY);
    ASSERT_EQ(set_events(s.get(), true), 0) << "IPNFS_IOC_SET_EVENTS";
    EXPECT_EQ(drain(s.get()), (Lines{"counts 1 0\n"}));
    Fd r3 = open_fd(port(3), O_RDONLY);
    EXPECT_EQ(drain(s.get()), (Lines{"join 3\n", "counts 2 0\n"}));
    Fd w3 = open_fd(port(3), O_WRONLY);  // already connected: no join
    EXPECT_EQ(drain(s.get()), (Lines{"counts 2 1\n"}));
    Fd r3b = open_fd(port(3), O_RDONLY);  // neither count changes: nothing
    EXPECT_TRUE(drain(s.get()).empty());
    r3.reset();
    r3b.reset();  // the last reader of port 3; its writer stays: no leave
    EXPECT_EQ(drain(s.get()), (Lines{"counts 1 1\n"}));
    w3.reset();
    EXPECT_EQ(drain(s.get()), (Lines{"leave 3\n", "counts 1 0\n"}));
}

TEST_F(EventsTest, APortNeverGetsItsOwnJoinOrLeave) {
    ASSERT_EQ(ctl(net_, "events 1 on\n"), 0);
    Fd s = open_fd(port(1), O_RDONLY);
    Lines first = drain(s.get());
    for (const auto& line : first) EXPECT_NE(line, "join 1\n");
    Fd again = open_fd(port(1), O_WRONLY);
    Lines later = drain(s.get());
    EXPECT_EQ(later, (Lines{"counts 1 1\n"}));
    // Another subscriber sees port 1 come and go.
    Fd other = open_fd(port(7), O_RDONLY);
    ASSERT_EQ(set_events(other.get(), true), 0);
    EXPECT_EQ(drain(other.get()), (Lines{"join 1\n", "counts 2 1\n"}));
    EXPECT_EQ(drain(s.get()), (Lines{"join 7\n", "counts 2 1\n"}));
    // close() does not wait for the daemon to see the release: wait for it,
    // so the two closes reach the daemon in this order.
    s.reset();
    ASSERT_TRUE(eventually([&] { return stats(net_).rows[1].readers == 0; }, 2s));
    again.reset();
    EXPECT_EQ(drain(other.get()), (Lines{"counts 1 1\n", "leave 1\n", "counts 1 0\n"}));
}

TEST_F(EventsTest, TheIoctlAndCtlTurnEventsOnAndOff) {
    Fd s = open_fd(port(1), O_RDWR);
    ASSERT_EQ(set_events(s.get(), true), 0);
    EXPECT_NE(ctl_text(net_).find("\nevents 1 on  # set by its holder: reset at its last close\n"),
              std::string::npos)
        << "the ioctl's setting, marked as a holder's";
    EXPECT_EQ(drain(s.get()), (Lines{"counts 1 1\n"}));
    ASSERT_EQ(set_events(s.get(), false), 0);
    EXPECT_EQ(ctl_text(net_).find("events 1 on"), std::string::npos);
    Fd r4 = open_fd(port(4), O_RDONLY);
    EXPECT_TRUE(drain(s.get()).empty()) << "events after they were turned off";
    ASSERT_EQ(ctl(net_, "events 1 on\n"), 0);
    EXPECT_EQ(drain(s.get()), (Lines{"join 4\n", "counts 2 1\n"}));
    ASSERT_EQ(ctl(net_, "events 1 off\n"), 0);
    r4.reset();
    EXPECT_TRUE(drain(s.get()).empty());
    // Events are for a port's receivers: not through a write-only descriptor.
    Fd wo = open_fd(port(5), O_WRONLY);
    EXPECT_EQ(set_events(wo.get(), true), EBADF);
    EXPECT_EQ(ctl_text(net_).find("events 5 on"), std::string::npos);
    // The ioctl is for port files only.
    Fd st = open_fd(net_ + "/stats", O_RDONLY);
    EXPECT_EQ(set_events(st.get(), true), ENOTTY);
    Fd ev = open_fd(net_ + "/events", O_RDONLY);
    EXPECT_EQ(set_events(ev.get(), false), ENOTTY);
}

// A writer opens, sends 100 messages and closes: a subscriber sees its
// join, the 100 messages, then its leave, in that order.
class EventOrderTest : public EventsTest, public ::testing::WithParamInterface<bool> {};

TEST_P(EventOrderTest, AJoinPrecedesThePortsFirstMessageAndALeaveFollowsItsLast) {
    const bool lossless = GetParam();
    ASSERT_EQ(ctl(net_, lossless ? "lossless on\nqueue 4\n" : "queue 256\n"), 0);
    Fd s = open_fd(port(1), O_RDONLY);
    ASSERT_EQ(set_events(s.get(), true), 0);
    EXPECT_EQ(read_one(s.get()).data, "counts 1 0\n");
    constexpr int kMessages = 100;
    Lines got;
    std::thread reader([&] {
        while (got.size() < kMessages + 4) {
            Io io = read_one(s.get(), 3000);
            if (io.n <= 0) return;
            got.push_back(io.data);
            if (lossless && got.size() % 10 == 0) std::this_thread::sleep_for(1ms);
        }
    });
    {
        Fd w = open_fd(port(5), O_WRONLY);
        for (int i = 0; i < kMessages; ++i) {
            std::string m = "m" + std::to_string(i);
            ASSERT_EQ(::write(w.get(), m.data(), m.size()), static_cast<ssize_t>(m.size()));
        }
    }
    reader.join();
    Lines expected{"join 5\n", "counts 1 1\n"};
    for (int i = 0; i < kMessages; ++i) expected.push_back("m" + std::to_string(i));
    expected.push_back("leave 5\n");
    expected.push_back("counts 1 0\n");
    EXPECT_EQ(got, expected);
    EXPECT_EQ(stats(net_).total("drops"), 0u);
}

INSTANTIATE_TEST_SUITE_P(LossyAndLossless, EventOrderTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Lossless" : "Lossy"; });

// Lossy: events wait beyond a full queue, in order; data arriving meanwhile
// is dropped.
TEST_F(EventsTest, EventsAreNeverDroppedForAFullQueueButDataIs) {
    ASSERT_EQ(ctl(net_, "queue 2\n"), 0);
    Fd s = open_fd(port(1), O_RDONLY);
    ASSERT_EQ(set_events(s.get(), true), 0);  // "counts 1 0": one queued
    Fd w = open_fd(port(5), O_WRONLY);        // join 5 fills the queue; counts waits
    Fd r6 = open_fd(port(6), O_RDONLY);       // join 6 waits; counts replaces counts
    ASSERT_EQ(write_msg(w.get(), "lost").n, 4);
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[1].queued, 4u) << "queued counts the events beyond the queue";
    EXPECT_EQ(drain(s.get()), (Lines{"counts 1 0\n", "join 5\n", "join 6\n", "counts 2 1\n"}));
    EXPECT_EQ(stats(net_).rows[1].drops, 1u);
    EXPECT_EQ(read_one(r6.get()).data, "lost") << "port 6 had room";
    // Drained: data is queued again.
    ASSERT_EQ(write_msg(w.get(), "kept").n, 4);
    EXPECT_EQ(read_one(s.get()).data, "kept");
}

// Lossless: data behind waiting events waits too, and goes once the
// subscriber has read the events.
TEST_F(EventsTest, LosslessDataWaitingBehindEventsGoesOnceTheyAreRead) {
    ASSERT_EQ(ctl(net_, "lossless on\nqueue 2\nevents 1 on\n"), 0);
    Fd w = open_fd(port(2), O_WRONLY);
    Fd w3 = open_fd(port(3), O_WRONLY);
    Fd s = open_fd(port(1), O_RDONLY);  // join 2, join 3, counts 1 2: beyond the queue
    Stats st = stats(net_);
    ASSERT_GE(st.rows[1].queued, 3u);
    Fd nb = open_fd(port(2), O_WRONLY | O_NONBLOCK);
    EXPECT_EQ(::write(nb.get(), "x", 1), -1) << "data did not wait behind events";
    EXPECT_EQ(errno, EAGAIN);
    nb.reset();  // (port 2 stays connected through w)
    BackgroundWrite blocked(mount_, w.get(), "data");
    ASSERT_TRUE(eventually([&] { return stats(net_).total("parked_senders") == 1; }, 3s));
    Lines got;
    for (int i = 0; i < 10; ++i) {
        Io io = read_one(s.get(), 2000);
        if (io.n <= 0) break;
        got.push_back(io.data);
        if (io.data == "data") break;
    }
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), "data") << "the subscriber read every event and the parked write "
                                     "never came (read: "
                                  << ::testing::PrintToString(got) << ")";
    bool wrote = blocked.wait(2s);
    EXPECT_TRUE(wrote) << "the write stays parked although the subscriber's queue is empty";
    if (!wrote) s.reset();  // its last reader leaving lets the write go (cleanup)
    ASSERT_TRUE(blocked.wait(3s));
    EXPECT_EQ(blocked.result().n, 4);
}

TEST_F(EventsTest, PlainAndFramedReadersOfEventsGetTheSameEvents) {
    Fd plain = open_fd(port(1), O_RDONLY);
    Fd framed = open_fd(port(2), O_RDONLY);
    ASSERT_EQ(set_framed(framed.get(), true), 0);
    ASSERT_EQ(set_events(framed.get(), true), 0);
    ASSERT_EQ(set_events(plain.get(), true), 0);
    // framed: join 1, counts 2 0 (snapshot), then plain's snapshot is its own.
    Fd w = open_fd(port(3), O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "hi").n, 2);
    w.reset();
    // close() returns before the daemon sees the release: wait for the leave.
    ASSERT_TRUE(eventually([&] { return stats(net_).total("connected") == 2; }, 2s));
    Framed f = read_framed(framed.get(), 4096);
    ASSERT_GT(f.io.n, 0);
    Lines lines;
    std::uint64_t last_seq = 0;
    for (const auto& r : f.records) {
        EXPECT_EQ(r.header.version, IPNFS_FRAME_VERSION);
        EXPECT_GT(r.header.seq, last_seq) << "seq must increase";
        last_seq = r.header.seq;
        if (r.header.kind == IPNFS_JOIN || r.header.kind == IPNFS_LEAVE) {
            EXPECT_EQ(r.header.len, 0u);
        }
        if (r.header.kind == IPNFS_COUNTS) {
            EXPECT_EQ(r.header.len, sizeof(ipnfs_counts));
        }
        if (r.header.kind == IPNFS_DATA) {
            EXPECT_EQ(r.header.port, 3u);
        }
        lines.push_back(event_line(r));
    }
    EXPECT_EQ(lines, (Lines{"join 1\n", "counts 2 0\n", "join 3\n", "counts 2 1\n", "data hi\n",
                            "leave 3\n", "counts 2 0\n"}));
    EXPECT_EQ(drain(plain.get()), (Lines{"join 2\n", "counts 2 0\n", "join 3\n", "counts 2 1\n",
                                         "hi", "leave 3\n", "counts 2 0\n"}));
}

// ---- the events file ----

TEST_F(EventsTest, TheEventsFileIsReadOnlyEvenForRoot) {
    struct stat st {};
    ASSERT_EQ(stat((net_ + "/events").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0755u & 0444u);
    EXPECT_EQ(try_open(net_ + "/events", O_WRONLY), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(try_open(net_ + "/events", O_RDWR), -1);
    EXPECT_EQ(errno, EACCES);
    // Even after a chmod that grants write.
    ASSERT_EQ(chmod((net_ + "/events").c_str(), 0666), 0);
    EXPECT_EQ(try_open(net_ + "/events", O_WRONLY), -1);
    EXPECT_EQ(errno, EACCES);
}

TEST_F(EventsTest, EachOpenOfTheEventsFileGetsTheSnapshotThenLiveEventsButNoData) {
    Fd w2 = open_fd(port(2), O_WRONLY);
    Fd r3 = open_fd(port(3), O_RDONLY);
    Fd e1 = open_fd(net_ + "/events", O_RDONLY);
    EXPECT_EQ(drain(e1.get()), (Lines{"join 2\n", "join 3\n", "counts 1 1\n"}));
    Fd rw4 = open_fd(port(4), O_RDWR);
    EXPECT_EQ(drain(e1.get()), (Lines{"join 4\n", "counts 2 2\n"}));
    Fd e2 = open_fd(net_ + "/events", O_RDONLY);
    EXPECT_EQ(drain(e2.get()), (Lines{"join 2\n", "join 3\n", "join 4\n", "counts 2 2\n"}));
    Stats st = stats(net_);
    EXPECT_EQ(st.total("event_readers"), 2u);
    EXPECT_EQ(st.total("connected"), 3u) << "an events reader is not a port";

    ASSERT_EQ(write_msg(w2.get(), "data").n, 4);
    EXPECT_EQ(read_one(r3.get()).data, "data");
    w2.reset();
    for (const Fd* e : {&e1, &e2}) {
        EXPECT_EQ(drain(e->get()), (Lines{"leave 2\n", "counts 2 1\n"})) << "no data, ever";
    }
    e2.reset();  // (the daemon sees the release a little after close() returns)
    EXPECT_TRUE(eventually([&] { return stats(net_).total("event_readers") == 1; }, 2s));
    e1.reset();
    EXPECT_TRUE(eventually([&] { return stats(net_).total("event_readers") == 0; }, 2s));
}

TEST_F(EventsTest, AReadOfTheEventsFileWaitsForTheNextEvent) {
    Fd e = open_fd(net_ + "/events", O_RDONLY);
    EXPECT_EQ(read_one(e.get()).data, "counts 0 0\n");
    Fd r;
    {
        BackgroundRead reader(mount_, e.get());
        ASSERT_TRUE(reader.wait_blocked(2s)) << "an events read with nothing new did not wait";
        EXPECT_EQ(stats(net_).total("parked_readers"), 1u);
        r = open_fd(port(9), O_RDONLY);
        ASSERT_TRUE(reader.wait(3s)) << "a join did not wake the events reader";
        EXPECT_EQ(reader.result().data, "join 9\n");
        EXPECT_EQ(read_one(e.get()).data, "counts 1 0\n");
    }
    // poll: POLLIN once an event is queued.
    pollfd pfd{e.get(), POLLIN, 0};
    EXPECT_EQ(poll(&pfd, 1, 0), 0);
    Fd w = open_fd(port(8), O_WRONLY);
    EXPECT_EQ(poll(&pfd, 1, 2000), 1);
    EXPECT_EQ(read_one(e.get()).data, "join 8\n");
    // O_NONBLOCK: EAGAIN when nothing is queued.
    EXPECT_EQ(read_one(e.get()).data, "counts 1 1\n");
    Fd nb = open_fd(net_ + "/events", O_RDONLY | O_NONBLOCK);
    EXPECT_EQ(drain(nb.get()).size(), 3u);
    char buf[64];
    EXPECT_EQ(read(nb.get(), buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
}

// Replays join and leave lines into the set of connected ports; every other
// line must be a counts.  Fails on a join of a member or a leave of a
// non-member: the view would be wrong.
void replay(const Lines& got, std::set<int>& members) {
    for (const auto& line : got) {
        int p = -1;
        if (std::sscanf(line.c_str(), "join %d", &p) == 1) {
            EXPECT_TRUE(members.insert(p).second) << "join of a member: " << line;
        } else if (std::sscanf(line.c_str(), "leave %d", &p) == 1) {
            EXPECT_EQ(members.erase(p), 1u) << "leave of a non-member: " << line;
        } else {
            EXPECT_EQ(line.rfind("counts ", 0), 0u) << line;
        }
    }
}

// Ports opened and closed over and over while nobody reads (docs/usage.md,
// "Membership events"): a reader that comes back reads its queue, then at
// most a leave and a join per other port and one counts (the newest), and
// the membership they give is exact.  Port 3 left and came back after its
// join was queued: its leave and new join both wait, as two connections.
TEST_F(EventsTest, UnderChurnAReaderThatComesBackReadsItsQueueThenWhatIsTrueNow) {
    ASSERT_EQ(ctl(net_, "queue 2\nevents 0 on\n"), 0);
    Fd w3 = open_fd(port(3), O_WRONLY);
    Fd r0 = open_fd(port(0), O_RDONLY);          // join 3, counts 1 1: its queue is full
    Fd e = open_fd(net_ + "/events", O_RDONLY);  // join 0, join 3 queued; counts 1 1 waits
    for (int round = 0; round < 15; ++round) {
        for (int p = 4; p < 32; ++p) Fd churn = open_fd(port(p), O_WRONLY);
    }
    w3.reset();
    w3 = open_fd(port(3), O_WRONLY);
    Fd w6 = open_fd(port(6), O_WRONLY);

    constexpr std::size_t kQueue = 2;
    constexpr std::size_t kPorts = 32;
    Lines got = drain(r0.get());
    EXPECT_LE(got.size(), kQueue + 2 * (kPorts - 1) + 1) << "beyond the documented bound";
    EXPECT_EQ(got, (Lines{"join 3\n", "counts 1 1\n", "leave 3\n", "join 3\n", "join 6\n",
                          "counts 1 2\n"}));
    std::set<int> members;
    replay(got, members);
    EXPECT_EQ(members, (std::set<int>{3, 6}));

    Lines seen = drain(e.get());
    EXPECT_LE(seen.size(), kQueue + 2 * kPorts + 1) << "beyond the documented bound";
    EXPECT_EQ(seen,
              (Lines{"join 0\n", "join 3\n", "leave 3\n", "join 3\n", "join 6\n", "counts 1 2\n"}));
    std::set<int> observed;
    replay(seen, observed);
    EXPECT_EQ(observed, (std::set<int>{0, 3, 6}));
}

TEST_F(EventsTest, RemovingTheNetworkEndsEventsReadersWithEndOfFile) {
    Fd e = open_fd(net_ + "/events", O_RDONLY);
    EXPECT_EQ(read_one(e.get()).data, "counts 0 0\n");
    BackgroundRead reader(mount_, e.get());
    ASSERT_TRUE(reader.wait_blocked(2s));
    ASSERT_EQ(rmdir(net_.c_str()), 0);
    ASSERT_TRUE(reader.wait(3s)) << "rmdir did not end the events read";
    EXPECT_EQ(reader.result().n, 0);
    EXPECT_EQ(read_one(e.get()).n, 0);
}

TEST_F(EventsTest, CatOfTheEventsFileShowsThemLive) {
    std::string out = scratch() + "/events.txt";
    std::string script = "cat " + sq(net_ + "/events") + " > " + sq(out) +
                         " & c=$!\n"
                         "i=0; until grep -qx 'event_readers 1' " +
                         sq(net_ + "/stats") +
                         "; do i=$((i+1)); [ $i -gt 500 ] && exit 3; sleep 0.01; done\n"
                         "exec 3>" +
                         sq(port(3)) +
                         " || exit 4\n"
                         "exec 3>&-\n"
                         "i=0; until grep -q '^leave 3' " +
                         sq(out) +
                         "; do i=$((i+1)); [ $i -gt 300 ] && break; sleep 0.01; done\n"
                         "sleep 0.1; kill $c; wait; echo done\n";
    Shell sh = run_shell(script, 15);
    EXPECT_FALSE(sh.timed_out);
    EXPECT_EQ(sh.out, "done\n") << sh.err;
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), "counts 0 0\njoin 3\ncounts 0 1\nleave 3\ncounts 0 0\n");
    EXPECT_TRUE(eventually([&] { return stats(net_).total("event_readers") == 0; }, 2s));
}

}  // namespace
}  // namespace ipnfs_it
