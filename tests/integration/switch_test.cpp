// The switch policy seen from kernel interfaces and port files: it learns
// where each MAC address is and sends unicast only there (a hub sends it
// everywhere), and VLANs split one switch into isolated segments that a trunk
// port carries tagged.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "ether.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

// Reads every frame arriving at a port file on a thread of its own and counts
// the unicast frames addressed to either of two MACs.
class FrameCounter {
  public:
    FrameCounter(int fd, Mac a, Mac b) : fd_(fd), a_(a), b_(b) {
        thread_ = std::thread([this] { run(); });
    }
    ~FrameCounter() { stop(); }
    FrameCounter(const FrameCounter&) = delete;
    FrameCounter& operator=(const FrameCounter&) = delete;

    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] int unicast_to_them() const { return unicast_; }
    [[nodiscard]] int frames() const { return frames_; }

  private:
    void run() {
        std::string buf(65536, '\0');
        while (!stop_) {
            pollfd pfd{fd_, POLLIN, 0};
            if (poll(&pfd, 1, 20) != 1) continue;
            ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n <= 0) continue;
            ++frames_;
            auto f = parse_frame(std::string_view(buf.data(), static_cast<std::size_t>(n)));
            if (f && f->unicast() && (f->dst == a_ || f->dst == b_)) ++unicast_;
        }
    }
    int fd_;
    Mac a_, b_;
    std::atomic<bool> stop_{false};
    std::atomic<int> frames_{0}, unicast_{0};
    std::thread thread_;
};

// Empties a non-blocking port file.
void drain(int fd) {
    while (read_one(fd, 100).n > 0) {
    }
}

class NetdevSwitchTest : public NetdevTest {
  protected:
    struct ThirdPort {
        int unicast = -1;  // unicast frames between ns1 and ns2 that reached port 3
        int frames = 0;    // every frame that reached port 3
        NetStats stats;
        std::string mac1, mac2;
    };

    // TAPs of a POLICY network (after the ctl lines SETUP) in ns1 (port 1,
    // 10.0.0.1) and ns2 (port 2, 10.0.0.2), a reader on port3; after one
    // ping to learn, 200 more.
    ThirdPort ping_past_a_third_port(const std::string& policy, const std::string& setup = "") {
        ThirdPort out;
        std::string net = make_net(policy + "net");
        EXPECT_EQ(ctl(net, "policy " + policy + "\n" + setup), 0) << last_error_line(ctl_text(net));
        NetNs ns1, ns2;
        if (!ns1.ok() || !ns2.ok()) {
            ADD_FAILURE() << ns1.error() << ns2.error();
            return out;
        }
        const std::string t1 = ifname("a"), t2 = ifname("b");
        if (!tap_into(net, t1, ns1, {"10.0.0.1/24"}, 1) ||
            !tap_into(net, t2, ns2, {"10.0.0.2/24"}, 2)) {
            return out;
        }
        out.mac1 = ns1.mac(t1);
        out.mac2 = ns2.mac(t2);
        auto m1 = parse_mac(out.mac1), m2 = parse_mac(out.mac2);
        if (!m1 || !m2) {
            ADD_FAILURE() << "cannot read the TAPs' MACs: '" << out.mac1 << "' '" << out.mac2
                          << "'";
            return out;
        }
        Fd third = open_fd(net + "/port3", O_RDONLY | O_NONBLOCK);
        if (!third.ok()) return out;

        Shell learn = ns1.ping("10.0.0.2", 1);
        EXPECT_EQ(learn.exit_code(), 0) << describe(learn);
        drain(third.get());
        {
            FrameCounter counter(third.get(), *m1, *m2);
            Shell burst = ns1.ping("10.0.0.2", 200, 0.005, "-q");
            EXPECT_EQ(burst.exit_code(), 0) << describe(burst);
            std::this_thread::sleep_for(200ms);
            counter.stop();
            out.unicast = counter.unicast_to_them();
            out.frames = counter.frames();
        }
        out.stats = net_stats(net);
        return out;
    }
};

TEST_F(NetdevSwitchTest, ALearnedUnicastReachesOnlyItsPort) {
    ThirdPort seen = ping_past_a_third_port("switch");
    ASSERT_GE(seen.unicast, 0);
    // 200 echo requests and 200 replies went between ports 1 and 2.
    EXPECT_LT(seen.unicast, 5) << "port 3 got " << seen.unicast << " unicast frames between "
                               << seen.mac1 << " and " << seen.mac2 << " (of " << seen.frames
                               << " frames)";

    // stats shows where each TAP's MAC was learned.
    const NetStats& st = seen.stats;
    const MacRow* m1 = st.mac(seen.mac1);
    const MacRow* m2 = st.mac(seen.mac2);
    ASSERT_NE(m1, nullptr) << "no 'mac " << seen.mac1 << " ...' line:\n" << st.text;
    ASSERT_NE(m2, nullptr) << "no 'mac " << seen.mac2 << " ...' line:\n" << st.text;
    EXPECT_EQ(m1->port, 1u);
    EXPECT_EQ(m2->port, 2u);
    EXPECT_EQ(m1->vlan, 1u) << "the default VLAN is 1";
    EXPECT_EQ(m2->vlan, 1u);
    ASSERT_TRUE(st.sw.count("mac_entries")) << "no 'switch mac_entries N ...' line:\n" << st.text;
    EXPECT_GE(st.sw.at("mac_entries"), 2u);
}

TEST_F(NetdevSwitchTest, AHubSendsTheSameUnicastToEveryPort) {
    ThirdPort seen = ping_past_a_third_port("hub");
    ASSERT_GE(seen.unicast, 0);
    EXPECT_GE(seen.unicast, 200) << "of 400 unicast frames between ports 1 and 2, port 3 of a hub "
                                 << "got only " << seen.unicast;
}

TEST_F(NetdevSwitchTest, AMirrorPortGetsACopyOfEveryFrame) {
    ThirdPort seen = ping_past_a_third_port("switch", "mirror 3 on\n");
    ASSERT_GE(seen.unicast, 0);
    EXPECT_GE(seen.unicast, 200) << "of 400 unicast frames between ports 1 and 2, the mirror port "
                                 << "got only " << seen.unicast;
}

// A mirror port only listens, as a switch's SPAN destination port: what it
// sends reaches nobody and is counted (`mirror P dropped N`), while it still
// gets a copy of the other ports' frames.
TEST_F(NetdevSwitchTest, AMirrorPortsOwnFramesAreDroppedAndCounted) {
    std::string net = make_net("mirrornet");
    ASSERT_EQ(ctl(net, "policy switch\nmirror 3 on\n"), 0) << last_error_line(ctl_text(net));
    Fd one = open_fd(net + "/port1", O_RDONLY | O_NONBLOCK);
    Fd two = open_fd(net + "/port2", O_RDONLY | O_NONBLOCK);
    Fd three = open_fd(net + "/port3", O_RDONLY | O_NONBLOCK);
    ASSERT_TRUE(one.ok() && two.ok() && three.ok());
    // python3 writes one broadcast frame (dst ff:..:ff, src 02:00:00:00:00:0N,
    // ethertype 0x88b5) to a port file, as any program would.
    auto send_from = [&](int port) {
        Shell sh = run_argv({"python3", "-c",
                             "import sys; open(sys.argv[1], 'wb', buffering=0).write("
                             "b'\\xff' * 6 + bytes([2, 0, 0, 0, 0, int(sys.argv[2])]) + "
                             "b'\\x88\\xb5' + b'mirror test payload')",
                             net + "/port" + std::to_string(port), std::to_string(port)});
        EXPECT_EQ(sh.exit_code(), 0) << describe(sh);
    };
    send_from(3);
    send_from(3);
    EXPECT_TRUE(read_one(one.get(), 300).timed_out()) << "port 1 got the mirror port's frame";
    EXPECT_TRUE(read_one(two.get(), 300).timed_out()) << "port 2 got the mirror port's frame";
    send_from(1);
    EXPECT_EQ(read_one(two.get()).n, 33) << "port 2 missed port 1's broadcast";
    EXPECT_EQ(read_one(three.get()).n, 33) << "the mirror port missed port 1's broadcast";
    std::string text = slurp(net + "/stats");
    EXPECT_NE(text.find("\nmirror 3 dropped 2\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("mac 02:00:00:00:00:03"), std::string::npos)
        << "the mirror port's source address was learned:\n"
        << text;
}

TEST_F(NetdevSwitchTest, FlushAndExpireEmptyTheMacTable) {
    std::string net = make_net("sw");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns1, ns2;
    ASSERT_TRUE(ns1.ok() && ns2.ok()) << ns1.error() << ns2.error();
    ASSERT_TRUE(tap_into(net, ifname("a"), ns1, {"10.0.0.1/24"}));
    ASSERT_TRUE(tap_into(net, ifname("b"), ns2, {"10.0.0.2/24"}));
    auto entries = [&] {
        NetStats st = net_stats(net);
        EXPECT_TRUE(st.sw.count("mac_entries")) << st.text;
        return st.sw.count("mac_entries") ? st.sw.at("mac_entries") : 0;
    };
    Shell ping = ns1.ping("10.0.0.2", 1);
    ASSERT_EQ(ping.exit_code(), 0) << describe(ping);
    EXPECT_EQ(entries(), 2u);

    ASSERT_EQ(ctl(net, "flush\n"), 0) << last_error_line(ctl_text(net));
    EXPECT_EQ(entries(), 0u);
    EXPECT_TRUE(net_stats(net).macs.empty()) << net_stats(net).text;
    ping = ns2.ping("10.0.0.1", 1);
    EXPECT_EQ(ping.exit_code(), 0) << "after flush: " << describe(ping);
    EXPECT_EQ(entries(), 2u) << "learned again after flush";

    // Idle entries go after `expire` seconds.
    ASSERT_EQ(ctl(net, "expire 1\n"), 0) << last_error_line(ctl_text(net));
    EXPECT_NE(ctl_text(net).find("\nexpire 1\n"), std::string::npos) << ctl_text(net);
    EXPECT_TRUE(eventually([&] { return entries() == 0; }, 4s))
        << "MAC entries still there 4 s after 'expire 1':\n"
        << net_stats(net).text;
}

TEST_F(NetdevSwitchTest, AFullMacTableFloodsInsteadOfLosingTraffic) {
    std::string net = make_net("sw");
    ASSERT_EQ(ctl(net, "policy switch\nmaclimit 1\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns1, ns2;
    ASSERT_TRUE(ns1.ok() && ns2.ok()) << ns1.error() << ns2.error();
    ASSERT_TRUE(tap_into(net, ifname("a"), ns1, {"10.0.0.1/24"}));
    ASSERT_TRUE(tap_into(net, ifname("b"), ns2, {"10.0.0.2/24"}));
    Shell ping = ns1.ping("10.0.0.2", 3);
    EXPECT_EQ(ping.exit_code(), 0) << "with room for one MAC: " << describe(ping);
    NetStats st = net_stats(net);
    ASSERT_TRUE(st.sw.count("mac_entries") && st.sw.count("table_full")) << st.text;
    EXPECT_EQ(st.sw.at("mac_entries"), 1u) << st.text;
    EXPECT_EQ(st.sw.at("maclimit"), 1u) << st.text;
    EXPECT_GE(st.sw.at("table_full"), 1u) << st.text;
    EXPECT_EQ(st.macs.size(), 1u) << st.text;
}

// The trunk side of the VLAN test: a port file the test writes tagged frames
// into and reads tagged frames from.
class Trunk {
  public:
    Trunk(Fd fd, Mac mac) : fd_(std::move(fd)), mac_(mac) {}

    bool send(std::optional<std::uint16_t> vid, const Mac& dst, std::uint16_t type,
              const std::string& payload) {
        Frame f{dst, mac_, vid, type, payload};
        std::string bytes = build_frame(f);
        return write_msg(fd_.get(), bytes).n == static_cast<ssize_t>(bytes.size());
    }

    // Asks who has `target` (as `self`) on VLAN vid (untagged if none); the
    // ARP reply's frame, if one comes within `within`.
    std::optional<Frame> arp(std::optional<std::uint16_t> vid, const std::string& self,
                             const std::string& target, std::chrono::milliseconds within) {
        Arp req{1, mac_, Mac{}, ipv4(self), ipv4(target)};
        if (!send(vid, kBroadcast, kEtherArp, arp_payload(req))) return std::nullopt;
        return wait_for(
            [&](const Frame& f) {
                auto a = f.type == kEtherArp ? parse_arp(f.payload) : std::nullopt;
                return a && a->op == 2 && a->spa == ipv4(target) && a->tpa == ipv4(self);
            },
            within);
    }

    // An echo request with `data` to (dst_mac, target) on VLAN vid; the
    // reply's frame.
    std::optional<Frame> ping(std::uint16_t vid, const Mac& dst_mac, const std::string& self,
                              const std::string& target, std::uint16_t seq,
                              const std::string& data = "ipnfs trunk") {
        if (!send(vid, dst_mac, kEtherIpv4,
                  icmp_echo_request(ipv4(self), ipv4(target), 0x1eaf, seq, data))) {
            return std::nullopt;
        }
        return wait_for(
            [&](const Frame& f) {
                return f.type == kEtherIpv4 &&
                       is_icmp_echo_reply(f.payload, ipv4(target), 0x1eaf, seq);
            },
            2s);
    }

    [[nodiscard]] int fd() const { return fd_.get(); }

  private:
    template <class Match>
    std::optional<Frame> wait_for(Match match, std::chrono::milliseconds within) {
        auto deadline = Clock::now() + within;
        while (Clock::now() < deadline) {
            Io io = read_one(fd_.get(), 50);
            if (io.n <= 0) continue;
            auto f = parse_frame(io.data);
            if (f && f->dst == mac_ && match(*f)) return f;
        }
        return std::nullopt;
    }

    Fd fd_;
    Mac mac_;
};

TEST_F(NetdevSwitchTest, VlansAreIsolatedAndATrunkCarriesBothTagged) {
    std::string net = make_net("vlans");
    ASSERT_EQ(ctl(net, "policy switch\nmtu 1518\n"), 0) << last_error_line(ctl_text(net));
    ASSERT_EQ(ctl(net, "vlan 1 10\nvlan 2 10\nvlan 3 20\ntrunk 4 10,20\nvlan 4 none\n"), 0)
        << last_error_line(ctl_text(net));
    NetNs ns1, ns2, ns3;
    ASSERT_TRUE(ns1.ok() && ns2.ok() && ns3.ok()) << ns1.error() << ns2.error() << ns3.error();
    const std::string t1 = ifname("v1"), t2 = ifname("v2"), t3 = ifname("v3");
    ASSERT_TRUE(tap_into(net, t1, ns1, {"10.0.10.1/24"}, 1));
    ASSERT_TRUE(tap_into(net, t2, ns2, {"10.0.10.2/24"}, 2));
    // ns3 is in the same IP subnet, on the other VLAN, and also in 10.0.20.0/24.
    ASSERT_TRUE(tap_into(net, t3, ns3, {"10.0.10.3/24", "10.0.20.3/24"}, 3));
    auto mac1 = parse_mac(ns1.mac(t1)), mac3 = parse_mac(ns3.mac(t3));
    ASSERT_TRUE(mac1 && mac3);

    // Same VLAN: they talk.
    Shell same = ns1.ping("10.0.10.2");
    EXPECT_EQ(same.exit_code(), 0) << "ns1 -> ns2 on VLAN 10: " << describe(same);
    // Other VLAN: nothing gets across, although the addresses say it should.
    Shell across = ns3.ping("10.0.10.1", 2, 0.2);
    EXPECT_NE(across.exit_code(), 0) << "ns3 (VLAN 20) reached ns1 (VLAN 10): " << across.out;
    Shell back = ns1.ping("10.0.10.3", 2, 0.2);
    EXPECT_NE(back.exit_code(), 0) << "ns1 (VLAN 10) reached ns3 (VLAN 20): " << back.out;

    // The trunk (port 4) reaches ns1 with frames tagged 10 and ns3 with
    // frames tagged 20, and what comes back is tagged the same way.
    Trunk trunk(open_fd(net + "/port4", O_RDWR), *parse_mac("02:00:00:00:00:44"));
    auto reply = trunk.arp(10, "10.0.10.4", "10.0.10.1", 2s);
    ASSERT_TRUE(reply) << "no ARP reply from ns1 to a request tagged VLAN 10";
    EXPECT_EQ(reply->vid, std::optional<std::uint16_t>(10))
        << "ns1's reply left the trunk untagged "
        << "or with the wrong tag";
    EXPECT_EQ(reply->src, *mac1);
    auto echo = trunk.ping(10, *mac1, "10.0.10.4", "10.0.10.1", 1);
    ASSERT_TRUE(echo) << "no echo reply from ns1 over VLAN 10";
    EXPECT_EQ(echo->vid, std::optional<std::uint16_t>(10));
    // A full 1500-byte IP packet each way: 1518 bytes tagged on the trunk.
    echo = trunk.ping(10, *mac1, "10.0.10.4", "10.0.10.1", 3, std::string(1472, 'j'));
    ASSERT_TRUE(echo) << "no echo reply to a 1500-byte packet over VLAN 10 (mtu 1518)";
    EXPECT_EQ(echo->payload.size(), 1500u);

    reply = trunk.arp(20, "10.0.20.4", "10.0.20.3", 2s);
    ASSERT_TRUE(reply) << "no ARP reply from ns3 to a request tagged VLAN 20";
    EXPECT_EQ(reply->vid, std::optional<std::uint16_t>(20));
    EXPECT_EQ(reply->src, *mac3);
    echo = trunk.ping(20, *mac3, "10.0.20.4", "10.0.20.3", 2);
    ASSERT_TRUE(echo) << "no echo reply from ns3 over VLAN 20";
    EXPECT_EQ(echo->vid, std::optional<std::uint16_t>(20));

    // A request tagged VLAN 20 stays in VLAN 20: ns1 (VLAN 10) never hears it.
    EXPECT_FALSE(trunk.arp(20, "10.0.10.4", "10.0.10.1", 700ms))
        << "a request tagged VLAN 20 reached ns1 (VLAN 10)";
    // Untagged (the trunk has no untagged VLAN) or tagged with a VLAN the
    // trunk does not carry: dropped, and counted.
    EXPECT_FALSE(trunk.arp(std::nullopt, "10.0.10.4", "10.0.10.1", 700ms))
        << "an untagged request on a trunk with 'vlan 4 none' reached ns1";
    EXPECT_FALSE(trunk.arp(30, "10.0.10.4", "10.0.10.1", 700ms))
        << "a request tagged VLAN 30 (not carried by the trunk) reached ns1";
    // A frame too short to be Ethernet.
    ASSERT_EQ(write_msg(trunk.fd(), "short").n, 5);

    NetStats st = net_stats(net);
    const MacRow* learned = st.mac("02:00:00:00:00:44");
    ASSERT_NE(learned, nullptr) << st.text;
    EXPECT_EQ(learned->port, 4u);
    ASSERT_TRUE(st.sw.count("vlan_drops") && st.sw.count("malformed")) << st.text;
    EXPECT_GE(st.sw.at("vlan_drops"), 2u) << "the untagged frame and the one tagged 30:\n"
                                          << st.text;
    EXPECT_GE(st.sw.at("malformed"), 1u) << st.text;
}

TEST_F(NetdevSwitchTest, TcpdumpOnATrunkTapSeesTheVlanTags) {
    if (std::string why = netns_problem({"tcpdump"}); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    std::string net = make_net("vlans");
    ASSERT_EQ(ctl(net, "policy switch\nmtu 1518\n"), 0) << last_error_line(ctl_text(net));
    ASSERT_EQ(ctl(net, "vlan 1 10\nvlan 2 20\ntrunk 3 10,20\nvlan 3 none\n"), 0)
        << last_error_line(ctl_text(net));
    NetNs ns1, ns2, ns3;
    ASSERT_TRUE(ns1.ok() && ns2.ok() && ns3.ok()) << ns1.error() << ns2.error() << ns3.error();
    const std::string t1 = ifname("v1"), t2 = ifname("v2"), t3 = ifname("v3");
    ASSERT_TRUE(tap_into(net, t1, ns1, {"10.0.10.1/24"}, 1));
    ASSERT_TRUE(tap_into(net, t2, ns2, {"10.0.20.2/24"}, 2));
    ASSERT_TRUE(tap_into(net, t3, ns3, {}, 3));

    // ns1 and ns2 look for absent neighbours: their ARP broadcasts flood to
    // the trunk, tagged with their VLAN.
    const std::string err = scratch() + "/tcpdump.err";
    Shell sh =
        root_sh(ns3.exec() + "timeout 6 tcpdump -l -e -n -i " + t3 + " arp 2> " + sq(err) +
                    " & t=$!\n"
                    "i=0; until grep -q listening " +
                    sq(err) + " || [ $i -gt 100 ]; do sleep 0.05; i=$((i+1)); done\n" + ns1.exec() +
                    "ping -c 2 -i 0.5 -W 1 10.0.10.99 >/dev/null 2>&1 &\n" + ns2.exec() +
                    "ping -c 2 -i 0.5 -W 1 10.0.20.99 >/dev/null 2>&1\n"
                    "sleep 0.5; kill $t; wait $t\n",
                20);
    EXPECT_FALSE(sh.timed_out) << describe(sh);
    EXPECT_TRUE(contains(sh.out, "vlan 10")) << "tcpdump -e on the trunk TAP:\n"
                                             << sh.out << read_whole(err);
    EXPECT_TRUE(contains(sh.out, "vlan 20")) << "tcpdump -e on the trunk TAP:\n"
                                             << sh.out << read_whole(err);
    EXPECT_TRUE(contains(sh.out, "Request who-has 10.0.10.99")) << sh.out;
}

}  // namespace
}  // namespace ipnfs_it
