// Spanning tree as a network engineer checks it: rings of ipnfs switch
// networks and Linux bridges (the kernel's own 802.1D) converge with one
// blocked port and pass ping, and pulling a link re-converges within the
// protocol's timers (the time to a restored ping is printed).  Short timers
// on both sides: hello 1 s, max age 6 s, forward delay 2 s.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include <chrono>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

using Clock = std::chrono::steady_clock;

const std::string kCable = IPNFS_CABLE;
const std::string kDpipe = "/usr/bin/dpipe";

// The ipnfs side's short timers, the same as the Linux bridges'.
const std::string kStpOn = "stp hello 1\nstp maxage 6\nstp forward-delay 2\nstp on";
// `ip link add br0 type ...` for a Linux bridge with the same timers.
const std::string kLinuxBridge =
    "type bridge stp_state 1 forward_delay 200 hello_time 100 max_age 600";

// Port states of the ipnfs side ("stport P role R state S ...") and of a
// Linux bridge (/sys/class/net/BR/brif/*/state: 1 listening, 2 learning,
// 3 forwarding, 4 blocking), as one list of "where state" words.
std::vector<std::string> ipnfs_states(const std::string& stats) {
    std::vector<std::string> out;
    for (const std::string& line : lines_of(stats)) {
        std::istringstream in(line);
        std::string word, port, role, state;
        in >> word;
        if (word != "stport") continue;
        in >> port >> word >> role >> word >> state;
        out.push_back(state);
    }
    return out;
}

std::vector<std::string> linux_states(const NetNs& ns) {
    static const std::map<std::string, std::string> kNames{{"0", "disabled"},
                                                           {"1", "listening"},
                                                           {"2", "learning"},
                                                           {"3", "forwarding"},
                                                           {"4", "blocking"}};
    Shell sh = ns.sh("cat /sys/class/net/br0/brif/*/state", 5);
    std::vector<std::string> out;
    for (const std::string& n : lines_of(sh.out)) {
        auto it = kNames.find(n);
        out.push_back(it != kNames.end() ? it->second : n);
    }
    return out;
}

// Settled: no port listening or learning, and exactly one blocking.
bool one_blocked(const std::vector<std::string>& states) {
    int blocking = 0;
    for (const std::string& s : states) {
        if (s == "listening" || s == "learning") return false;
        blocking += s == "blocking" ? 1 : 0;
    }
    return blocking == 1;
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += s + " ";
    return out;
}

// `dpipe ipnfs-cable A = ipnfs-cable B` in a process group of its own,
// killed with its cables when it goes.
class Dpipe {
  public:
    Dpipe(const std::string& a, const std::string& b, const std::string& err_file) {
        pid_ = fork_child([&] {
            setpgid(0, 0);
            int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (err >= 0) dup2(err, 2);
            execl(kDpipe.c_str(), kDpipe.c_str(), kCable.c_str(), a.c_str(), "=", kCable.c_str(),
                  b.c_str(), static_cast<char*>(nullptr));
            return 127;
        });
        if (pid_ > 0) setpgid(pid_, pid_);
    }
    ~Dpipe() {
        if (pid_ <= 0) return;
        ::kill(-pid_, SIGKILL);
        wait_child(pid_, 5s);
    }
    Dpipe(const Dpipe&) = delete;
    Dpipe& operator=(const Dpipe&) = delete;

  private:
    pid_t pid_ = -1;
};

class StpTest : public NetdevTest {
  protected:
    std::vector<std::string> tools() const override { return {"ping", "timeout"}; }

    // Seconds until one ping from `from` to `to` gets through, trying every
    // 0.2 s for at most `limit`; negative if none did.
    static double seconds_to_ping(const NetNs& from, const std::string& to,
                                  std::chrono::seconds limit) {
        Clock::time_point start = Clock::now();
        while (Clock::now() - start < limit) {
            Shell sh = from.sh("ping -c 1 -W 1 " + to + " >/dev/null", 5);
            if (sh.exit_code() == 0) {
                return std::chrono::duration<double>(Clock::now() - start).count();
            }
            usleep(200'000);
        }
        return -1;
    }

    // A switch network with spanning tree on, short timers.
    std::string stp_net(const std::string& name, const std::string& extra = "") {
        std::string net = make_net(name);
        EXPECT_EQ(ctl(net, "policy switch"), 0);
        EXPECT_EQ(ctl(net, extra + kStpOn), 0) << last_error_line(ctl_text(net));
        return net;
    }

    std::vector<std::string> all_states(const std::vector<std::string>& nets) {
        std::vector<std::string> out;
        for (const std::string& n : nets) {
            for (const std::string& s : ipnfs_states(slurp(n + "/stats"))) out.push_back(s);
        }
        return out;
    }

    // A ring of three ipnfs networks, a-b and b-c by `ctl cable`, c-a by
    // `ctl cable` or, with `external`, by ipnfs-cable over dpipe; a host on
    // a TAP in a and in c.  It converges with one blocked port, passes
    // ping, and re-converges when the a-c cable is pulled.
    void linux_ring(bool grabbed);

    void ring_of_three(bool external) {
        std::string a = stp_net("a", "stp priority 4096\n");  // the root
        std::string b = stp_net("b");
        std::string c = stp_net("c");
        ASSERT_EQ(ctl(a, "cable b"), 0) << last_error_line(ctl_text(a));
        ASSERT_EQ(ctl(b, "cable c"), 0) << last_error_line(ctl_text(b));
        std::unique_ptr<Dpipe> dpipe;
        if (external) {
            dpipe = std::make_unique<Dpipe>(c, a, scratch() + "/dpipe.err");
        } else {
            ASSERT_EQ(ctl(c, "cable a"), 0) << last_error_line(ctl_text(c));
        }
        NetNs ha;
        NetNs hc;
        ASSERT_TRUE(ha.ok() && hc.ok()) << ha.error() << hc.error();
        ASSERT_TRUE(tap_into(a, ifname("ta"), ha, {"10.94.1.1/24"}));
        ASSERT_TRUE(tap_into(c, ifname("tc"), hc, {"10.94.1.3/24"}));

        const std::vector<std::string> nets{a, b, c};
        bool settled = eventually([&] { return one_blocked(all_states(nets)); }, 20s);
        ASSERT_TRUE(settled) << joined(all_states(nets)) << "\n"
                             << slurp(a + "/stats") << slurp(b + "/stats") << slurp(c + "/stats");
        double first = seconds_to_ping(ha, "10.94.1.3", 10s);
        EXPECT_GE(first, 0) << slurp(a + "/stats") << slurp(c + "/stats");
        Shell ping = ha.ping("10.94.1.3", 5, 0.2);
        EXPECT_EQ(ping.exit_code(), 0) << describe(ping);

        // Pull the a-c link: the path goes round through b.
        Clock::time_point pulled = Clock::now();
        if (external) {
            dpipe.reset();
        } else {
            ASSERT_EQ(ctl(c, "uncable a"), 0) << last_error_line(ctl_text(c));
        }
        double back = seconds_to_ping(ha, "10.94.1.3", 25s);
        double total = std::chrono::duration<double>(Clock::now() - pulled).count();
        std::cout << "[ STP      ] ring of three (" << (external ? "ipnfs-cable" : "ctl cable")
                  << "): ping back " << back << " s after the link was pulled\n";
        RecordProperty("reconverge_seconds", std::to_string(back));
        EXPECT_GE(back, 0) << "no ping within " << total << " s\n"
                           << slurp(a + "/stats") << slurp(b + "/stats") << slurp(c + "/stats");
        // No more than max age + 2 x forward delay, and slack.
        EXPECT_LT(back, 6 + 2 * 2 + 5);
        EXPECT_FALSE(one_blocked(all_states(nets))) << joined(all_states(nets));
    }
};

// A ring of an ipnfs switch and two Linux bridges: br0 in namespace 1 (the
// root: priority 4096) and br0 in namespace 2 joined by a veth, and the ipnfs
// network with a TAP in each bridge.
// `grabbed`: the ipnfs side grabs one end of a veth pair per bridge instead
// of making TAPs, so BPDUs cross AF_PACKET too.
void StpTest::linux_ring(bool grabbed) {
    std::string net = stp_net("ring");
    NetNs n1;
    NetNs n2;
    ASSERT_TRUE(n1.ok() && n2.ok()) << n1.error() << n2.error();
    VethPair veth(ifname("v1"), ifname("v2"));
    ASSERT_TRUE(veth.ok()) << veth.error();
    ASSERT_EQ(n1.adopt(veth.a()).exit_code(), 0);
    ASSERT_EQ(n2.adopt(veth.b()).exit_code(), 0);
    // Fixed bridge MACs: a Linux bridge otherwise takes its lowest port's,
    // which changes when the veth goes, and the far side's ARP entry is
    // then stale.
    Shell b1 =
        n1.sh("ip link add br0 " + kLinuxBridge + " priority 4096" +
              " && ip link set br0 address 02:00:00:00:94:01 up" +
              " && ip addr add 10.94.2.1/24 dev br0 && ip link set " + veth.a() + " master br0 up");
    ASSERT_EQ(b1.exit_code(), 0) << describe(b1);
    Shell b2 = n2.sh(
        "ip link add br0 " + kLinuxBridge + " && ip link set br0 address 02:00:00:00:94:02 up" +
        " && ip addr add 10.94.2.2/24 dev br0 && ip link set " + veth.b() + " master br0 up");
    ASSERT_EQ(b2.exit_code(), 0) << describe(b2);
    // The ipnfs side's link into each bridge: t1 and t2 end in br0.
    std::unique_ptr<VethPair> g1;
    std::unique_ptr<VethPair> g2;
    if (grabbed) {
        g1 = std::make_unique<VethPair>(ifname("g1"), ifname("t1"));
        g2 = std::make_unique<VethPair>(ifname("g2"), ifname("t2"));
        ASSERT_TRUE(g1->ok() && g2->ok()) << g1->error() << g2->error();
        ASSERT_EQ(n1.adopt(g1->b()).exit_code(), 0);
        ASSERT_EQ(n2.adopt(g2->b()).exit_code(), 0);
        Shell up = root_sh("ip link set " + g1->a() + " up && ip link set " + g2->a() + " up");
        ASSERT_EQ(up.exit_code(), 0) << describe(up);
        ASSERT_EQ(grab(net, g1->a()), 0) << last_error_line(ctl_text(net));
        ASSERT_EQ(grab(net, g2->a()), 0) << last_error_line(ctl_text(net));
    } else {
        ASSERT_TRUE(tap_into(net, ifname("t1"), n1, {}));
        ASSERT_TRUE(tap_into(net, ifname("t2"), n2, {}));
    }
    Shell m1 = n1.sh("ip link set " + ifname("t1") + " master br0 up");
    Shell m2 = n2.sh("ip link set " + ifname("t2") + " master br0 up");
    ASSERT_EQ(m1.exit_code(), 0) << describe(m1);
    ASSERT_EQ(m2.exit_code(), 0) << describe(m2);

    auto states = [&] {
        std::vector<std::string> all = ipnfs_states(slurp(net + "/stats"));
        for (const NetNs* ns : {&n1, &n2}) {
            for (const std::string& s : linux_states(*ns)) all.push_back(s);
        }
        return all;
    };
    bool settled = eventually([&] { return one_blocked(states()) && states().size() == 6; }, 25s);
    ASSERT_TRUE(settled) << joined(states()) << "\n" << slurp(net + "/stats");
    // The Linux bridges took the ipnfs switch's BPDUs for a bridge's: both
    // agree on the root, and ipnfs's port on bridge 2's segment is the one
    // that blocks (bridge 2 is nearer the root through the veth).
    std::string stats = slurp(net + "/stats");
    Shell root1 = n1.sh("ip -d link show br0 | grep -o 'root_id [^ ]*'", 5);
    Shell root2 = n2.sh("ip -d link show br0 | grep -o 'root_id [^ ]*'", 5);
    EXPECT_EQ(root1.out, root2.out);
    EXPECT_NE(stats.find("root_id 1000."), std::string::npos) << stats;
    EXPECT_NE(stats.find("role blocked state blocking"), std::string::npos) << stats;
    Shell ping = n1.ping("10.94.2.2", 3, 0.2);
    EXPECT_EQ(ping.exit_code(), 0) << describe(ping);

    // Pull the veth: bridge 2 is reached only through ipnfs now, whose
    // blocked port must first let the root's information age out.
    Shell cut = n1.sh("ip link del " + veth.a());
    ASSERT_EQ(cut.exit_code(), 0) << describe(cut);
    double back = seconds_to_ping(n1, "10.94.2.2", 30s);
    std::cout << "[ STP      ] ring with Linux bridges (" << (grabbed ? "grab" : "tap")
              << "): ping back " << back << " s after the veth was deleted\n";
    RecordProperty("reconverge_seconds", std::to_string(back));
    EXPECT_GE(back, 0) << slurp(net + "/stats") << joined(states()) << "\n"
                       << n1.sh("ip neigh; bridge fdb show br br0; ip -d link show br0", 5).out
                       << n2.sh("ip neigh; bridge fdb show br br0; ip -d link show br0", 5).out;
    EXPECT_LT(back, 6 + 2 * 2 + 5);  // max age + 2 x forward delay, and slack
    EXPECT_EQ(slurp(net + "/stats").find("state blocking"), std::string::npos)
        << slurp(net + "/stats");
}

TEST_F(StpTest, ARingWithTwoLinuxBridgesBlocksOnePortAndReconverges) {
    linux_ring(false);
}

TEST_F(StpTest, ARingWithTwoLinuxBridgesThroughGrabbedVethsConverges) {
    linux_ring(true);
}

TEST_F(StpTest, ARingOfThreeNetworksJoinedByCtlCableConverges) {
    ring_of_three(false);
}

TEST_F(StpTest, ARingWithAnIpnfsCableConverges) {
    if (access(kDpipe.c_str(), X_OK) != 0) {
        IPNFS_SKIP_OR_FAIL(kDpipe + " is missing (tools/deps.sh installs vde2)");
    }
    ring_of_three(true);
}

}  // namespace
}  // namespace ipnfs_it
