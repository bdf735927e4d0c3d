// GRAB with the kernel's offloads left on: two namespaces, each behind a
// veth pair whose root-side end is grabbed into one switch network, talk
// TCP and UDP with iperf3.  veth's defaults leave checksums partial and
// hand TCP over as 64 KiB TSO superframes; the grab completes and cuts
// them, so the far kernel finds no checksum error and no frame too long,
// with no ethtool anywhere.
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

constexpr const char* kAddrA = "10.0.19.1";
constexpr const char* kAddrB = "10.0.19.2";

// What the far end of a grabbed veth in `ns` needs.
struct Side {
    VethPair veth;
    NetNs ns;
    explicit Side(const std::string& tag) : veth(ifname("g" + tag), ifname("h" + tag)) {}
};

// The kernel's TCP and UDP checksum errors in the namespace (/proc/net/snmp's
// InCsumErrors), or -1 when they cannot be read.
long csum_errors(const NetNs& ns) {
    Shell sh = ns.sh(
        "python3 -c '\n"
        "rows = open(\"/proc/net/snmp\").read().split(\"\\n\")\n"
        "n = 0\n"
        "for keys, vals in zip(rows[0::2], rows[1::2]):\n"
        "    k, v = keys.split(), vals.split()\n"
        "    if k and k[0] in (\"Tcp:\", \"Udp:\"): n += int(v[k.index(\"InCsumErrors\")])\n"
        "print(n)'",
        10);
    return sh.exit_code() == 0 && !sh.out.empty() ? std::stol(sh.out) : -1;
}

// iperf3's server in `ns`, once, listening when this returns 0.
int start_server(const NetNs& ns) {
    return ns
        .sh("iperf3 -s -1 -D -B " + std::string(kAddrB) +
                " && for i in $(seq 50); do ss -Hltn 'sport = :5201' | grep -q . && exit 0; "
                "sleep 0.1; done; exit 1",
            10)
        .exit_code();
}

// iperf3's client in `ns` with `args`; `fields` picks numbers out of its
// JSON report ("error" when it failed), printed one per line.
Shell run_client(const NetNs& ns, const std::string& args, const std::string& fields) {
    return ns.sh("iperf3 -c " + std::string(kAddrB) + " --connect-timeout 3000 -J " + args +
                     " | python3 -c 'import json, sys\n"
                     "d = json.load(sys.stdin)\n"
                     "if \"error\" in d: sys.exit(\"iperf3: \" + d[\"error\"])\n"
                     "e = d[\"end\"]\n" +
                     fields + "'",
                 25);
}

class GrabOffloadTest : public NetdevTest {
  protected:
    [[nodiscard]] std::vector<std::string> tools() const override {
        return {"ping", "timeout", "iperf3", "python3", "ss"};
    }

    // A switch network with each side's root-side veth end grabbed into it
    // and the far end in the side's namespace with its address: offloads
    // as the kernel sets them.
    void connect(Side& a, Side& b) {
        net_ = make_net("lan");
        ASSERT_EQ(ctl(net_, "policy switch\n"), 0) << last_error_line(ctl_text(net_));
        for (auto [side, addr] : {std::pair{&a, kAddrA}, std::pair{&b, kAddrB}}) {
            ASSERT_TRUE(side->veth.ok() && side->ns.ok()) << side->veth.error() << side->ns.error();
            const std::string& root_end = side->veth.a();
            Shell up =
                root_sh("sysctl -qw net.ipv6.conf." + root_end +
                        ".disable_ipv6=1 2>/dev/null; ip link set dev " + sq(root_end) + " up");
            ASSERT_EQ(up.exit_code(), 0) << describe(up);
            ASSERT_EQ(grab(net_, root_end), 0) << last_error_line(ctl_text(net_));
            Shell moved = side->ns.adopt(side->veth.b());
            ASSERT_EQ(moved.exit_code(), 0) << describe(moved);
            Shell conf = side->ns.configure(side->veth.b(), {std::string(addr) + "/24"});
            ASSERT_EQ(conf.exit_code(), 0) << describe(conf);
        }
        // ICMP's checksum is never left to offload: this works either way.
        Shell ping = a.ns.ping(kAddrB);
        ASSERT_EQ(ping.exit_code(), 0) << describe(ping);
        ASSERT_EQ(start_server(b.ns), 0) << "iperf3 -s in the second namespace";
    }

    std::string net_;
};

TEST_F(GrabOffloadTest, TcpCrossesGrabbedVethsWithDefaultOffloads) {
    Side a("A");
    Side b("B");
    connect(a, b);
    if (HasFatalFailure()) return;
    Shell run = run_client(a.ns, "-t 3",
                           "print(int(e[\"sum_received\"][\"bits_per_second\"]))\n"
                           "print(e[\"sum_sent\"][\"retransmits\"])");
    NetStats st = net_stats(net_);
    ASSERT_EQ(run.exit_code(), 0) << describe(run) << "\n" << st.text;
    std::vector<std::string> got = lines_of(run.out);
    ASSERT_EQ(got.size(), 2U) << run.out;
    const double mbits = std::stod(got[0]) / 1e6;
    std::cout << "[ MEASURED ] TCP through two grabbed veths: " << mbits << " Mbit/s, " << got[1]
              << " retransmits\n";
    // Far below what it does (Gbit/s): only a broken path falls under it.
    EXPECT_GT(mbits, 50.0) << st.text;
    EXPECT_EQ(csum_errors(a.ns), 0) << "checksum errors in the sender's namespace";
    EXPECT_EQ(csum_errors(b.ns), 0) << "checksum errors in the receiver's namespace";
}

TEST_F(GrabOffloadTest, UdpCrossesGrabbedVethsWithDefaultOffloads) {
    Side a("A");
    Side b("B");
    connect(a, b);
    if (HasFatalFailure()) return;
    // -w: the receiving iperf3's own socket buffer, which overflows before
    // anything else when frames come in bursts.
    Shell run = run_client(a.ns, "-u -b 200M -w 2M -t 3",
                           "s = e[\"sum\"]\n"
                           "print(s[\"packets\"])\n"
                           "print(s[\"lost_packets\"])\n"
                           "print(s[\"lost_percent\"])");
    NetStats st = net_stats(net_);
    ASSERT_EQ(run.exit_code(), 0) << describe(run) << "\n" << st.text;
    std::vector<std::string> got = lines_of(run.out);
    ASSERT_EQ(got.size(), 3U) << run.out;
    const double lost = std::stod(got[2]);
    std::cout << "[ MEASURED ] UDP at 200 Mbit/s through two grabbed veths: " << got[0]
              << " datagrams, " << got[1] << " lost (" << lost << " %)\n";
    EXPECT_GT(std::stol(got[0]), 10000) << "200 Mbit/s for 3 s is some 50,000 datagrams";
    // Unfinished checksums lose them all.  Some are lost in the grab
    // socket's receive buffer when the daemon gets no CPU for a few ms (a
    // loaded CI machine): stats counts those apart; a loss that large is
    // not this test's business.
    EXPECT_LT(lost, 50.0) << st.text;
    EXPECT_EQ(csum_errors(b.ns), 0) << "checksum errors in the receiver's namespace";
}

}  // namespace
}  // namespace ipnfs_it
