// TCP through an external cable, as docs/cables.md sets it up: two lossless
// switch networks of one daemon, a TAP of each in a namespace of its own,
// joined by `dpipe ipnfs-cable A = ipnfs-cable B`, against the same two
// networks joined by ctl `cable`.  iperf3 says what a user would look at:
// the rate and the retransmits; stats says where frames were lost.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

const std::string kCable = IPNFS_CABLE;

struct Tcp {
    double mbit = 0;
    long retransmits = -1;
};

class CableTcpTest : public NetdevTest {
  protected:
    std::vector<std::string> tools() const override {
        return {"ping", "timeout", "iperf3", "dpipe", "python3"};
    }

    // iperf3 -t 3 from ns_a to 10.0.0.2 in ns_b; the server is ended
    // whatever happened.
    Tcp iperf(const NetNs& ns_a, const NetNs& ns_b) {
        Tcp out;
        const std::string pidfile = scratch() + "/iperf3.pid";
        Shell server = ns_b.sh("iperf3 -s -1 -D -B 10.0.0.2 -I " + sq(pidfile) + " && sleep 0.3");
        EXPECT_EQ(server.exit_code(), 0) << describe(server);
        Shell client = ns_a.sh(
            "iperf3 -c 10.0.0.2 -t 3 -J | python3 -c 'import json, sys; "
            "e = json.load(sys.stdin)[\"end\"]; "
            "print(e[\"sum_received\"][\"bits_per_second\"] / 1e6, "
            "e[\"sum_sent\"][\"retransmits\"])'",
            30);
        std::istringstream(client.out) >> out.mbit >> out.retransmits;
        EXPECT_EQ(client.exit_code(), 0) << describe(client);
        if (pid_t pid = 0; std::istringstream(read_whole(pidfile)) >> pid && pid > 0) {
            ::kill(pid, SIGKILL);  // gone already after its one test, unless that failed
        }
        unlink(pidfile.c_str());
        return out;
    }

    // The drops column of the cable's port (the one with 1 reader and 2
    // writers) in NET's stats.
    std::uint64_t cable_port_drops(const std::string& net) {
        for (const auto& [port, row] : net_stats(net).ports) {
            if (row.readers == 1 && row.writers == 2) return row.drops;
        }
        ADD_FAILURE() << "no port of " << net << " has the cable's 1 reader and 2 writers:\n"
                      << net_stats(net).text;
        return 0;
    }
};

TEST_F(CableTcpTest, IperfOverIpnfsCableKeepsUpWithTheInDaemonCableWithoutLosses) {
    const std::string settings = "policy switch\nmtu 1514\nlossless on\n";
    std::string ca = make_net("ca"), cb = make_net("cb");
    ASSERT_EQ(ctl(ca, settings), 0) << last_error_line(ctl_text(ca));
    ASSERT_EQ(ctl(cb, settings), 0) << last_error_line(ctl_text(cb));
    NetNs ns_a, ns_b;
    ASSERT_TRUE(ns_a.ok() && ns_b.ok()) << ns_a.error() << ns_b.error();
    ASSERT_TRUE(tap_into(ca, ifname("a"), ns_a, {"10.0.0.1/24"}, 0));
    ASSERT_TRUE(tap_into(cb, ifname("b"), ns_b, {"10.0.0.2/24"}, 0));

    Tcp external{0, 0}, internal{0, 0};
    std::uint64_t drops = 0;
    for (int run = 0; run < 2; ++run) {
        pid_t dpipe = fork_child([&] {
            setpgid(0, 0);
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            execlp("dpipe", "dpipe", kCable.c_str(), "-q", ca.c_str(), "=", kCable.c_str(), "-q",
                   cb.c_str(), static_cast<char*>(nullptr));
            return 127;
        });
        ASSERT_GT(dpipe, 0);
        setpgid(dpipe, dpipe);
        bool plugged = eventually([&] { return ns_a.ping("10.0.0.2", 1).exit_code() == 0; }, 10s);
        Tcp e = plugged ? iperf(ns_a, ns_b) : Tcp{};
        drops += cable_port_drops(ca) + cable_port_drops(cb);
        ::kill(-dpipe, SIGTERM);
        EXPECT_TRUE(wait_child(dpipe, 5s).has_value()) << "dpipe and its cables did not end";
        ::kill(-dpipe, SIGKILL);
        ASSERT_TRUE(plugged) << "no ping across the external cable";

        ASSERT_EQ(ctl(ca, "cable cb\n"), 0) << last_error_line(ctl_text(ca));
        ASSERT_TRUE(eventually([&] { return ns_a.ping("10.0.0.2", 1).exit_code() == 0; }, 10s));
        Tcp i = iperf(ns_a, ns_b);
        ASSERT_EQ(ctl(ca, "uncable cb\n"), 0) << last_error_line(ctl_text(ca));

        std::cerr << "run " << run << ": ipnfs-cable " << e.mbit << " Mbit/s " << e.retransmits
                  << " retransmits; ctl cable " << i.mbit << " Mbit/s " << i.retransmits << "\n";
        external.mbit += e.mbit;
        external.retransmits += e.retransmits;
        internal.mbit += i.mbit;
    }
    std::cerr << "ipnfs-cable + dpipe: " << external.mbit / 2 << " Mbit/s, " << external.retransmits
              << " retransmits; ctl cable: " << internal.mbit / 2 << " Mbit/s\n";
    // Measured here (2 cores shared with builds): 0.99-2.3x the ctl cable's
    // rate, 0-1357 retransmits in the two runs (under 1.5 % of the
    // segments: the sending TAP's kernel queue drops a few while the
    // lossless network holds the TAP back), no drop at the cables' ports.
    // Reading and writing one frame per FUSE call (before) made it
    // 0.44-0.49x.  Since TAPs carry vnet headers the ctl cable got faster
    // (superframes are cut once, in the daemon) and the ratio fell to
    // 0.61x (400 against 651 Mbit/s); the bound stays well above the old
    // cable's and below noise.  On FUSE over io_uring ipnfs-cable's framed
    // batches are slower (docs/benchmark.md: framed 0.57x of /dev/fuse):
    // 0.43-0.47x alone on an idle machine, with the transport before and
    // after the ring's free-entry margin alike, and 0.38x beside another test
    // in CI's ring stage; there the bound is 0.3x (the ring's speed is the
    // benchmark's to judge).
    const double bound = transport_is_uring() ? 0.3 : 0.4;
    EXPECT_GE(external.mbit, bound * internal.mbit)
        << "ipnfs-cable: " << external.mbit / 2 << " Mbit/s, ctl cable: " << internal.mbit / 2;
    const double segments = external.mbit * 1e6 * 3 / 8 / 1448;  // both runs, MSS-sized
    EXPECT_LT(static_cast<double>(external.retransmits), 0.05 * segments)
        << external.retransmits << " retransmits of about " << segments << " segments";
    EXPECT_LT(drops, 50u) << "frames lost at the cables' ports";
}

}  // namespace
}  // namespace ipnfs_it
