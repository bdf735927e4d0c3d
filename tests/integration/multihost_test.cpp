// Buses that span machines, on the kernel's own networking: two "hosts"
// (network namespaces joined by a veth pair, their underlay) each run their
// own ipnfs daemon with a switch network `lan`, and each grabs a VXLAN
// interface to the other host into its `lan`.  A TAP on host A then pings a
// TAP on host B, a file on B crosses to A over TCP, and a port file on A
// reaches a port file on B, as on one Ethernet.  docs/multi-host.md is the
// recipe these tests follow.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ether.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

constexpr int kVni = 42;
constexpr int kVxlanPort = 4789;  // IANA's VXLAN port (the kernel's default is 8472)
// VXLAN over IPv4 costs 50 bytes (outer Ethernet 14, IPv4 20, UDP 8, VXLAN
// 8): the VXLAN interface on a 1500-byte underlay has MTU 1450, and a frame
// the grab sends out of it that is longer than that is dropped.  So every
// interface on the overlay gets MTU 1450.
constexpr int kOverlayMtu = 1450;

// One host: its namespace, its daemon, and what the test made there.
struct Host {
    Host() = default;
    Host(std::string name, NetNs* netns, Mount* daemon, std::string link, std::string under,
         std::string over)
        : label(std::move(name)),
          ns(netns),
          mount(daemon),
          underlay_if(std::move(link)),
          underlay(std::move(under)),
          overlay(std::move(over)) {}

    std::string label;  // "A", "B"
    NetNs* ns = nullptr;
    Mount* mount = nullptr;
    std::string underlay_if, underlay, overlay;  // the veth end and the addresses
    std::string vxlan, tap, lan;                 // interface names, the network's directory
    unsigned grab_port = 0, tap_port = 0;
};

class MultiHostTest : public NetdevTest {
  protected:
    [[nodiscard]] std::vector<std::string> tools() const override {
        return {"ping", "timeout", "nsenter", "python3", "sha256sum"};
    }
    // Host A's daemon is the fixture's own mount_, started inside host A.
    [[nodiscard]] std::vector<std::string> daemon_prefix() const override { return ns_a_->enter(); }

    void SetUp() override {
        std::vector<std::string> needed{"ip"};
        for (const auto& t : tools()) needed.push_back(t);
        if (std::string why = netns_problem(needed); !why.empty()) {
            if (in_ci()) FAIL() << why;
            GTEST_SKIP() << why;
        }
        // The hosts and their underlay come first: the daemons start inside.
        ns_a_ = std::make_unique<NetNs>();
        ns_b_ = std::make_unique<NetNs>();
        ASSERT_TRUE(ns_a_->ok() && ns_b_->ok()) << ns_a_->error() << ns_b_->error();
        veth_ = std::make_unique<VethPair>(ifname("uA"), ifname("uB"));
        ASSERT_TRUE(veth_->ok()) << veth_->error();
        a_ = Host{"A", ns_a_.get(), &mount_, veth_->a(), "10.77.42.1", "192.168.77.1"};
        b_ = Host{"B", ns_b_.get(), &mount_b_, veth_->b(), "10.77.42.2", "192.168.77.2"};
        for (Host* h : {&a_, &b_}) {
            Shell moved = h->ns->adopt(h->underlay_if);
            ASSERT_EQ(moved.exit_code(), 0) << describe(moved);
            Shell conf = h->ns->configure(h->underlay_if, {h->underlay + "/24"});
            ASSERT_EQ(conf.exit_code(), 0) << describe(conf);
        }

        NetdevTest::SetUp();  // host A's daemon
        if (IsSkipped() || HasFatalFailure()) return;
        std::string why;
        ASSERT_TRUE(mount_b_.start({}, why, ns_b_->enter())) << "host B's daemon: " << why;
        watchdog_b_ = std::make_unique<Watchdog>(mount_b_, 45s);

        join(a_, b_);
        if (HasFatalFailure()) return;
        join(b_, a_);
    }

    void TearDown() override {
        watchdog_b_.reset();
        if (!IsSkipped()) stop_cleanly(mount_b_);
        if (HasFailure()) std::cerr << "---- host B's daemon ----\n" << mount_b_.log();
        mount_b_.cleanup();
        NetdevTest::TearDown();  // host A's daemon
        if (IsSkipped()) return;
        // The daemons are gone, and their TAPs with them: only what the test
        // made itself is left in each host.
        for (Host* h : {&a_, &b_}) {
            if (h->ns == nullptr || h->tap.empty()) continue;
            EXPECT_TRUE(eventually([&] { return !in_host(*h, h->tap); }, 3s))
                << "host " << h->label << " still has the TAP " << h->tap << " after its daemon "
                << "ended:\n"
                << h->ns->sh("ip -o link show").out;
        }
        // Deleting the namespaces deletes the VXLANs and the veth pair.
        std::vector<std::string> names;
        for (const auto& ns : {ns_a_.get(), ns_b_.get()}) {
            if (ns != nullptr) names.push_back(ns->name());
        }
        ns_a_.reset();
        ns_b_.reset();
        veth_.reset();
        Shell left = root_sh("ip netns list; ip -o link show", 10);
        for (const auto& name : names) EXPECT_FALSE(contains(left.out, name)) << left.out;
        EXPECT_FALSE(contains(left.out, ifname_prefix())) << left.out;
    }

    // True if the interface exists in the host.
    static bool in_host(const Host& h, const std::string& iface) {
        return h.ns->sh("ip link show dev " + sq(iface) + " >/dev/null 2>&1", 10).exit_code() == 0;
    }

    // On host H: a VXLAN to the PEER over the underlay, the switch network
    // lan, the VXLAN grabbed into it, and a TAP of lan with H's overlay
    // address, as docs/multi-host.md has it.  The kernel receives what the
    // VXLAN receives too: arp_ignore=1 keeps it from answering ARP for the
    // TAP's address there (with its own MAC).
    void join(Host& h, const Host& peer) {
        SCOPED_TRACE("host " + h.label);
        h.vxlan = ifname("vx");
        h.tap = ifname("t" + h.label);
        Shell vx = h.ns->sh("set -e\nip link add " + h.vxlan + " type vxlan id " +
                                std::to_string(kVni) + " local " + h.underlay + " remote " +
                                peer.underlay + " dstport " + std::to_string(kVxlanPort) + " dev " +
                                h.underlay_if + "\nsysctl -qw net.ipv4.conf." + h.vxlan +
                                ".arp_ignore=1\nip link set " + h.vxlan + " up\n",
                            10);
        ASSERT_EQ(vx.exit_code(), 0) << describe(vx);

        h.lan = h.mount->path("lan");
        ASSERT_EQ(mkdir(h.lan.c_str(), 0755), 0) << h.lan << ": " << std::strerror(errno);
        ASSERT_EQ(ctl(h.lan, "policy switch\n"), 0) << last_error_line(ctl_text(h.lan));
        ASSERT_EQ(grab(h.lan, h.vxlan), 0) << last_error_line(ctl_text(h.lan));
        ASSERT_EQ(tap(h.lan, h.tap), 0) << last_error_line(ctl_text(h.lan));
        std::optional<unsigned> grab_port = attached_port(h.lan, "grab", h.vxlan);
        std::optional<unsigned> tap_port = attached_port(h.lan, "tap", h.tap);
        ASSERT_TRUE(grab_port && tap_port) << ctl_text(h.lan);
        h.grab_port = *grab_port;
        h.tap_port = *tap_port;
        // The daemon runs in the host, so its TAP appears there.
        ASSERT_TRUE(in_host(h, h.tap)) << h.ns->sh("ip -o link show").out;
        Shell conf = h.ns->configure(h.tap, {h.overlay + "/24"}, kOverlayMtu);
        ASSERT_EQ(conf.exit_code(), 0) << describe(conf);
    }

    std::unique_ptr<NetNs> ns_a_, ns_b_;
    std::unique_ptr<VethPair> veth_;
    Mount mount_b_;
    std::unique_ptr<Watchdog> watchdog_b_;
    Host a_, b_;
};

TEST_F(MultiHostTest, ATapOnHostAPingsATapOnHostBThroughGrabbedVxlans) {
    Shell ping = a_.ns->ping(b_.overlay, 3, 0.2, "-I " + a_.overlay);
    ASSERT_EQ(ping.exit_code(), 0) << "host A -> host B over the overlay: " << describe(ping);
    Shell back = b_.ns->ping(a_.overlay, 3, 0.2, "-I " + b_.overlay);
    EXPECT_EQ(back.exit_code(), 0) << "host B -> host A: " << describe(back);
    // Full-size frames fit: 1422 bytes of ICMP data + 8 + 20 = a 1450-byte
    // packet, not fragmented.
    Shell full = a_.ns->ping(b_.overlay, 2, 0.2, "-M do -s 1422");
    EXPECT_EQ(full.exit_code(), 0) << describe(full);
    EXPECT_TRUE(contains(full.out, "1430 bytes from " + b_.overlay)) << full.out;

    // Each switch counts the frames of its grab and its TAP both ways, and
    // learned the far TAP's MAC behind its VXLAN.
    for (const auto& [h, peer] : {std::pair{&a_, &b_}, std::pair{&b_, &a_}}) {
        SCOPED_TRACE("host " + h->label);
        NetStats st = net_stats(h->lan);
        for (const auto& [name, kind, port] :
             {std::tuple{h->vxlan, "grab", h->grab_port}, std::tuple{h->tap, "tap", h->tap_port}}) {
            auto row = st.ifaces.find(name);
            ASSERT_NE(row, st.ifaces.end()) << "no iface row for " << name << ":\n" << st.text;
            EXPECT_EQ(row->second.kind, kind) << st.text;
            EXPECT_EQ(row->second.port, port) << st.text;
            EXPECT_EQ(row->second.state, "running") << st.text;
            // 3 + 3 + 2 echoes each way, and ARP.
            EXPECT_GE(row->second.frames_in, 8u) << st.text;
            EXPECT_GE(row->second.frames_out, 8u) << st.text;
            EXPECT_EQ(row->second.drops, 0u) << st.text;
        }
        std::string far_mac = peer->ns->mac(peer->tap);
        // The host reaches the far TAP's address at the far TAP's MAC (not
        // at the far VXLAN's, which would answer ARP without arp_ignore).
        Shell neigh = h->ns->sh("ip neigh show " + peer->overlay + " dev " + h->tap, 10);
        EXPECT_TRUE(contains(neigh.out, "lladdr " + far_mac)) << far_mac << ": " << neigh.out;
        const MacRow* far = st.mac(far_mac);
        ASSERT_NE(far, nullptr) << "no 'mac " << far_mac << "' line:\n" << st.text;
        EXPECT_EQ(far->port, h->grab_port) << "the far TAP is behind the VXLAN:\n" << st.text;
    }
}

// Reads frames from a port file until one is exactly `want`, for up to
// `timeout`; what it read instead goes into `others`.
bool read_frame(int fd, const std::string& want, std::chrono::milliseconds timeout,
                std::vector<std::string>& others) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        Io io = read_one(fd, static_cast<int>(std::max<long>(1, left.count())));
        if (io.n < 0) continue;
        if (io.data == want) return true;
        others.push_back(io.data);
    }
    return false;
}

TEST_F(MultiHostTest, APortFileOnHostAReachesAPortFileOnHostBAndBack) {
    constexpr unsigned kPort = 9;  // free on both: the grab and the TAP took 0 and 1
    Fd on_a = open_fd(a_.lan + "/port" + std::to_string(kPort), O_RDWR | O_NONBLOCK);
    Fd on_b = open_fd(b_.lan + "/port" + std::to_string(kPort), O_RDWR | O_NONBLOCK);
    ASSERT_TRUE(on_a.ok() && on_b.ok());
    const Mac mac_a{0x02, 0x00, 0x00, 0x77, 0x0a, 0x01};
    const Mac mac_b{0x02, 0x00, 0x00, 0x77, 0x0b, 0x01};
    constexpr std::uint16_t kLocalExperimental = 0x88b5;  // IEEE 802 local experimental

    // A broadcast from A's port file: every port of both switches gets it,
    // byte for byte (the 60-byte minimum padding included).
    std::string there = build_frame(
        {kBroadcast, mac_a, std::nullopt, kLocalExperimental, "ipnfs multi-host: A to B"});
    ASSERT_EQ(write_msg(on_a.get(), there).n, static_cast<ssize_t>(there.size()));
    std::vector<std::string> others;
    EXPECT_TRUE(read_frame(on_b.get(), there, 3s, others))
        << "host B's port file did not get the frame host A's wrote (" << others.size()
        << " others came)\n"
        << net_stats(a_.lan).text << net_stats(b_.lan).text;

    // The answer is unicast: B's switch learned mac_a behind its VXLAN and
    // A's learned it on port 9, so only that port gets it.
    std::string back =
        build_frame({mac_a, mac_b, std::nullopt, kLocalExperimental, "ipnfs multi-host: B to A"});
    ASSERT_EQ(write_msg(on_b.get(), back).n, static_cast<ssize_t>(back.size()));
    others.clear();
    EXPECT_TRUE(read_frame(on_a.get(), back, 3s, others))
        << "host A's port file did not get the frame host B's wrote (" << others.size()
        << " others came)\n"
        << net_stats(a_.lan).text << net_stats(b_.lan).text;

    NetStats st_a = net_stats(a_.lan);
    NetStats st_b = net_stats(b_.lan);
    const MacRow* learned_b = st_b.mac(mac_text(mac_a));
    ASSERT_NE(learned_b, nullptr) << st_b.text;
    EXPECT_EQ(learned_b->port, b_.grab_port) << st_b.text;
    const MacRow* learned_a = st_a.mac(mac_text(mac_a));
    ASSERT_NE(learned_a, nullptr) << st_a.text;
    EXPECT_EQ(learned_a->port, kPort) << st_a.text;
    const MacRow* far_b = st_a.mac(mac_text(mac_b));
    ASSERT_NE(far_b, nullptr) << st_a.text;
    EXPECT_EQ(far_b->port, a_.grab_port) << st_a.text;
}

// TCP needs full-size frames through the VXLAN: with the TAPs at MTU 1450
// (kOverlayMtu) a 1 MiB file served on host B arrives on host A intact.
TEST_F(MultiHostTest, AFileServedOnHostBCrossesToHostAOverTcpIntact) {
    const std::string dir = scratch() + "/served";
    const std::string got = scratch() + "/got";
    Shell made = root_sh("mkdir -p " + sq(dir) + " && head -c 1048576 /dev/urandom > " +
                             sq(dir + "/blob") + " && sha256sum < " + sq(dir + "/blob"),
                         10);
    ASSERT_EQ(made.exit_code(), 0) << describe(made);
    const std::string python =
        access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    const std::string url = "http://" + b_.overlay + ":8000/blob";
    // The server on B runs until the fetch on A (which retries while it
    // starts) is done; the namespace's teardown would kill it otherwise.
    Shell tcp =
        root_sh(b_.ns->exec() + python + " -m http.server --bind " + b_.overlay + " --directory " +
                    sq(dir) + " 8000 >/dev/null 2>&1 & s=$!\n" + a_.ns->exec() + python +
                    " -c 'import sys, time, urllib.request\n"
                    "for i in range(100):\n"
                    "    try:\n"
                    "        data = urllib.request.urlopen(sys.argv[1], timeout=10).read(); break\n"
                    "    except OSError:\n"
                    "        time.sleep(0.1)\n"
                    "sys.stdout.buffer.write(data)' " +
                    url + " > " + sq(got) + "; r=$?\nkill $s\nwait $s\nexit $r\n",
                30);
    ASSERT_EQ(tcp.exit_code(), 0) << describe(tcp) << "\nhost A:\n"
                                  << net_stats(a_.lan).text << "host B:\n"
                                  << net_stats(b_.lan).text;
    Shell digest = root_sh("wc -c < " + sq(got) + " && sha256sum < " + sq(got), 10);
    EXPECT_EQ(digest.out, "1048576\n" + made.out) << "the bytes A got are not the bytes B served";
    for (Host* h : {&a_, &b_}) {
        NetStats st = net_stats(h->lan);
        auto row = st.ifaces.find(h->vxlan);
        ASSERT_NE(row, st.ifaces.end()) << st.text;
        EXPECT_EQ(row->second.drops, 0u) << "host " << h->label << ":\n" << st.text;
    }
}

// Drop accounting over the VXLAN: host A's grab gets a 4096-byte receive
// buffer (in place, `grab VX rcvbuf 4096`) and an iperf3 UDP flood from host
// B's TAP overruns it.  Every frame A's VXLAN received (its RX packets in
// `ip -s link`) is then in A's grab row: taken into the network
// (frames_in), dropped at the socket (sock_drops), by the daemon (drops) or
// by the interface itself (if_rx_dropped).
TEST_F(MultiHostTest, EveryFrameTheVxlanReceivedIsInTheGrabRowOfStats) {
    if (!netns_problem({"iperf3"}).empty()) {
        if (in_ci()) FAIL() << netns_problem({"iperf3"});
        GTEST_SKIP() << netns_problem({"iperf3"});
    }
    ASSERT_EQ(ctl(a_.lan, "grab " + a_.vxlan + " rcvbuf 4096\n"), 0)
        << last_error_line(ctl_text(a_.lan));
    Shell ping = b_.ns->ping(a_.overlay, 2, 0.2, "-I " + b_.overlay);
    ASSERT_EQ(ping.exit_code(), 0) << describe(ping);

    auto received = [&] {
        LinkCounts c = link_counts(a_.ns->sh("ip -s link show dev " + sq(a_.vxlan)).out, "RX");
        EXPECT_TRUE(c.ok);
        return c.packets;
    };
    auto explained = [&](const std::string& text) {
        std::uint64_t sum = 0;
        for (const char* title : {"frames_in", "sock_drops", "drops", "if_rx_dropped"}) {
            sum += iface_number(text, a_.vxlan, title);
        }
        return sum;
    };
    std::uint64_t received_before = received();
    std::uint64_t explained_before = explained(slurp(a_.lan + "/stats"));
    Shell flood = a_.ns->sh("iperf3 -s -1 -B " + a_.overlay + " >/dev/null 2>&1 & sleep 0.5; " +
                                b_.ns->exec() + "iperf3 -c " + a_.overlay +
                                " -u -b 1G -l 1400 -t 2 --connect-timeout 5000; wait",
                            40);
    ASSERT_EQ(flood.exit_code(), 0) << describe(flood);
    usleep(500 * 1000);  // quiet again: nothing between the kernel's count and ours
    std::uint64_t got = received() - received_before;
    std::string after = slurp(a_.lan + "/stats");
    std::uint64_t accounted = explained(after) - explained_before;
    // However little of the flood B's side manages to send on a loaded
    // machine, a 4096-byte buffer overruns; the sum is what is checked.
    EXPECT_GT(got, 1000u) << flood.out;
    EXPECT_GT(iface_number(after, a_.vxlan, "sock_drops"), 0u) << after;
    // A few TCP segments of iperf3's control connection may reach the grab
    // merged (GRO) after the kernel counted them one by one.
    EXPECT_NEAR(static_cast<double>(got), static_cast<double>(accounted), 20.0)
        << "host A's VXLAN received " << got << " frames; its grab row explains " << accounted
        << ":\n"
        << after;
}

}  // namespace
}  // namespace ipnfs_it
