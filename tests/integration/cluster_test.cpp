// Cluster networks (docs/cluster.md): three "hosts" on this machine
// (tools/cluster-hosts.sh: network namespaces with a corosync each, knet
// with aes256/sha256), one ipnfs daemon inside each, and a network `jobs`
// with `scope cluster` on all three: one bus, one order, and membership
// across hosts, checked as a user would, through the files.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster_hosts.hpp"
#include "ether.hpp"
#include "ipnfs_client.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

constexpr int kHosts = 3;

class ClusterTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (std::string why = ClusterHosts::problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
        ASSERT_EQ(hosts_.start(kHosts), "");
        for (int i = 1; i <= kHosts; ++i) {
            std::string why;
            // The example plugins, for a topic network across hosts.
            ASSERT_TRUE(hosts_.start_daemon(i, daemon(i), {"plugins=" IPNFS_PLUGIN_DIR}, why))
                << "host " << i << ": " << why;
            watchdogs_.push_back(std::make_unique<Watchdog>(daemon(i), 90s));
        }
    }

    void TearDown() override {
        watchdogs_.clear();
        for (int i = 1; i <= kHosts; ++i) {
            Mount& m = daemon(i);
            if (m.pid() > 0 && i != killed_) stop_cleanly(m);
            if (HasFailure()) std::cerr << "---- host " << i << "'s daemon ----\n" << m.log();
            m.cleanup();
        }
        if (HasFailure()) {
            for (int i = 1; i <= kHosts; ++i) {
                std::cerr << "---- host " << i << "'s corosync ----\n"
                          << read_whole(hosts_.dir() + "/host" + std::to_string(i) +
                                        "/corosync.log");
            }
        }
        EXPECT_EQ(hosts_.down(), "");
    }

    Mount& daemon(int i) { return mounts_.at(i - 1); }
    // A file of network `jobs` on host i.
    std::string at(int i, const std::string& file = "") {
        return daemon(i).path(file.empty() ? "jobs" : "jobs/" + file);
    }
    // `jobs` on every host, a cluster network; `setup` lines first.
    void make_jobs(const std::string& setup = "") {
        for (int i = 1; i <= kHosts; ++i) {
            ASSERT_EQ(mkdir(at(i).c_str(), 0755), 0) << std::strerror(errno);
            ASSERT_EQ(write_file(at(i, "ctl"), setup + "scope cluster\n"), 0)
                << "host " << i << ": " << last_error_line(slurp(at(i, "ctl")));
        }
    }
    // Reads lines from fd until `count` came or nothing came for a while.
    // The next join or leave line of an events file (this host's counts
    // lines are skipped).
    static std::string member_event(int fd, int timeout_ms = 10000) {
        for (;;) {
            Io io = read_one(fd, timeout_ms);
            if (io.n <= 0 || !io.data.starts_with("counts ")) return io.data;
        }
    }
    static std::vector<std::string> read_lines(int fd, std::size_t count, int timeout_ms = 10000) {
        std::vector<std::string> got;
        while (got.size() < count) {
            Io io = read_one(fd, timeout_ms);
            if (io.n <= 0) break;
            got.push_back(io.data);
        }
        return got;
    }

    ClusterHosts hosts_;
    std::array<Mount, kHosts> mounts_;
    std::vector<std::unique_ptr<Watchdog>> watchdogs_;
    int killed_ = 0;  // the host whose daemon the test killed
};

TEST_F(ClusterTest, EchoOnOneHostArrivesAtCatOnTheOthersAsWholeMessages) {
    make_jobs();
    // Readers on hosts 2 and 3 and a second port on host 1; the writer's
    // own port gets nothing of its own.
    Fd r2 = open_fd(at(2, "port1"), O_RDONLY);
    Fd r3 = open_fd(at(3, "port1"), O_RDONLY);
    Fd r1 = open_fd(at(1, "port2"), O_RDONLY);
    Fd own = open_fd(at(1, "port0"), O_RDWR | O_NONBLOCK);
    ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok() && own.ok());
    Shell sent = root_sh("echo hello > " + sq(at(1, "port3")) + " && printf 'a\\n' > " +
                             sq(at(1, "port3")) + " && printf 'bb\\n' > " + sq(at(1, "port3")),
                         10);
    ASSERT_EQ(sent.exit_code(), 0) << describe(sent);
    for (int fd : {r1.get(), r2.get(), r3.get()}) {
        EXPECT_EQ(read_lines(fd, 3), (std::vector<std::string>{"hello\n", "a\n", "bb\n"}));
    }
    EXPECT_EQ(read_lines(own.get(), 3), (std::vector<std::string>{"hello\n", "a\n", "bb\n"}));
    ASSERT_EQ(write_msg(own.get(), "mine\n").n, 5);
    for (int fd : {r1.get(), r2.get(), r3.get()}) EXPECT_EQ(read_one(fd).data, "mine\n");
    EXPECT_TRUE(read_one(own.get(), 300).timed_out()) << "a port got its own message";

    // cat in a shell on host 3 reads what a shell on host 2 writes.
    Shell cat = root_sh("head -n 2 " + sq(at(3, "port4")) + " & sleep 1; echo one > " +
                            sq(at(2, "port4")) + "; echo two > " + sq(at(2, "port4")) + "; wait",
                        20);
    EXPECT_EQ(cat.out, "one\ntwo\n") << describe(cat);
}

TEST_F(ClusterTest, EveryReaderOnEveryHostSeesTheSameOrder) {
    make_jobs("queue 4096\n");
    constexpr int kEach = 300;
    std::array<Fd, kHosts> readers;
    for (int i = 1; i <= kHosts; ++i) {
        readers[i - 1] = open_fd(at(i, "port9"), O_RDONLY);
        ASSERT_TRUE(readers[i - 1].ok());
    }
    // One writer per host, all at once.
    std::vector<std::thread> writers;
    for (int i = 1; i <= kHosts; ++i) {
        writers.emplace_back([this, i] {
            Fd w = open_fd(at(i, "port0"), O_WRONLY);
            for (int n = 0; n < kEach; ++n)
                write_msg(w.get(), std::to_string(i) + " " + std::to_string(n));
        });
    }
    for (auto& t : writers) t.join();
    std::array<std::vector<std::string>, kHosts> seen;
    for (int i = 0; i < kHosts; ++i) seen[i] = read_lines(readers[i].get(), kHosts * kEach);
    for (int i = 0; i < kHosts; ++i) {
        ASSERT_EQ(seen[i].size(), std::size_t{kHosts * kEach}) << "host " << i + 1;
        // Each sender's messages in the order it sent them.
        std::map<std::string, int> next;
        for (const std::string& m : seen[i]) {
            std::string who = m.substr(0, m.find(' '));
            EXPECT_EQ(m, who + " " + std::to_string(next[who]++));
        }
    }
    EXPECT_EQ(seen[0], seen[1]) << "hosts 1 and 2 saw different orders";
    EXPECT_EQ(seen[0], seen[2]) << "hosts 1 and 3 saw different orders";
    // stats on host 1 has a row per daemon of the group, settings alike.
    std::string stats = slurp(at(1, "stats"));
    EXPECT_TRUE(contains(stats, "cluster_engine ok")) << stats;
    EXPECT_TRUE(contains(stats, "cluster_msgs_in " + std::to_string(2 * kEach))) << stats;
    for (int node = 1; node <= kHosts; ++node) {
        EXPECT_TRUE(contains(stats, "\n" + std::to_string(node) + " ")) << stats;
    }
    EXPECT_FALSE(contains(stats, "differ")) << stats;
    EXPECT_TRUE(contains(slurp(at(2, "ctl")), "\nscope cluster\n"));
}

// Lossless across hosts: two slow readers (hosts 1 and 3) hold back four
// writers on three hosts through the credit the daemons pass in the order;
// nothing is dropped and every reader sees one order.
TEST_F(ClusterTest, LosslessFourWritersFourReadersTwoSlowLoseNothingAndSeeOneOrder) {
    make_jobs("queue 16\nlossless on\nholdtime 0\n");
    constexpr int kEach = 1000;
    const std::vector<std::pair<int, std::string>> readers_at = {
        {1, "port9"}, {2, "port9"}, {3, "port9"}, {3, "port8"}};
    const std::vector<std::pair<int, std::string>> writers_at = {
        {1, "port0"}, {2, "port0"}, {3, "port0"}, {2, "port1"}};
    const std::size_t total = kEach * writers_at.size();
    std::vector<Fd> readers;
    for (const auto& [host, port] : readers_at) {
        readers.push_back(open_fd(at(host, port), O_RDONLY));
        ASSERT_TRUE(readers.back().ok());
    }
    // The most bytes any daemon has had in flight to another (a row of the
    // node table in stats: node daemon msgs_in bytes_in in_flight ...).
    auto most_in_flight = [&] {
        std::uint64_t most = 0;
        for (int i = 1; i <= kHosts; ++i) {
            std::istringstream lines(slurp(at(i, "stats")));
            bool table = false;
            for (std::string line; std::getline(lines, line);) {
                if (line.starts_with("node ")) {
                    table = true;
                    continue;
                }
                std::istringstream row(line);
                std::uint64_t node = 0, daemon = 0, msgs = 0, bytes = 0, in_flight = 0;
                if (table && row >> node >> daemon >> msgs >> bytes >> in_flight) {
                    most = std::max(most, in_flight);
                }
            }
        }
        return most;
    };
    // A window is 1 MiB, each message counted 128 bytes over its payload;
    // spent when the next message would not fit (docs/cluster.md).
    constexpr std::uint64_t kWindow = 1 << 20;
    constexpr std::uint64_t kCounted = 1012 + 128;
    std::atomic<bool> held_back{false};
    std::vector<std::vector<std::string>> seen(readers.size());
    std::vector<std::thread> threads;
    for (std::size_t r = 0; r < readers.size(); ++r) {
        threads.emplace_back([&, r] {
            bool slow = r == 0 || r == 2;
            // However fast the writers are, each daemon's writers send more
            // than a window (1000 x ~1 KiB), so until a slow reader reads,
            // a window is spent and its writers wait (in poll for POLLOUT,
            // or in write).
            if (slow && eventually([&] { return most_in_flight() + kCounted > kWindow; }, 30s)) {
                held_back = true;
            }
            while (seen[r].size() < total) {
                if (slow) std::this_thread::sleep_for(1ms);
                Io io = read_one(readers[r].get(), 20000);
                if (io.n <= 0) break;
                seen[r].push_back(io.data.substr(0, io.data.find(' ', 2)));
            }
        });
    }
    for (std::size_t k = 0; k < writers_at.size(); ++k) {
        threads.emplace_back([&, k] {
            Fd w = open_fd(at(writers_at[k].first, writers_at[k].second), O_WRONLY);
            std::string pad(1000, '.');
            for (int n = 0; n < kEach; ++n) {
                std::string m = std::to_string(k) + " " + std::to_string(n) + " " + pad;
                // A writer waits for credit as long as the slow readers take.
                Io io = write_msg(w.get(), m, 30000);
                if (io.n != static_cast<ssize_t>(m.size())) {
                    ADD_FAILURE() << "writer " << k << ", message " << n << ": "
                                  << std::strerror(io.err);
                    return;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    for (std::size_t r = 0; r < readers.size(); ++r) {
        ASSERT_EQ(seen[r].size(), total)
            << "reader " << r << " lost messages; stats:\n"
            << slurp(at(1, "stats")) << slurp(at(2, "stats")) << slurp(at(3, "stats"));
        std::map<std::string, int> next;
        for (const std::string& m : seen[r]) {
            std::string who = m.substr(0, m.find(' '));
            ASSERT_EQ(m, who + " " + std::to_string(next[who]++)) << "reader " << r;
        }
        EXPECT_EQ(seen[r], seen[0]) << "readers " << r << " and 0 saw different orders";
    }
    for (int i = 1; i <= kHosts; ++i) {
        std::string stats = slurp(at(i, "stats"));
        EXPECT_TRUE(contains(stats, "cluster_engine ok")) << stats;
    }
    EXPECT_TRUE(held_back) << "the slow readers never held a writer back";
}

// One name, one bus: host 3's `jobs` with other settings is refused, and
// ctl says whose and which.
TEST_F(ClusterTest, ANameTakenWithOtherSettingsIsRefusedWithEexist) {
    for (int i = 1; i <= 2; ++i) {
        ASSERT_EQ(mkdir(at(i).c_str(), 0755), 0);
        ASSERT_EQ(write_file(at(i, "ctl"), "scope cluster\n"), 0);
    }
    ASSERT_EQ(mkdir(at(3).c_str(), 0755), 0);
    EXPECT_EQ(write_file(at(3, "ctl"), "lossless on\nscope cluster\n"), EEXIST);
    std::string why = last_error_line(slurp(at(3, "ctl")));
    EXPECT_TRUE(contains(why, "other settings") && contains(why, "lossless off")) << why;
    EXPECT_FALSE(contains(slurp(at(3, "ctl")), "\nscope cluster\n")) << "it did not join";
    ASSERT_EQ(write_file(at(3, "ctl"), "lossless off\nscope cluster\n"), 0)
        << last_error_line(slurp(at(3, "ctl")));
    EXPECT_FALSE(contains(slurp(at(1, "stats")), "differ")) << slurp(at(1, "stats"));
}

TEST_F(ClusterTest, JoinsLeavesAndRecordsCarryTheNode) {
    make_jobs();
    Fd events = open_fd(at(3, "events"), O_RDONLY);
    ASSERT_TRUE(events.ok());
    {
        Fd w = open_fd(at(1, "port5"), O_WRONLY);
        ASSERT_EQ(member_event(events.get(), 10000), "join 5 node 1\n");
        // A late events reader on host 2 gets the group's ports as its snapshot.
        Fd late = open_fd(at(2, "events"), O_RDONLY);
        EXPECT_EQ(member_event(late.get(), 10000), "join 5 node 1\n");

        Fd framed = open_fd(at(3, "port6"), O_RDONLY);
        int on = 1;
        ASSERT_EQ(ioctl(framed.get(), IPNFS_IOC_SET_FRAMED, &on), 0);
        EXPECT_EQ(member_event(events.get(), 10000), "join 6 node 3\n");
        ASSERT_EQ(write_msg(w.get(), "payload").n, 7);
        Io rec = read_one(framed.get(), 10000);
        ASSERT_GE(rec.n, static_cast<ssize_t>(sizeof(ipnfs_record) + sizeof(ipnfs_node)));
        ipnfs_record hdr{};
        std::memcpy(&hdr, rec.data.data(), sizeof hdr);
        ipnfs_node node{};
        std::memcpy(&node, rec.data.data() + sizeof hdr, sizeof node);
        EXPECT_EQ(hdr.port, 5U);
        EXPECT_EQ(hdr.len, 7U);
        EXPECT_NE(hdr.flags & IPNFS_FLAG_NODE, 0U);
        EXPECT_EQ(node.node, 1U);
        EXPECT_EQ(rec.data.substr(sizeof hdr + sizeof node, 7), "payload");
        EXPECT_EQ(static_cast<std::size_t>(rec.n), IPNFS_RECORD_FULL_SIZE(&hdr));
        // A framed read too small for the header and the node: EINVAL.
        char small[sizeof(ipnfs_record) + 4];
        EXPECT_EQ(read(framed.get(), small, sizeof small), -1);
        EXPECT_EQ(errno, EINVAL);
        // host 1's port 5 closed: after its message, its leave, everywhere.
        w.reset();
        EXPECT_EQ(member_event(events.get(), 10000), "leave 5 node 1\n");
    }
    EXPECT_EQ(member_event(events.get(), 10000), "leave 6 node 3\n");
}

// The group across hosts (docs/cluster.md): a framed unicast names a
// node's port (seq = the node), an anycast reaches exactly one holder of
// the whole cluster, in turn, multicast every host's holders; a port or
// node nobody has is EHOSTUNREACH, as a shell's write reports it.
TEST_F(ClusterTest, GroupUnicastAnycastAndMulticastReachPortsOnOtherHosts) {
    make_jobs("policy group\nmember 2 7\nmember 4 9\n");
    std::array<Fd, kHosts> holders;
    for (int i = 1; i <= kHosts; ++i) {
        holders[i - 1] = open_fd(at(i, "port2"), O_RDONLY);
        ASSERT_TRUE(holders[i - 1].ok());
    }
    Fd nine = open_fd(at(3, "port4"), O_RDONLY);
    Fd sender = open_fd(at(1, "port0"), O_WRONLY);
    ASSERT_TRUE(nine.ok() && sender.ok());
    ASSERT_EQ(set_framed(sender.get(), true), 0);
    // Host 1 addresses what the group's order told it of the others.
    ASSERT_TRUE(eventually(
        [&] {
            std::string stats = slurp(at(1, "stats"));
            return stats.find("remote 2:2 instance 7\n") != std::string::npos &&
                   stats.find("remote 3:2 instance 7\n") != std::string::npos &&
                   stats.find("remote 3:4 instance 9\n") != std::string::npos;
        },
        10s))
        << slurp(at(1, "stats"));
    auto send = [&](std::uint32_t to, std::uint32_t port, std::uint64_t seq,
                    const std::string& payload) {
        return write_msg(
            sender.get(),
            encode({.payload = payload, .flags = IPNFS_FLAGS_TO(to), .port = port, .seq = seq}));
    };
    ASSERT_GT(send(IPNFS_TO_PORT, 2, 3, "to 3:2").n, 0);
    ASSERT_GT(send(IPNFS_TO_PORT, 2, 2, "to 2:2").n, 0);
    EXPECT_EQ(read_one(holders[2].get(), 10000).data, "to 3:2");
    EXPECT_EQ(read_one(holders[1].get(), 10000).data, "to 2:2");
    EXPECT_TRUE(read_one(holders[0].get(), 300).timed_out()) << "a unicast reached another port";
    EXPECT_TRUE(read_one(holders[2].get(), 0).timed_out());

    constexpr int kAnycasts = 30;
    for (int n = 0; n < kAnycasts; ++n) {
        ASSERT_GT(send(IPNFS_TO_ANYCAST, 7, 0, "any " + std::to_string(n)).n, 0);
    }
    std::set<std::string> got;
    for (int i = 1; i <= kHosts; ++i) {
        for (int n = 0; n < kAnycasts / kHosts; ++n) {
            Io io = read_one(holders[i - 1].get(), 10000);
            ASSERT_GT(io.n, 0) << "host " << i << " after " << n;
            EXPECT_TRUE(got.insert(io.data).second) << io.data << " twice";
        }
    }
    EXPECT_EQ(got.size(), std::size_t{kAnycasts});
    for (const Fd& h : holders) EXPECT_TRUE(read_one(h.get(), 300).timed_out()) << "a third";

    ASSERT_GT(send(IPNFS_TO_MULTICAST, 7, 9, "seven to nine").n, 0);
    for (const Fd& h : holders) EXPECT_EQ(read_one(h.get(), 10000).data, "seven to nine");
    EXPECT_EQ(read_one(nine.get(), 10000).data, "seven to nine");

    // Bad input: a node nobody runs, a port nobody reads, an instance
    // nobody holds.  The write fails and nothing is delivered.
    for (auto [to, port, seq] : std::vector<std::array<std::uint64_t, 3>>{
             {IPNFS_TO_PORT, 2, 9}, {IPNFS_TO_PORT, 5, 2}, {IPNFS_TO_ANYCAST, 8, 0}}) {
        Io io = send(static_cast<std::uint32_t>(to), static_cast<std::uint32_t>(port), seq, "x");
        EXPECT_EQ(io.n, -1) << to << " " << port << " " << seq;
        EXPECT_EQ(io.err, EHOSTUNREACH);
    }
    ASSERT_EQ(write_file(at(1, "ctl"), "dest 6 port 9:2\n"), 0);
    Shell refused = root_sh("bash -c 'printf x > " + sq(at(1, "port6")) + "'", 10);
    EXPECT_NE(refused.exit_code(), 0);
    EXPECT_NE(refused.err.find("No route to host"), std::string::npos) << describe(refused);
    for (const Fd& h : holders) EXPECT_TRUE(read_one(h.get(), 300).timed_out());
    EXPECT_NE(slurp(at(1, "stats")).find(" unreachable 4\n"), std::string::npos)
        << slurp(at(1, "stats"));
}

// A plugin that declares cluster scope (the example topic): every host's
// subscribers get every host's messages with their prefix, and nothing else.
TEST_F(ClusterTest, TopicSubscribersOnEveryHostGetEveryHostsMessagesByPrefix) {
    make_jobs("policy topic\n");
    ASSERT_EQ(write_file(at(1, "ctl"), "subscribe 2 *\n"), 0);
    ASSERT_EQ(write_file(at(2, "ctl"), "subscribe 1 sport/\n"), 0);
    ASSERT_EQ(write_file(at(3, "ctl"), "subscribe 1 weather/\n"), 0);
    Fd every = open_fd(at(1, "port2"), O_RDONLY);
    Fd sport = open_fd(at(2, "port1"), O_RDONLY);
    Fd weather = open_fd(at(3, "port1"), O_RDONLY);
    ASSERT_TRUE(every.ok() && sport.ok() && weather.ok());
    const std::map<int, std::string> sent{
        {1, "sport/ 2:1"}, {2, "news/ nothing"}, {3, "weather/ rain"}};
    for (const auto& [host, text] : sent) {
        Shell w = root_sh("printf %s " + sq(text) + " > " + sq(at(host, "port0")), 10);
        ASSERT_EQ(w.exit_code(), 0) << describe(w);
    }
    EXPECT_EQ(read_one(sport.get(), 10000).data, "sport/ 2:1");
    EXPECT_EQ(read_one(weather.get(), 10000).data, "weather/ rain");
    std::set<std::string> all;
    for (std::size_t n = 0; n < sent.size(); ++n) all.insert(read_one(every.get(), 10000).data);
    EXPECT_EQ(all, (std::set<std::string>{"sport/ 2:1", "news/ nothing", "weather/ rain"}));
    EXPECT_TRUE(read_one(sport.get(), 300).timed_out()) << "another prefix reached sport/";
    EXPECT_TRUE(read_one(weather.get(), 0).timed_out()) << "another prefix reached weather/";
    // Each host counts its own deliveries.
    EXPECT_TRUE(eventually(
        [&] {
            return slurp(at(2, "stats")).find("topic matched 1 unmatched 2\n") != std::string::npos;
        },
        10s))
        << slurp(at(2, "stats"));

    // An address is refused at the writer, who hears of it.
    Fd framed = open_fd(at(1, "port0"), O_WRONLY);
    ASSERT_TRUE(framed.ok());
    ASSERT_EQ(set_framed(framed.get(), true), 0);
    Io io = write_msg(framed.get(), encode({.payload = "sport/ to one",
                                            .flags = IPNFS_FLAGS_TO(IPNFS_TO_PORT),
                                            .port = 1,
                                            .seq = 2}));
    EXPECT_EQ(io.n, -1);
    EXPECT_EQ(io.err, EOPNOTSUPP);
    EXPECT_TRUE(read_one(sport.get(), 300).timed_out()) << "a refused message was delivered";

    // So is one written to a cluster hub, which takes no addresses.
    ASSERT_EQ(mkdir(daemon(1).path("lan").c_str(), 0755), 0);
    ASSERT_EQ(write_file(daemon(1).path("lan/ctl"), "scope cluster\n"), 0);
    Fd hub = open_fd(daemon(1).path("lan/port0"), O_WRONLY);
    ASSERT_TRUE(hub.ok());
    ASSERT_EQ(set_framed(hub.get(), true), 0);
    io = write_msg(
        hub.get(),
        encode({.payload = "x", .flags = IPNFS_FLAGS_TO(IPNFS_TO_PORT), .port = 1, .seq = 0}));
    EXPECT_EQ(io.n, -1);
    EXPECT_EQ(io.err, EOPNOTSUPP);
}

// The switch across hosts (docs/cluster.md): every daemon learns from the
// group's order, so a unicast to an address learned on host 3 reaches only
// host 3's port, while broadcast and unknown unicast reach every host's
// ports but the sender's; then TAP interfaces in the three hosts' network
// namespaces, on one L2 segment, ping each other.
TEST_F(ClusterTest, SwitchLearnsAcrossHostsAndTapsOnThreeHostsPingEachOther) {
    make_jobs("policy switch\n");
    Fd a = open_fd(at(1, "port0"), O_RDWR);
    Fd a2 = open_fd(at(1, "port1"), O_RDONLY);
    Fd b = open_fd(at(2, "port0"), O_RDWR);
    Fd c = open_fd(at(3, "port1"), O_RDWR);
    ASSERT_TRUE(a.ok() && a2.ok() && b.ok() && c.ok());
    const Mac ka{0x02, 0, 0, 0, 0, 0x0a};
    const Mac kb{0x02, 0, 0, 0, 0, 0x0b};
    const Mac kc{0x02, 0, 0, 0, 0, 0x0c};
    auto frame = [](const Mac& dst, const Mac& src, const std::string& body) {
        return build_frame(
            {.dst = dst, .src = src, .vid = std::nullopt, .type = kEtherIpv4, .payload = body});
    };

    // B is unknown: every host's ports but the sender's get it.
    std::string unknown = frame(kb, ka, "unknown");
    ASSERT_EQ(write_msg(a.get(), unknown).n, static_cast<ssize_t>(unknown.size()));
    for (int fd : {a2.get(), b.get(), c.get()}) EXPECT_EQ(read_one(fd, 10000).data, unknown);
    // C speaks, a broadcast: everyone but C gets it, and learns C at node 3's port 1.
    std::string hello = frame(kBroadcast, kc, "hello");
    ASSERT_EQ(write_msg(c.get(), hello).n, static_cast<ssize_t>(hello.size()));
    for (int fd : {a.get(), a2.get(), b.get()}) EXPECT_EQ(read_one(fd, 10000).data, hello);
    EXPECT_TRUE(read_one(c.get(), 300).timed_out()) << "C got its own broadcast";
    EXPECT_NE(slurp(at(2, "stats")).find("mac 02:00:00:00:00:0c vlan 1 port 3:1 age"),
              std::string::npos)
        << slurp(at(2, "stats"));
    // Host 2 to C: only host 3's port; C's answer: only host 2's.
    std::string to_c = frame(kc, kb, "to c");
    ASSERT_EQ(write_msg(b.get(), to_c).n, static_cast<ssize_t>(to_c.size()));
    EXPECT_EQ(read_one(c.get(), 10000).data, to_c);
    std::string to_b = frame(kb, kc, "to b");
    ASSERT_EQ(write_msg(c.get(), to_b).n, static_cast<ssize_t>(to_b.size()));
    EXPECT_EQ(read_one(b.get(), 10000).data, to_b);
    EXPECT_TRUE(read_one(a.get(), 300).timed_out()) << "a unicast reached host 1";
    EXPECT_TRUE(read_one(a2.get(), 0).timed_out()) << "a unicast reached host 1";
    EXPECT_TRUE(read_one(b.get(), 0).timed_out());
    EXPECT_TRUE(read_one(c.get(), 0).timed_out());
    // A spanning tree is one host's.
    EXPECT_EQ(write_file(at(1, "ctl"), "stp on\n"), ENOTSUP);

    // TAPs: lan0 on each host, 10.77.0.I/24, one segment through the cluster switch.
    for (int i = 1; i <= kHosts; ++i) {
        ASSERT_EQ(write_file(at(i, "ctl"), "tap lan0 5\n"), 0)
            << "host " << i << ": " << last_error_line(slurp(at(i, "ctl")));
        Shell up = hosts_.sh(
            i, "ip addr add 10.77.0." + std::to_string(i) + "/24 dev lan0 && ip link set lan0 up");
        ASSERT_EQ(up.exit_code(), 0) << describe(up);
    }
    for (int i : {2, 3}) {
        Shell ping = hosts_.sh(1, "ping -c 3 -i 0.2 -W 5 10.77.0." + std::to_string(i), 30);
        EXPECT_EQ(ping.exit_code(), 0) << describe(ping);
    }
    Shell ping = hosts_.sh(3, "ping -c 2 -i 0.2 -W 5 10.77.0.2", 30);
    EXPECT_EQ(ping.exit_code(), 0) << describe(ping);
    // Host 1 knows host 3's TAP at node 3's port 5.
    std::string mac3 = hosts_.sh(3, "cat /sys/class/net/lan0/address").out;
    mac3 = mac3.substr(0, mac3.find('\n'));
    EXPECT_NE(slurp(at(1, "stats")).find("mac " + mac3 + " vlan 1 port 3:5 age"), std::string::npos)
        << mac3 << "\n"
        << slurp(at(1, "stats"));
    // A TCP stream of 4 MiB from host 1 to host 3 arrives intact (a TAP's
    // superframes are cut into frames before the group orders them).
    const std::string server =
        "import socket,hashlib\n"
        "s=socket.socket()\n"
        "s.bind((\"10.77.0.3\",5001))\n"
        "s.listen(1)\n"
        "c,_=s.accept()\n"
        "h=hashlib.sha256()\n"
        "n=0\n"
        "while True:\n"
        " d=c.recv(65536)\n"
        " if not d: break\n"
        " h.update(d)\n"
        " n+=len(d)\n"
        "print(n,h.hexdigest())\n";
    const std::string client =
        "import socket,hashlib,time\n"
        "data=bytes(range(256))*16384\n"
        "for i in range(100):\n"
        " try:\n"
        "  c=socket.create_connection((\"10.77.0.3\",5001),timeout=10)\n"
        "  break\n"
        " except OSError: time.sleep(0.1)\n"
        "c.sendall(data)\n"
        "c.close()\n"
        "print(len(data),hashlib.sha256(data).hexdigest())\n";
    Shell tcp =
        root_sh("out=$(mktemp); nsenter --net=/run/netns/" + hosts_.ns(3) + " python3 -c " +
                    sq(server) + " > \"$out\" & nsenter --net=/run/netns/" + hosts_.ns(1) +
                    " python3 -c " + sq(client) + " && wait && cat \"$out\"; rm -f \"$out\"",
                60);
    ASSERT_EQ(tcp.exit_code(), 0) << describe(tcp);
    std::size_t nl = tcp.out.find('\n');
    ASSERT_NE(nl, std::string::npos) << describe(tcp);
    EXPECT_EQ(tcp.out.substr(0, nl + 1), tcp.out.substr(nl + 1)) << describe(tcp);
    EXPECT_TRUE(tcp.out.starts_with("4194304 ")) << describe(tcp);
}

TEST_F(ClusterTest, AKilledHostsPortsLeaveAfterItsLastMessageAndTheRestGoesOn) {
    make_jobs();
    Fd events = open_fd(at(1, "events"), O_RDONLY);
    Fd reader = open_fd(at(1, "port1"), O_RDONLY);
    Fd w3 = open_fd(at(3, "port0"), O_WRONLY);
    ASSERT_TRUE(events.ok() && reader.ok() && w3.ok());
    // Two daemons publish the two joins: the group may order either first.
    std::set<std::string> opened{member_event(events.get(), 10000),
                                 member_event(events.get(), 10000)};
    ASSERT_EQ(opened, (std::set<std::string>{"join 1 node 1\n", "join 0 node 3\n"}));
    ASSERT_EQ(write_msg(w3.get(), "last words").n, 10);
    EXPECT_EQ(read_one(reader.get(), 10000).data, "last words");
    w3.reset();  // its leave is published: host 3 dies after it
    EXPECT_EQ(member_event(events.get(), 10000), "leave 0 node 3\n");
    Fd w3b = open_fd(at(3, "port2"), O_WRONLY);
    ASSERT_EQ(member_event(events.get(), 10000), "join 2 node 3\n");

    auto t0 = Clock::now();
    // The host dies: its corosync first (the others see a node go down, not
    // a daemon exit), then its daemon.
    ASSERT_EQ(hosts_.kill(3), "");
    w3b.reset();
    daemon(3).kill_daemon();
    killed_ = 3;
    EXPECT_EQ(member_event(events.get(), 15000), "leave 2 node 3\n");
    std::cout << "[ CLUSTER  ] host 3 killed: its port left on host 1 after " << seconds_since(t0)
              << " s\n";
    // Hosts 1 and 2 are still one bus.
    Fd w2 = open_fd(at(2, "port3"), O_WRONLY);
    ASSERT_EQ(member_event(events.get(), 10000), "join 3 node 2\n");
    ASSERT_EQ(write_msg(w2.get(), "still here").n, 10);
    EXPECT_EQ(read_one(reader.get(), 10000).data, "still here");
}

TEST_F(ClusterTest, ACutOffHostLeavesAndComesBackWithJoins) {
    make_jobs();
    Fd events = open_fd(at(1, "events"), O_RDONLY);
    Fd reader = open_fd(at(1, "port1"), O_RDONLY);
    Fd w3 = open_fd(at(3, "port0"), O_WRONLY);
    // Two daemons publish the two joins: the group may order either first.
    std::set<std::string> opened{member_event(events.get(), 10000),
                                 member_event(events.get(), 10000)};
    ASSERT_EQ(opened, (std::set<std::string>{"join 1 node 1\n", "join 0 node 3\n"}));
    auto t0 = Clock::now();
    ASSERT_EQ(hosts_.cut(3), "");
    EXPECT_EQ(member_event(events.get(), 15000), "leave 0 node 3\n");
    std::cout << "[ CLUSTER  ] host 3 cut off: its port left on host 1 after " << seconds_since(t0)
              << " s\n";
    // Host 3 goes on alone: what it sends meanwhile never reaches host 1.
    Fd r3 = open_fd(at(3, "port1"), O_RDONLY);
    ASSERT_EQ(write_msg(w3.get(), "alone").n, 5);
    ASSERT_EQ(read_one(r3.get(), 10000).data, "alone");  // ordered on its side
    t0 = Clock::now();
    ASSERT_EQ(hosts_.heal(3), "");
    // Both of host 3's ports join again, in the order host 3 announces them.
    std::set<std::string> joins{member_event(events.get(), 20000),
                                member_event(events.get(), 10000)};
    EXPECT_EQ(joins, (std::set<std::string>{"join 0 node 3\n", "join 1 node 3\n"}));
    std::cout << "[ CLUSTER  ] host 3 healed: its port joined on host 1 after " << seconds_since(t0)
              << " s\n";
    ASSERT_EQ(write_msg(w3.get(), "back").n, 4);
    EXPECT_EQ(read_one(reader.get(), 10000).data, "back") << "a message from the partition "
                                                             "crossed the merge";
}

// Host i's stats, polled until they have the line `line` (true) or `within`
// passed (false).
bool stats_become(const std::string& stats_path, const std::string& line,
                  std::chrono::seconds within) {
    auto deadline = Clock::now() + within;
    do {
        if (contains(slurp(stats_path), "\n" + line + "\n")) return true;
        std::this_thread::sleep_for(100ms);
    } while (Clock::now() < deadline);
    return false;
}

// `quorum on` (docs/cluster.md): a host cut off from the other two has no
// quorum (votequorum), so its writes fail with ENETDOWN, as a shell says
// "Network is down"; the quorate two go on; once healed, its writes go
// again.
TEST_F(ClusterTest, QuorumOnACutOffHostsWritesFailWithEnetdownUntilItIsBack) {
    make_jobs("lossless on\nquorum on\n");
    EXPECT_TRUE(contains(slurp(at(3, "ctl")), "\nquorum on\nscope cluster\n"))
        << slurp(at(3, "ctl"));
    ASSERT_TRUE(stats_become(at(3, "stats"), "cluster_quorate yes", 10s)) << slurp(at(3, "stats"));
    Fd events = open_fd(at(1, "events"), O_RDONLY);
    Fd r1 = open_fd(at(1, "port1"), O_RDONLY);
    Fd w2 = open_fd(at(2, "port0"), O_WRONLY);
    Fd w3 = open_fd(at(3, "port0"), O_WRONLY);
    ASSERT_TRUE(events.ok() && r1.ok() && w2.ok() && w3.ok());
    std::set<std::string> opened;
    for (int k = 0; k < 3; ++k) opened.insert(member_event(events.get(), 10000));
    ASSERT_EQ(opened,
              (std::set<std::string>{"join 1 node 1\n", "join 0 node 2\n", "join 0 node 3\n"}));
    ASSERT_EQ(write_msg(w3.get(), "quorate").n, 7);
    EXPECT_EQ(read_one(r1.get(), 10000).data, "quorate");

    auto t0 = Clock::now();
    ASSERT_EQ(hosts_.cut(3), "");
    ASSERT_TRUE(stats_become(at(3, "stats"), "cluster_quorate no", 20s)) << slurp(at(3, "stats"));
    std::cout << "[ CLUSTER  ] host 3 cut off: its daemon saw no quorum after " << seconds_since(t0)
              << " s\n";
    Io refused = write_msg(w3.get(), "alone", 10000);
    EXPECT_EQ(refused.n, -1);
    EXPECT_EQ(refused.err, ENETDOWN) << std::strerror(refused.err);
    // bash says strerror(ENETDOWN) (dash only "I/O error").
    Shell echo = root_sh("bash -c \"echo x > " + sq(at(3, "port2")) + "\"", 10);
    EXPECT_NE(echo.exit_code(), 0) << describe(echo);
    EXPECT_TRUE(contains(echo.err, "Network is down")) << describe(echo);
    std::string stats3 = slurp(at(3, "stats"));
    EXPECT_TRUE(contains(stats3, "\ncluster_quorum_refusals 2\n")) << stats3;
    // Hosts 1 and 2 keep quorum and are one bus still.
    EXPECT_TRUE(contains(slurp(at(1, "stats")), "\ncluster_quorate yes\n"));
    EXPECT_EQ(member_event(events.get(), 15000), "leave 0 node 3\n");
    ASSERT_EQ(write_msg(w2.get(), "majority", 10000).n, 8);
    EXPECT_EQ(read_one(r1.get(), 10000).data, "majority");

    t0 = Clock::now();
    ASSERT_EQ(hosts_.heal(3), "");
    ASSERT_TRUE(stats_become(at(3, "stats"), "cluster_quorate yes", 30s)) << slurp(at(3, "stats"));
    std::cout << "[ CLUSTER  ] host 3 healed: its daemon saw quorum again after "
              << seconds_since(t0) << " s\n";
    EXPECT_EQ(member_event(events.get(), 20000), "join 0 node 3\n");
    ASSERT_EQ(write_msg(w3.get(), "back", 10000).n, 4) << "host 3's writes go again";
    EXPECT_EQ(read_one(r1.get(), 10000).data, "back") << "nothing refused was sent";
}

// Without `quorum on`, a side without quorum goes on: the cut-off host's
// writes succeed and reach its own readers (docs/cluster.md).
TEST_F(ClusterTest, WithoutQuorumOnACutOffHostsWritesStillSucceed) {
    make_jobs("lossless on\n");
    Fd r3 = open_fd(at(3, "port1"), O_RDONLY);
    Fd w3 = open_fd(at(3, "port0"), O_WRONLY);
    ASSERT_TRUE(r3.ok() && w3.ok());
    ASSERT_EQ(hosts_.cut(3), "");
    ASSERT_TRUE(stats_become(at(3, "stats"), "cluster_quorate no", 20s)) << slurp(at(3, "stats"));
    Shell echo = root_sh("echo alone > " + sq(at(3, "port0")), 10);
    EXPECT_EQ(echo.exit_code(), 0) << describe(echo);
    EXPECT_EQ(read_one(r3.get(), 10000).data, "alone\n");
    ASSERT_EQ(write_msg(w3.get(), "still", 10000).n, 5);
    EXPECT_EQ(read_one(r3.get(), 10000).data, "still");
    std::string stats3 = slurp(at(3, "stats"));
    EXPECT_TRUE(contains(stats3, "\ncluster_quorum off\n")) << stats3;
    EXPECT_TRUE(contains(stats3, "\ncluster_quorum_refusals 0\n")) << stats3;
    ASSERT_EQ(hosts_.heal(3), "");
}

// Without corosync (the test's own namespace runs none) and for what is not
// built yet, `scope cluster` says why.
class ClusterScopeTest : public IpnfsTest {};

TEST_F(ClusterScopeTest, ScopeClusterSaysWhyItCannot) {
    ASSERT_EQ(mkdir(p("n").c_str(), 0755), 0);
    EXPECT_EQ(write_file(p("n/ctl"), "scope cluster\n"), ECONNREFUSED);
    EXPECT_TRUE(contains(last_error_line(slurp(p("n/ctl"))), "corosync")) << slurp(p("n/ctl"));
    // Lossless is built: only corosync is missing.
    EXPECT_EQ(write_file(p("n/ctl"), "lossless on\nscope cluster\n"), ECONNREFUSED);
    // So are the group and the switch: they fail for the same reason; a
    // switch that runs its spanning tree cannot span hosts.
    EXPECT_EQ(write_file(p("n/ctl"), "lossless off\npolicy group\nscope cluster\n"), ECONNREFUSED);
    EXPECT_EQ(write_file(p("n/ctl"), "policy switch\nscope cluster\n"), ECONNREFUSED);
    EXPECT_EQ(write_file(p("n/ctl"), "stp on\nscope cluster\n"), ENOTSUP);
    EXPECT_TRUE(contains(last_error_line(slurp(p("n/ctl"))), "spanning tree"));
    EXPECT_EQ(write_file(p("n/ctl"), "stp off\n"), 0);
    EXPECT_EQ(write_file(p("n/ctl"), "policy hub\nscope nowhere\n"), EINVAL);
    Fd open = open_fd(p("n/port0"), O_RDONLY);
    EXPECT_EQ(write_file(p("n/ctl"), "scope cluster\n"), EBUSY);
    EXPECT_EQ(write_file(p("n/ctl"), "scope node\n"), 0) << "node is what it is";
}

}  // namespace
}  // namespace ipnfs_it
