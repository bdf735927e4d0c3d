// GRAB with the kernel's offloads left on: two namespaces, each behind a
// veth pair whose root-side end is grabbed into one switch network, talk
// TCP and UDP with iperf3.  veth's defaults leave checksums partial and
// hand TCP over as 64 KiB TSO superframes; the grab completes and cuts
// them, so the far kernel finds no checksum error and no frame too long,
// with no ethtool anywhere.
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

constexpr const char* kAddrA = "10.0.19.1";
constexpr const char* kAddrB = "10.0.19.2";
constexpr const char* kAddr6A = "fd00:19::1";
constexpr const char* kAddr6B = "fd00:19::2";

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

// The packets the kernel counted received on a root-namespace interface.
std::uint64_t rx_packets(const std::string& iface) {
    Shell sh = root_sh("cat /sys/class/net/" + iface + "/statistics/rx_packets", 10);
    return sh.exit_code() == 0 && !sh.out.empty() ? std::stoull(sh.out) : 0;
}

// iperf3's server in `ns`, once, listening when this returns 0.
int start_server(const NetNs& ns) {
    return ns
        .sh("iperf3 -s -1 -D && for i in $(seq 50); do ss -Hltn 'sport = :5201' | grep -q . && "
            "exit 0; "
            "sleep 0.1; done; exit 1",
            10)
        .exit_code();
}

// iperf3's client in `ns` to `server` with `args`; `fields` picks numbers
// out of its JSON report ("error" when it failed), printed one per line.
Shell run_client(const NetNs& ns, const std::string& server, const std::string& args,
                 const std::string& fields) {
    return ns.sh("iperf3 -c " + server + " --connect-timeout 3000 -J " + args +
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
    // as the kernel sets them.  With `ipv6`, the far ends have IPv6
    // addresses too.
    void connect(Side& a, Side& b, bool ipv6 = false) {
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
            if (!ipv6) continue;
            const std::string addr6 = side == &a ? kAddr6A : kAddr6B;
            Shell v6 = side->ns.sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf." +
                                       side->veth.b() + ".disable_ipv6=0 && ip addr add " + addr6 +
                                       "/64 dev " + sq(side->veth.b()) + " nodad",
                                   10);
            ASSERT_EQ(v6.exit_code(), 0) << describe(v6);
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
    Shell run = run_client(a.ns, kAddrB, "-t 3",
                           "print(int(e[\"sum_received\"][\"bits_per_second\"]))\n"
                           "print(e[\"sum_sent\"][\"retransmits\"])");
    NetStats st = net_stats(net_);
    ASSERT_EQ(run.exit_code(), 0) << describe(run) << "\n" << st.text;
    std::vector<std::string> got = lines_of(run.out);
    ASSERT_EQ(got.size(), 2U) << run.out;
    const double mbits = std::stod(got[0]) / 1e6;
    std::cout << "[ MEASURED ] TCP through two grabbed veths: " << mbits << " Mbit/s, " << got[1]
              << " retransmits\n";
    // Far below what it does (some 250 Mbit/s with two busy cores, more on
    // an idle machine): only a broken path falls under it.
    EXPECT_GT(mbits, 50.0) << st.text;
    // The kernel counted superframes, the network the frames they became
    // (some 10 times as many here; at least 1.5 even when the sender, slowed
    // down, makes them small).
    const std::uint64_t kernel_rx = rx_packets(a.veth.a());
    auto row = st.ifaces.find(a.veth.a());
    ASSERT_NE(row, st.ifaces.end()) << st.text;
    EXPECT_GT(2 * row->second.frames_in, 3 * kernel_rx)
        << "no TSO superframes came to be cut: the kernel received " << kernel_rx << " packets on "
        << a.veth.a() << "\n"
        << st.text;
    EXPECT_EQ(csum_errors(a.ns), 0) << "checksum errors in the sender's namespace";
    EXPECT_EQ(csum_errors(b.ns), 0) << "checksum errors in the receiver's namespace";
}

TEST_F(GrabOffloadTest, TcpOverIpv6CrossesGrabbedVethsWithDefaultOffloads) {
    Side a("A");
    Side b("B");
    connect(a, b, true);
    if (HasFatalFailure()) return;
    Shell run =
        run_client(a.ns, kAddr6B, "-6 -t 3", R"(print(int(e["sum_received"]["bits_per_second"])))");
    NetStats st = net_stats(net_);
    ASSERT_EQ(run.exit_code(), 0) << describe(run) << "\n" << st.text;
    const double mbits = std::stod(run.out) / 1e6;
    std::cout << "[ MEASURED ] TCP over IPv6 through two grabbed veths: " << mbits << " Mbit/s\n";
    EXPECT_GT(mbits, 50.0) << st.text;
    EXPECT_EQ(csum_errors(b.ns), 0) << "checksum errors in the receiver's namespace";
}

TEST_F(GrabOffloadTest, UdpCrossesGrabbedVethsWithDefaultOffloads) {
    Side a("A");
    Side b("B");
    connect(a, b);
    if (HasFatalFailure()) return;
    // -w: the receiving iperf3's own socket buffer, which overflows before
    // anything else when frames come in bursts.
    Shell run = run_client(a.ns, kAddrB, "-u -b 200M -w 2M -t 3",
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
