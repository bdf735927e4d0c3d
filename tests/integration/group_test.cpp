// The group policy on a real mount: unicast, anycast (load-aware), multicast
// and broadcast from programs (framed records) and from a shell (ctl "dest"),
// loopback, refusals, and order and losslessness across modes.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

class GroupTest : public IpnfsTest {
  protected:
    // A group network; `settings` are more ctl lines.
    std::string group(const std::string& settings = "") {
        std::string net = make_net("g");
        EXPECT_EQ(ctl(net, "policy group\n" + settings), 0) << last_error_line(ctl_text(net));
        return net;
    }
    static Fd open_port(const std::string& net, int port, int flags = O_RDWR) {
        return open_fd(net + "/port" + std::to_string(port), flags);
    }
};

RecordSpec to(ipnfs_to kind, std::uint32_t lower, std::string payload, std::uint64_t upper = 0) {
    RecordSpec r{std::move(payload)};
    r.flags = IPNFS_FLAGS_TO(kind);
    r.port = lower;
    r.seq = upper;
    return r;
}

// Writes the records in one framed write; the errno, 0 if all were taken.
int send_framed(int fd, const std::vector<RecordSpec>& records) {
    std::string buf;
    for (const RecordSpec& r : records) buf += encode(r);
    ssize_t n = write(fd, buf.data(), buf.size());
    if (n < 0) return errno;
    return static_cast<std::size_t>(n) == buf.size() ? 0 : EMSGSIZE;
}

// Everything queued at the port, as payloads.
std::vector<std::string> got(int fd) {
    return drain(fd, 100);
}

TEST_F(GroupTest, AUnicastReachesOnlyThePortItNames) {
    std::string net = group();
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    Fd a = open_port(net, 1);
    Fd b = open_port(net, 2);
    Fd c = open_port(net, 3);
    ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_PORT, 2, "for two")}), 0);
    EXPECT_EQ(got(b.get()), std::vector<std::string>{"for two"});
    EXPECT_TRUE(got(a.get()).empty());
    EXPECT_TRUE(got(c.get()).empty());
}

TEST_F(GroupTest, AnAddressNobodyHoldsIsRefusedWithEHOSTUNREACH) {
    std::string net = group("member 1 7\n");
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    Fd a = open_port(net, 1);
    EXPECT_EQ(send_framed(s.get(), {to(IPNFS_TO_PORT, 5, "x")}), EHOSTUNREACH) << "no reader";
    EXPECT_EQ(send_framed(s.get(), {to(IPNFS_TO_ANYCAST, 8, "x")}), EHOSTUNREACH);
    EXPECT_EQ(send_framed(s.get(), {to(IPNFS_TO_ANYCAST, 7, "ok")}), 0);
    EXPECT_EQ(got(a.get()), std::vector<std::string>{"ok"});
    Stats st = stats(net);
    EXPECT_EQ(st.total("msgs_in"), 1u) << "refused sends are not sent";
}

TEST_F(GroupTest, AnycastsTakeTurnsAmongTheHoldersOfAnInstance) {
    std::string net = group("member 1 7\nmember 2 7\nmember 3 7\nmember 4 8\n");
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    std::vector<Fd> r;
    for (int p = 1; p <= 4; ++p) r.push_back(open_port(net, p));
    for (int i = 0; i < 30; ++i) {
        ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_ANYCAST, 7, "job" + std::to_string(i))}), 0);
    }
    for (int p = 0; p < 3; ++p) {
        EXPECT_EQ(got(r[p].get()).size(), 10u) << "port " << p + 1;
    }
    EXPECT_TRUE(got(r[3].get()).empty()) << "instance 8 is not 7";
}

TEST_F(GroupTest, AStalledMemberGetsNoNewAnycastsWhileOthersHaveRoom) {
    std::string net = group("lossless on\nmember 1 7\nmember 2 7\nmember 3 7\n");
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    Fd stalled = open_port(net, 1, O_RDONLY);  // never read
    Fd b = open_port(net, 2, O_RDONLY);
    Fd c = open_port(net, 3, O_RDONLY);
    std::map<int, int> count;
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_ANYCAST, 7, "job")}), 0);
        // The working members read what they got at once; a message neither
        // got within 100 ms went to the stalled one.
        pollfd fds[2] = {{b.get(), POLLIN, 0}, {c.get(), POLLIN, 0}};
        ASSERT_GE(poll(fds, 2, 100), 0);
        if ((fds[0].revents & POLLIN) != 0) {
            ASSERT_EQ(read_one(b.get()).data, "job");
            ++count[2];
        } else if ((fds[1].revents & POLLIN) != 0) {
            ASSERT_EQ(read_one(c.get()).data, "job");
            ++count[3];
        } else {
            ++count[1];
        }
    }
    EXPECT_LE(count[1], 1) << "only while every member was equally idle";
    EXPECT_GE(count[2], 45);
    EXPECT_GE(count[3], 45);
    EXPECT_EQ(got(stalled.get()).size(), static_cast<std::size_t>(count[1]));
    EXPECT_EQ(stats(net).total("drops"), 0u);
}

TEST_F(GroupTest, AMulticastReachesEveryHolderOfTheRange) {
    std::string net = group("member 1 1\nmember 2 2\nmember 3 3\nmember 4 10\nmember 5 2\n");
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    std::vector<Fd> r;
    for (int p = 1; p <= 6; ++p) r.push_back(open_port(net, p));
    ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_MULTICAST, 2, "two to three", 3),
                                    to(IPNFS_TO_MULTICAST, 10, "ten", 10)}),
              0);
    const std::vector<std::vector<std::string>> want{{},      {"two to three"}, {"two to three"},
                                                     {"ten"}, {"two to three"}, {}};
    for (std::size_t i = 0; i < r.size(); ++i) {
        EXPECT_EQ(got(r[i].get()), want[i]) << "port " << i + 1;
    }
    // A range upside down is malformed.
    EXPECT_EQ(send_framed(s.get(), {to(IPNFS_TO_MULTICAST, 3, "x", 2)}), EINVAL);
}

TEST_F(GroupTest, ABroadcastReachesEveryReceiverAndTheSenderOnlyWithLoopback) {
    std::string net = group();
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    Fd a = open_port(net, 1);
    Fd b = open_port(net, 2);
    ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_BROADCAST, 0, "all")}), 0);
    EXPECT_EQ(got(a.get()).size(), 1u);
    EXPECT_EQ(got(b.get()).size(), 1u);
    EXPECT_TRUE(drain(s.get(), 100).empty()) << "no loopback by default";
    ASSERT_EQ(port_ctl(s.get(), "loopback on"), 0);
    ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_BROADCAST, 0, "all")}), 0);
    Framed own = read_framed(s.get());
    ASSERT_EQ(own.records.size(), 1u);
    EXPECT_EQ(own.records[0].payload, "all");
    EXPECT_EQ(IPNFS_FLAGS_GET_TO(own.records[0].header.flags), IPNFS_TO_BROADCAST)
        << "a reader sees how a message was addressed";
}

TEST_F(GroupTest, AProgramJoinsAnInstanceThroughItsOwnPort) {
    std::string net = group();
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    Fd worker = open_port(net, 4, O_RDONLY);
    ASSERT_EQ(set_framed(worker.get(), true), 0);
    ASSERT_EQ(port_ctl(worker.get(), "member 42"), 0);
    EXPECT_NE(ctl_text(net).find("\nmember 4 42  # set by its holder: reset at its last close\n"),
              std::string::npos)
        << ctl_text(net);
    ASSERT_EQ(send_framed(s.get(), {to(IPNFS_TO_ANYCAST, 42, "work")}), 0);
    Framed f = read_framed(worker.get());
    ASSERT_EQ(f.records.size(), 1u);
    EXPECT_EQ(f.records[0].payload, "work");
    EXPECT_EQ(f.records[0].header.port, 0u) << "the sending port";
    EXPECT_EQ(IPNFS_FLAGS_GET_TO(f.records[0].header.flags), IPNFS_TO_ANYCAST);
    ASSERT_EQ(port_ctl(worker.get(), "member none"), 0);
    EXPECT_EQ(send_framed(s.get(), {to(IPNFS_TO_ANYCAST, 42, "work")}), EHOSTUNREACH);
}

TEST_F(GroupTest, ShellUsersAddressWithTheirPortsDefaultDestination) {
    std::string net = group("member 2 7\nmember 3 7\n");
    std::string out = scratch();
    auto take = [&](int port, int count) {
        std::string n = std::to_string(port);
        return "timeout 5 dd bs=65536 count=" + std::to_string(count) + " status=none if=port" + n +
               " of=" + sq(out + "/" + n) + " & ";
    };
    Shell sh = run_shell("cd " + sq(net) + " || exit 1; " + take(1, 2) + take(2, 2) + take(3, 2) +
                         "until grep -qx 'connected 3' stats; do sleep 0.05; done\n"
                         "echo everyone > port0\n"
                         "echo 'dest 0 port 1' > ctl && echo one > port0\n"
                         "echo 'dest 0 anycast 7' > ctl && echo any > port0 && echo any > port0\n"
                         "echo 'dest 0 anycast 9' > ctl\n"
                         "/bin/echo nobody > port0 2> " +
                         sq(out + "/err") + "; echo $? > " + sq(out + "/rc") + "\nwait");
    ASSERT_EQ(sh.exit_code(), 0) << sh.out << sh.err;
    EXPECT_EQ(slurp(out + "/1"), "everyone\none\n");
    EXPECT_EQ(slurp(out + "/2"), "everyone\nany\n");
    EXPECT_EQ(slurp(out + "/3"), "everyone\nany\n");
    EXPECT_EQ(slurp(out + "/rc"), "1\n");
    EXPECT_NE(slurp(out + "/err").find("No route to host"), std::string::npos)
        << slurp(out + "/err");
    EXPECT_NE(ctl_text(net).find("\ndest 0 anycast 9\n"), std::string::npos) << ctl_text(net);
}

// A slow receiver makes the sender wait; whatever the mode, its messages
// reach every receiver in the order they were sent, in the network's order.
TEST_F(GroupTest, OrderHoldsAcrossModesAndNothingIsLost) {
    std::string net = group("lossless on\nqueue 4\nmember 2 5\nmember 3 5\n");
    Fd s = open_port(net, 0);
    ASSERT_EQ(set_framed(s.get(), true), 0);
    Fd two = open_port(net, 2, O_RDONLY);
    Fd three = open_port(net, 3, O_RDONLY);
    ASSERT_EQ(set_framed(two.get(), true), 0);
    ASSERT_EQ(set_framed(three.get(), true), 0);
    // Port 2 gets every message: broadcasts, multicasts to 5, unicasts to
    // it, and anycasts to 5 while port 3 is full.  Port 3 is slow.
    constexpr int kRounds = 60;
    std::thread sender([&] {
        for (int i = 0; i < kRounds; ++i) {
            std::string n = std::to_string(i);
            std::vector<RecordSpec> batch{to(IPNFS_TO_BROADCAST, 0, "b" + n),
                                          to(IPNFS_TO_PORT, 2, "u" + n),
                                          to(IPNFS_TO_MULTICAST, 5, "m" + n, 5)};
            std::string buf;
            for (const RecordSpec& r : batch) buf += encode(r);
            // Short writes (a later record would wait) go on from there.
            std::size_t done = 0;
            while (done < buf.size()) {
                ssize_t w = write(s.get(), buf.data() + done, buf.size() - done);
                if (w <= 0) return;
                done += static_cast<std::size_t>(w);
            }
        }
    });
    auto read_all = [&](int fd, std::size_t want, int delay_ms) {
        std::vector<Record> all;
        while (all.size() < want) {
            if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
            Framed f = read_framed(fd, 65536, 5000);
            if (f.io.n <= 0) break;
            all.insert(all.end(), f.records.begin(), f.records.end());
        }
        return all;
    };
    std::vector<Record> at3;
    std::thread slow([&] { at3 = read_all(three.get(), std::size_t{2} * kRounds, 5); });
    std::vector<Record> at2 = read_all(two.get(), std::size_t{3} * kRounds, 0);
    sender.join();
    slow.join();
    auto check = [](const std::vector<Record>& recs, const std::vector<char>& kinds, int port) {
        ASSERT_EQ(recs.size(), kinds.size() * kRounds) << "port " << port;
        std::uint64_t last = 0;
        for (std::size_t i = 0; i < recs.size(); ++i) {
            std::string want = kinds[i % kinds.size()] + std::to_string(i / kinds.size());
            ASSERT_EQ(recs[i].payload, want) << "port " << port << " record " << i;
            ASSERT_GT(recs[i].header.seq, last) << "the network's order";
            last = recs[i].header.seq;
        }
    };
    check(at2, {'b', 'u', 'm'}, 2);
    check(at3, {'b', 'm'}, 3);
    Stats st = stats(net);
    EXPECT_EQ(st.total("drops"), 0u);
    EXPECT_EQ(st.total("msgs_in"), 3u * kRounds);
}

TEST_F(GroupTest, ManySendersToOneLosslessReceiverLoseNothing) {
    std::string net = group("lossless on\nqueue 8\n");
    Fd sink = open_port(net, 9, O_RDONLY);
    ASSERT_EQ(set_framed(sink.get(), true), 0);
    constexpr int kSenders = 4;
    constexpr int kEach = 300;
    std::vector<std::thread> senders;
    senders.reserve(kSenders);
    for (int k = 0; k < kSenders; ++k) {
        senders.emplace_back([&, k] {
            Fd s = open_port(net, k, O_WRONLY);
            set_framed(s.get(), true);
            for (int i = 0; i < kEach; ++i) {
                if (send_framed(s.get(), {to(IPNFS_TO_PORT, 9, std::to_string(i))}) != 0) return;
            }
        });
    }
    std::map<std::uint32_t, int> next;
    int total = 0;
    while (total < kSenders * kEach) {
        Framed f = read_framed(sink.get(), 65536, 5000);
        ASSERT_GT(f.io.n, 0) << "after " << total;
        for (const Record& r : f.records) {
            ASSERT_EQ(r.payload, std::to_string(next[r.header.port]++))
                << "sender " << r.header.port << " out of order";
            ++total;
        }
    }
    for (auto& t : senders) t.join();
    EXPECT_EQ(stats(net).total("drops"), 0u);
}

TEST_F(GroupTest, MembershipEventsComeInOrderWithTheData) {
    std::string net = group("lossless on\n");
    Fd watcher = open_port(net, 1, O_RDONLY);
    ASSERT_EQ(set_framed(watcher.get(), true), 0);
    ASSERT_EQ(set_events(watcher.get(), true), 0);
    {
        Fd member = open_port(net, 2);
        ASSERT_EQ(set_framed(member.get(), true), 0);
        ASSERT_EQ(send_framed(member.get(),
                              {to(IPNFS_TO_PORT, 1, "hello"), to(IPNFS_TO_BROADCAST, 0, "all")}),
                  0);
    }
    std::vector<std::string> seen;
    std::uint64_t last = 0;
    while (seen.size() < 7) {
        Framed f = read_framed(watcher.get());
        ASSERT_GT(f.io.n, 0) << "after " << seen.size();
        for (const Record& r : f.records) {
            seen.push_back(r.header.kind == IPNFS_DATA ? r.payload : event_line(r));
            EXPECT_GT(r.header.seq, last);
            last = r.header.seq;
        }
    }
    // The counts it joined with, port 2's join and counts, port 2's two
    // messages, then its leave and the counts after it.
    EXPECT_EQ(seen, (std::vector<std::string>{"counts 1 0\n", "join 2\n", "counts 2 1\n", "hello",
                                              "all", "leave 2\n", "counts 1 0\n"}));
}

}  // namespace
}  // namespace ipnfs_it
