// Kernel-side drops in stats: frames the kernel lost before the daemon read
// them show next to the network's own counters, so that `stats` explains
// every frame an interface received.  A grabbed veth with a deliberately
// small receive buffer under an iperf3 UDP flood: what the kernel received
// on it (ip -s link) is the grab's frames_in plus its sock_drops.  A TAP on
// a lossless network whose one reader stopped reading: the frames its queue
// dropped are if_tx_dropped, as `ip -s link` counts them.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

class NetdevKernelDropsTest : public NetdevTest {
  protected:
    std::vector<std::string> tools() const override {
        return {"ping", "timeout", "python3", "iperf3"};
    }
};

// Turns transmit checksum offload off on IFACE (the ETHTOOL_STXCSUM ioctl,
// as `ethtool -K IFACE tx off` does, which also turns TSO off), so each
// frame the kernel counts on the grabbed veth is one wire frame: with
// superframes the grab cuts one counted packet into many frames_in and the
// sum would not be exact.
constexpr const char* kTxCsumOff = R"(import ctypes, fcntl, socket, struct, sys
value = ctypes.create_string_buffer(struct.pack("II", 0x17, 0))
ifr = struct.pack("16sP", sys.argv[1].encode(), ctypes.addressof(value)) + bytes(16)
fcntl.ioctl(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), 0x8946, ifr)
)";

TEST_F(NetdevKernelDropsTest, AGrabsFramesInPlusSocketDropsAreWhatTheKernelReceived) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));
    VethPair to_client(ifname("kC"), ifname("kc"));
    VethPair to_server(ifname("kS"), ifname("ks"));
    ASSERT_TRUE(to_client.ok() && to_server.ok()) << to_client.error() << to_server.error();
    NetNs client, server;
    ASSERT_TRUE(client.ok() && server.ok()) << client.error() << server.error();
    const std::string grabbed = to_client.a();
    for (const std::string& end : {to_client.a(), to_server.a()}) {
        Shell up = root_sh("sysctl -qw net.ipv6.conf." + end + ".disable_ipv6=1; ip link set dev " +
                           sq(end) + " up");
        ASSERT_EQ(up.exit_code(), 0) << describe(up);
    }
    // The receive buffer the kernel's minimum allows: a flood overruns it.
    ASSERT_EQ(ctl(net, "grab " + grabbed + " 0 rcvbuf 4096\n"), 0)
        << last_error_line(ctl_text(net));
    EXPECT_NE(ctl_text(net).find("grab " + grabbed + " 0 rcvbuf 4096\n"), std::string::npos)
        << ctl_text(net);
    ASSERT_EQ(grab(net, to_server.a(), 1), 0) << last_error_line(ctl_text(net));
    for (auto [ns, end, addr] : {std::tuple{&client, to_client.b(), "10.0.7.1/24"},
                                 std::tuple{&server, to_server.b(), "10.0.7.2/24"}}) {
        ASSERT_EQ(ns->adopt(end).exit_code(), 0);
        Shell conf = ns->configure(end, {addr});
        ASSERT_EQ(conf.exit_code(), 0) << describe(conf);
        Shell off = ns->sh("python3 -c " + sq(kTxCsumOff) + " " + sq(end));
        ASSERT_EQ(off.exit_code(), 0) << describe(off);
    }
    Shell ping = client.ping("10.0.7.2");
    ASSERT_EQ(ping.exit_code(), 0) << describe(ping);

    auto kernel_received = [&] {
        LinkCounts c = link_counts(root_sh("ip -s link show dev " + sq(grabbed)).out, "RX");
        EXPECT_TRUE(c.ok);
        return c.packets;
    };
    auto grab_count = [&](const std::string& text, const std::string& title) {
        return iface_number(text, grabbed, title);
    };
    std::uint64_t kernel_before = kernel_received();
    std::string before = slurp(net + "/stats");

    Shell flood =
        server.sh("iperf3 -s -1 >/dev/null 2>&1 & sleep 0.5; " + client.exec() +
                      "iperf3 -c 10.0.7.2 -u -b 1G -l 1400 -t 2 --connect-timeout 5000; wait",
                  40);
    ASSERT_EQ(flood.exit_code(), 0) << describe(flood);
    // Quiet again: nothing is on its way between the kernel's count and ours.
    usleep(500 * 1000);
    std::uint64_t kernel = kernel_received() - kernel_before;
    std::string after = slurp(net + "/stats");
    std::uint64_t frames_in = grab_count(after, "frames_in") - grab_count(before, "frames_in");
    std::uint64_t sock_drops = grab_count(after, "sock_drops") - grab_count(before, "sock_drops");
    std::uint64_t too_long = grab_count(after, "drops") - grab_count(before, "drops");

    EXPECT_GT(kernel, 10000u) << "the flood did not reach " << grabbed << ":\n" << flood.out;
    EXPECT_GT(sock_drops, 0u) << "a 4096-byte buffer kept up with a 1 Gbit/s flood?\n" << after;
    EXPECT_EQ(kernel, frames_in + sock_drops + too_long)
        << "the kernel received " << kernel << " frames on " << grabbed << "; stats explains "
        << frames_in << " taken + " << sock_drops << " dropped at the socket + " << too_long
        << " dropped by the daemon:\n"
        << after;
    for (const char* title : {"if_rx_dropped", "if_rx_missed", "if_tx_dropped"}) {
        EXPECT_EQ(grab_count(after, title), 0u) << title << "\n" << after;
    }
}

// Sends N small UDP datagrams to ADDR (port 9): the TAP's kernel side queues
// them for the daemon.
constexpr const char* kUdpBurst = R"(import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    s.sendto(b"x" * 100, (sys.argv[1], 9))
)";

TEST_F(NetdevKernelDropsTest, FramesATapsQueueDroppedShowAsIfTxDropped) {
    std::string net = make_net("lossless");
    ASSERT_EQ(ctl(net, "lossless on\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns;
    ASSERT_TRUE(ns.ok()) << ns.error();
    const std::string tap_name = ifname("tq");
    ASSERT_TRUE(tap_into(net, tap_name, ns, {"10.0.8.1/24"}, 0));
    // A hub sends every frame to the one reader, which never reads: the
    // network fills, the daemon stops reading the TAP, its queue overflows.
    int reader = ::open((net + "/port5").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    Shell neigh =
        ns.sh("ip neigh add 10.0.8.2 lladdr 02:00:00:00:00:02 nud permanent dev " + sq(tap_name));
    ASSERT_EQ(neigh.exit_code(), 0) << describe(neigh);
    Shell burst = ns.sh("python3 -c " + sq(kUdpBurst) + " 10.0.8.2 5000");
    ASSERT_EQ(burst.exit_code(), 0) << describe(burst);
    usleep(300 * 1000);

    LinkCounts tx = link_counts(ns.sh("ip -s link show dev " + sq(tap_name)).out, "TX");
    ASSERT_TRUE(tx.ok);
    std::string text = slurp(net + "/stats");
    ::close(reader);
    EXPECT_GT(tx.dropped, 1000u) << "the TAP's queue did not overflow";
    EXPECT_EQ(iface_word(text, tap_name, "if_tx_dropped"), std::to_string(tx.dropped))
        << "ip -s link shows TX dropped " << tx.dropped << "; stats:\n"
        << text;
    EXPECT_EQ(iface_word(text, tap_name, "sock_drops"), "-") << text;
}

}  // namespace
}  // namespace ipnfs_it
