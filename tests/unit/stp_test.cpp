// The 802.1D state machine (policies/stp.hpp) without a network: bridges
// joined by simulated links, BPDUs carried at once, time moved by the test.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <vector>

#include "policies/stp.hpp"

namespace ipnfs::test {
namespace {

using namespace std::chrono_literals;
using policies::stp::Bpdu;
using policies::stp::Bridge;
using policies::stp::PortState;
using policies::stp::Role;
namespace stp = policies::stp;

// Bridges and the links between their ports (a point-to-point segment).
struct Lan {
    struct End {
        std::size_t bridge;
        std::size_t port;
    };
    struct Link {
        End a, b;
        bool up = true;
        bool carries = true;  // false: BPDUs silently lost, ports stay up
    };

    std::vector<Bridge> bridges;
    std::vector<Link> links;
    stp::Time now{};
    std::vector<std::byte> wire;

    Lan(std::size_t n, std::size_t ports) : bridges(n) {
        for (std::size_t i = 0; i < n; ++i) {
            bridges[i].set_ports(ports);
            bridges[i].set_times(1, 6, 2);
            // Ids in the order of the bridges: bridge 0 has the lowest.
            bridges[i].set_bridge_id(stp::make_bridge_id(32768, 0x0200'0000'0010 + i), now);
            bridges[i].enable(now);
        }
    }
    void link(End a, End b) {
        links.push_back({a, b});
        bridges[a.bridge].port_up(a.port, now);
        bridges[b.bridge].port_up(b.port, now);
        deliver();
    }
    void cut(std::size_t i) {
        links[i].up = false;
        bridges[links[i].a.bridge].port_down(links[i].a.port, now);
        bridges[links[i].b.bridge].port_down(links[i].b.port, now);
        deliver();
    }
    const Link* peer_of(std::size_t bridge, std::size_t port, End& far) const {
        for (const Link& l : links) {
            if (!l.up) continue;
            if (l.a.bridge == bridge && l.a.port == port) {
                far = l.b;
                return &l;
            }
            if (l.b.bridge == bridge && l.b.port == port) {
                far = l.a;
                return &l;
            }
        }
        return nullptr;
    }
    // Carries every queued BPDU, through the wire format, until none is left.
    void deliver() {
        for (int round = 0; round < 100; ++round) {
            bool any = false;
            for (std::size_t i = 0; i < bridges.size(); ++i) {
                for (const Bridge::Sent& s : bridges[i].take_outbox()) {
                    End far{};
                    const Link* l = peer_of(i, s.port, far);
                    if (l == nullptr || !l->carries) continue;
                    stp::encode(s.bpdu, 0x0200'0000'0010 + i, wire);
                    std::optional<Bpdu> got = stp::parse(wire);
                    ASSERT_TRUE(got.has_value());
                    bridges[far.bridge].received(far.port, *got, now);
                    any = true;
                }
            }
            if (!any) return;
        }
        FAIL() << "BPDUs never settle";
    }
    void run_for(stp::Duration d) {
        stp::Time end = now + d;
        while (now < end) {
            now += 100ms;
            for (Bridge& b : bridges) b.tick(now);
            deliver();
        }
    }
    int count(Role role) const {
        int n = 0;
        for (const Link& l : links) {
            if (!l.up) continue;
            for (End e : {l.a, l.b}) n += bridges[e.bridge].port(e.port).role == role ? 1 : 0;
        }
        return n;
    }
    int count(PortState state) const {
        int n = 0;
        for (const Link& l : links) {
            if (!l.up) continue;
            for (End e : {l.a, l.b}) n += bridges[e.bridge].port(e.port).state == state ? 1 : 0;
        }
        return n;
    }
};

TEST(Stp, TheLowestBridgeIdIsElectedRootByEveryBridge) {
    Lan lan(3, 2);
    lan.bridges[2].set_bridge_id(stp::make_bridge_id(4096, 0x0200'0000'0099), lan.now);
    lan.link({0, 0}, {1, 0});
    lan.link({1, 1}, {2, 0});
    lan.run_for(10s);
    stp::BridgeId want = lan.bridges[2].bridge_id();
    for (const Bridge& b : lan.bridges) EXPECT_EQ(b.root_id(), want);
    EXPECT_TRUE(lan.bridges[2].is_root());
    EXPECT_EQ(lan.bridges[1].root_port(), 1U);
    EXPECT_EQ(lan.bridges[0].root_port(), 0U);
    // Costs add up along the path: 100 a hop.
    EXPECT_EQ(lan.bridges[1].root_path_cost(), 100U);
    EXPECT_EQ(lan.bridges[0].root_path_cost(), 200U);
    // A line has no loop: everything forwards.
    EXPECT_EQ(lan.count(PortState::forwarding), 4);
}

TEST(Stp, PortsWaitTwoForwardDelaysBeforeForwarding) {
    Lan lan(2, 1);
    lan.link({0, 0}, {1, 0});
    lan.run_for(1s);
    EXPECT_FALSE(lan.bridges[0].forwarding(0));
    EXPECT_FALSE(lan.bridges[0].learning(0));
    lan.run_for(2s);
    EXPECT_TRUE(lan.bridges[0].learning(0));
    EXPECT_FALSE(lan.bridges[0].forwarding(0));
    lan.run_for(2s);
    EXPECT_TRUE(lan.bridges[0].forwarding(0));
    EXPECT_TRUE(lan.bridges[1].forwarding(0));
}

TEST(Stp, ARingBlocksExactlyOnePort) {
    Lan lan(3, 2);
    lan.link({0, 0}, {1, 0});
    lan.link({1, 1}, {2, 0});
    lan.link({2, 1}, {0, 1});
    lan.run_for(15s);
    EXPECT_EQ(lan.count(Role::blocked), 1);
    EXPECT_EQ(lan.count(PortState::blocking), 1);
    EXPECT_EQ(lan.count(PortState::forwarding), 5);
    EXPECT_EQ(lan.count(Role::root), 2);
    // The blocked port is on the link farthest from the root (1-2), at the
    // bridge with the higher id.
    EXPECT_EQ(lan.bridges[2].port(0).role, Role::blocked);
    EXPECT_TRUE(lan.bridges[0].is_root());
}

TEST(Stp, ACutLinkReconvergesThroughTheBlockedPort) {
    Lan lan(3, 2);
    lan.link({0, 0}, {1, 0});
    lan.link({1, 1}, {2, 0});
    lan.link({2, 1}, {0, 1});
    lan.run_for(15s);
    ASSERT_EQ(lan.bridges[2].port(0).state, PortState::blocking);
    lan.cut(2);  // root to bridge 2
    lan.run_for(5s);
    EXPECT_EQ(lan.bridges[2].port(0).role, Role::root);
    EXPECT_EQ(lan.bridges[2].port(0).state, PortState::forwarding);
    EXPECT_EQ(lan.count(PortState::forwarding), 4);
    EXPECT_EQ(lan.bridges[2].root_path_cost(), 200U);
}

TEST(Stp, ASilentLinkIsNoticedWhenTheRootsInformationAges) {
    Lan lan(3, 2);
    lan.link({0, 0}, {1, 0});
    lan.link({1, 1}, {2, 0});
    lan.link({2, 1}, {0, 1});
    lan.run_for(15s);
    lan.links[2].carries = false;  // a link that stops carrying, ports up
    lan.run_for(3s);
    EXPECT_EQ(lan.bridges[2].port(0).state, PortState::blocking);  // max age not reached
    lan.run_for(10s);  // max age (6) + 2 x forward delay (2)
    EXPECT_EQ(lan.bridges[2].port(0).role, Role::root);
    EXPECT_EQ(lan.bridges[2].port(0).state, PortState::forwarding);
}

TEST(Stp, ATopologyChangeReachesTheRootAndShortensAgeing) {
    Lan lan(3, 3);
    lan.link({0, 0}, {1, 0});
    lan.link({1, 1}, {2, 0});
    lan.run_for(30s);  // the first changes (ports forwarding) are over
    ASSERT_FALSE(lan.bridges[2].short_ageing().has_value());
    std::uint64_t before = lan.bridges[0].topology_changes();
    // A second link between bridges 1 and 2: bridge 1's new port becomes
    // designated and forwards after 2 x forward delay, a change bridge 1
    // tells the root with a TCN.
    lan.link({1, 2}, {2, 1});
    // Forwarding after 4 s; the TCN, the root's answer and its next BPDUs
    // each wait at most a hold time or a hello (1 s).
    lan.run_for(7s);
    EXPECT_EQ(lan.count(Role::blocked), 1);
    EXPECT_GT(lan.bridges[0].topology_changes(), before);
    EXPECT_TRUE(lan.bridges[0].topology_change());
    // The root's TC flag spreads: every bridge ages MACs out fast.
    for (const Bridge& b : lan.bridges) {
        ASSERT_TRUE(b.short_ageing().has_value()) << &b - lan.bridges.data();
        EXPECT_EQ(*b.short_ageing(), 2s);
    }
    lan.run_for(20s);  // forward delay + max age after the last change
    for (const Bridge& b : lan.bridges) EXPECT_FALSE(b.topology_change());
}

TEST(Stp, ATcnIsAcknowledgedAndNotRepeated) {
    Lan lan(2, 1);
    lan.link({0, 0}, {1, 0});
    lan.run_for(30s);
    lan.bridges[1].port_down(0, lan.now);  // detection on a non-root bridge
    lan.bridges[1].port_up(0, lan.now);
    lan.deliver();
    lan.run_for(10s);
    // No TCN is left to repeat once the root acknowledged.
    int tcns = 0;
    for (int i = 0; i < 30; ++i) {
        lan.now += 100ms;
        lan.bridges[1].tick(lan.now);
        for (const Bridge::Sent& s : lan.bridges[1].take_outbox()) {
            tcns += s.bpdu.type == Bpdu::Type::tcn ? 1 : 0;
        }
    }
    EXPECT_EQ(tcns, 0);
}

TEST(Stp, OffForwardsEverythingAndSendsNothing) {
    Bridge b;
    b.set_ports(2);
    b.port_up(0, {});
    EXPECT_TRUE(b.forwarding(0));
    EXPECT_TRUE(b.forwarding(1));
    b.tick(stp::Time{} + 10s);
    EXPECT_TRUE(b.take_outbox().empty());
    EXPECT_FALSE(b.next_deadline().has_value());
}

TEST(Stp, PortsBeyondTwelveBitsNeverForward) {
    Bridge b;
    b.set_ports(stp::kMaxPorts + 1);
    b.enable({});
    b.port_up(stp::kMaxPorts, {});
    b.tick(stp::Time{} + 60s);
    EXPECT_FALSE(b.forwarding(stp::kMaxPorts));
}

// ---- the wire ----

std::vector<std::byte> bytes(std::initializer_list<int> v) {
    std::vector<std::byte> out;
    for (int b : v) out.push_back(static_cast<std::byte>(b));
    return out;
}

// A configuration BPDU as Linux 6.x sends it (tcpdump -xx of br0's port):
// root 8000.aa00..01, cost 0, bridge the same, port 0x8001, times in
// 1/256 s: age 0, max age 6 s, hello 1 s, forward delay 2 s.
std::vector<std::byte> linux_config() {
    return bytes({0x01, 0x80, 0xc2, 0x00, 0x00, 0x00, 0xaa, 0x00, 0x00, 0x00, 0x00, 0x01,
                  0x00, 0x26, 0x42, 0x42, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00,
                  0xaa, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00,
                  0xaa, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x06, 0x00,
                  0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
}

TEST(StpWire, ReadsALinuxConfigBpdu) {
    std::optional<Bpdu> b = stp::parse(linux_config());
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->type, Bpdu::Type::config);
    EXPECT_EQ(b->root, stp::make_bridge_id(0x8000, 0xaa00'0000'0001));
    EXPECT_EQ(b->bridge, b->root);
    EXPECT_EQ(b->root_cost, 0U);
    EXPECT_EQ(b->port, 0x8001);
    EXPECT_EQ(b->max_age, 6 * 256);
    EXPECT_EQ(b->hello, 256);
    EXPECT_EQ(b->forward_delay, 512);
}

TEST(StpWire, EncodesWhatItReads) {
    std::optional<Bpdu> b = stp::parse(linux_config());
    ASSERT_TRUE(b.has_value());
    std::vector<std::byte> out;
    stp::encode(*b, 0xaa00'0000'0001, out);
    EXPECT_EQ(out, linux_config());
    Bpdu tcn;
    tcn.type = Bpdu::Type::tcn;
    stp::encode(tcn, 0x0200'0000'0001, out);
    ASSERT_EQ(out.size(), 60U);
    EXPECT_EQ(out[13], std::byte{7});  // LLC 3 + TCN 4
    std::optional<Bpdu> back = stp::parse(out);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->type, Bpdu::Type::tcn);
}

TEST(StpWire, MalformedBpdusAreIgnored) {
    std::vector<std::byte> good = linux_config();
    // Every truncation: the 802.3 length then claims more than is there.
    for (std::size_t n = 0; n < 52; ++n) {
        std::vector<std::byte> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_FALSE(stp::parse(cut).has_value()) << n << " bytes";
    }
    auto broken = [&](std::size_t at, int value) {
        std::vector<std::byte> f = good;
        f[at] = static_cast<std::byte>(value);
        return stp::parse(f).has_value();
    };
    EXPECT_FALSE(broken(0, 0xff));   // not the bridge group address
    EXPECT_FALSE(broken(12, 0x08));  // an ethertype, not a length
    EXPECT_FALSE(broken(13, 0x01));  // a length too short for any BPDU
    EXPECT_FALSE(broken(13, 0x40));  // a length past the frame's end
    EXPECT_FALSE(broken(14, 0xaa));  // not LLC 42 42 03
    EXPECT_FALSE(broken(16, 0x13));
    EXPECT_FALSE(broken(17, 0x01));  // protocol id not 0
    EXPECT_FALSE(broken(20, 0x55));  // an unknown type
    EXPECT_FALSE(broken(44, 0x07));  // message age (7 s) beyond max age (6 s)
    EXPECT_FALSE(broken(48, 0x00));  // hello 0
    // A config BPDU whose length only covers a TCN's bytes.
    EXPECT_FALSE(broken(13, 0x07));
    // A receiving bridge is unchanged by what it cannot parse: parse() is
    // the only way in, so nothing reaches it.
    Bridge b;
    b.set_ports(1);
    b.enable({});
    b.port_up(0, {});
    stp::BridgeId root = b.root_id();
    for (std::size_t n = 0; n < good.size(); ++n) {
        std::vector<std::byte> f = good;
        f[n] = static_cast<std::byte>(~std::to_integer<int>(f[n]));
        if (auto got = stp::parse(f)) b.received(0, *got, {});
    }
    // Whatever parsed was a well-formed BPDU; the bridge is still sound.
    EXPECT_NE(b.root_id(), 0U);
    (void)root;
}

}  // namespace
}  // namespace ipnfs::test
