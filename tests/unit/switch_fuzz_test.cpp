// The switch against input nobody planned: frames too short to be Ethernet,
// arbitrary bytes, and random frames under random settings checked against
// a plain model of who may get what.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using namespace std::chrono_literals;

TEST_F(SwitchTest, FramesTooShortForTheirHeaderAreDroppedAndCounted) {
    make(4, {0, 1, 2, 3});
    std::uint64_t sent = 0;
    for (std::size_t len = 0; len < 18; ++len) {
        // Every short length, tagged where a tag could start (length 14 and
        // up), with addresses that would be learned if the frame were taken.
        Bytes b = tagged_frame(kBroadcast, station(len + 1), 10);
        b.resize(len);
        if (len < 14) {
            EXPECT_TRUE(send_to(1, b).empty()) << len;
            ++sent;
            Bytes untagged = frame(kBroadcast, station(len + 1));
            untagged.resize(len);
            EXPECT_TRUE(send_to(1, untagged).empty()) << len;
            ++sent;
        } else {
            EXPECT_TRUE(send_to(1, b).empty()) << "tag cut short at length " << len;
            ++sent;
        }
    }
    EXPECT_EQ(counter("malformed"), sent);
    EXPECT_EQ(counter("mac_entries"), 0u);
    EXPECT_NE(stats().find("swport 1 malformed " + std::to_string(sent) + " vlan_drops 0\n"),
              std::string::npos)
        << stats();
    // The switch still works.
    EXPECT_EQ(send_to(1, frame(kBroadcast, station(1))), (PortSet{0, 2, 3}));
}

TEST_F(SwitchTest, TheShortestWholeFramesAreTaken) {
    make(4, {0, 1});
    run_ok("trunk 0 10");
    Bytes header = frame(kBroadcast, station(1), "");
    ASSERT_EQ(header.size(), 14u);
    Deliveries d = send(1, header);
    EXPECT_EQ(ports_of(d), (PortSet{0}));
    EXPECT_EQ(d[0], header);
    Bytes tagged(header.begin(), header.begin() + 12);
    put_u16(tagged, 0x8100);
    put_u16(tagged, 10);
    ASSERT_EQ(tagged.size(), 16u);
    EXPECT_TRUE(send_to(0, tagged).empty()) << "a tag needs the ethertype after it";
    put_u16(tagged, 0x0800);
    d = send(0, tagged);
    EXPECT_EQ(ports_of(d), (PortSet{}));  // VLAN 10 has no other member
    run_ok("vlan 1 10");
    d = send(0, tagged);
    EXPECT_EQ(d[1], Bytes(header.begin(), header.end())) << "an 18-byte tagged frame, untagged";
    EXPECT_EQ(counter("malformed"), 1u);
}

TEST_F(SwitchTest, ArbitraryBytesNeverBreakIt) {
    make(16, {0, 1, 2, 3, 4, 5, 6, 7});
    run_ok("vlan 1 none\ntrunk 1 1,2,3\ntrunk 2 4094\nmirror 3 on\nmaclimit 8");
    std::mt19937 rng(1234);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<std::size_t> len(0, 100);
    for (int i = 0; i < 20000; ++i) {
        Bytes b(i % 500 == 0 ? 9000 : len(rng));
        for (auto& x : b) x = std::byte(byte(rng));
        if (b.size() >= 14 && i % 3 == 0) {
            b[12] = std::byte{0x81};
            b[13] = std::byte{0x00};
        }
        auto from = static_cast<bus::PortId>(i % 16);
        PortSet to = send_to(from, b);
        ASSERT_FALSE(to.contains(from)) << i;
        for (bus::PortId p : to) ASSERT_LT(p, 8u) << "a port without a reader, at " << i;
    }
}

// Settings and attachment as the test set them, and what a frame may do
// under them.
struct Model {
    struct Port {
        std::uint16_t untagged = 1;  // 0: none
        std::set<std::uint16_t> trunk;
        bool mirror = false;
        bool attached = false;
    };
    std::vector<Port> ports;

    [[nodiscard]] bool carries(bus::PortId p, std::uint16_t v) const {
        return ports[p].untagged == v || ports[p].trunk.contains(v);
    }
    [[nodiscard]] std::optional<std::uint16_t> vlan_of(bus::PortId from, const Bytes& f) const {
        bool tagged = f[12] == std::byte{0x81} && f[13] == std::byte{0x00};
        std::uint16_t vid = tagged ? ((std::to_integer<unsigned>(f[14]) & 0x0f) << 8) |
                                         std::to_integer<unsigned>(f[15])
                                   : 0;
        if (vid == 0) {
            if (ports[from].untagged == 0) return std::nullopt;
            return ports[from].untagged;
        }
        if (!ports[from].trunk.contains(vid)) return std::nullopt;
        return vid;
    }
};

TEST_F(SwitchTest, RandomFramesUnderRandomSettingsKeepEveryPromise) {
    constexpr int kSteps = 30000;
    std::mt19937 rng(20240607);
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    Model model;
    auto resize = [&](bus::PortId count) {
        for (bus::PortId p = count; p < model.ports.size(); ++p) {
            if (model.ports[p].attached) sw_.on_detach(p);  // as the network does
        }
        model.ports.resize(count);
        sw_.on_ports(count);
    };
    resize(12);
    const std::vector<std::uint16_t> vlans{1, 2, 3, 4094};
    auto some_vlan = [&] { return vlans[pick(0, static_cast<int>(vlans.size()) - 1)]; };

    // What the walk went through, so a change that stops it reaching a case
    // shows here rather than as a test that quietly checks less.
    int dropped = 0, flooded = 0, learned = 0, two_forms = 0, mirrored = 0;
    for (int step = 0; step < kSteps; ++step) {
        auto count = static_cast<bus::PortId>(model.ports.size());
        auto port = static_cast<bus::PortId>(pick(0, static_cast<int>(count) - 1));
        int what = pick(0, 99);
        if (what < 8) {
            Model::Port& p = model.ports[port];
            p.attached ? sw_.on_detach(port) : sw_.on_attach(port);
            p.attached = !p.attached;
        } else if (what < 11) {
            std::uint16_t v = pick(0, 7) == 0 ? 0 : some_vlan();
            run_ok(fmt::format("vlan {} {}", port, v == 0 ? "none" : std::to_string(v)));
            model.ports[port].untagged = v;
        } else if (what < 14) {
            std::set<std::uint16_t> t;
            for (int n = pick(0, 3); n > 0; --n) t.insert(some_vlan());
            run_ok(fmt::format("trunk {} {}", port,
                               t.empty() ? "none" : fmt::format("{}", fmt::join(t, ","))));
            model.ports[port].trunk = t;
        } else if (what < 15) {
            bool on = pick(0, 2) == 0;
            run_ok(fmt::format("mirror {} {}", port, on ? "on" : "off"));
            model.ports[port].mirror = on;
        } else if (what < 16) {
            run_ok(fmt::format("expire {}\nmaclimit {}", pick(1, 100), pick(1, 20)));
        } else if (what < 17) {
            std::string before = described();
            const char* bad[] = {"vlan {} 0",   "vlan {} 4095", "trunk {} 1,,2", "trunk {} x",
                                 "mirror {} 1", "vlan {} on",   "trunk {} 5000"};
            std::string line = fmt::format(fmt::runtime(bad[pick(0, 6)]), port);
            ASSERT_FALSE(run(line).ok()) << line;
            ASSERT_FALSE(run(fmt::format("vlan {} 5", count)).ok());
            ASSERT_EQ(described(), before) << line;
        } else if (what < 18) {
            resize(static_cast<bus::PortId>(pick(1, 16)));
        } else if (what < 19) {
            run_ok("flush");
        } else if (what < 25) {
            clock_.advance(std::chrono::seconds(pick(0, 60)));
        } else {
            // A frame: mostly well formed, from a small set of stations, so
            // that learning, moves and the limit all happen.
            Mac dst =
                pick(0, 4) == 0 ? (pick(0, 1) ? kBroadcast : kMulticast) : station(pick(1, 10));
            Mac src = pick(0, 20) == 0 ? kMulticast : station(pick(1, 10));
            Bytes f;
            int shape = pick(0, 9);
            if (shape < 5) {
                f = frame(dst, src, "x");
            } else if (shape < 9) {
                auto tci = static_cast<std::uint16_t>(pick(0, 15) << 12 |
                                                      (pick(0, 4) == 0 ? 0 : some_vlan()));
                f = tagged_frame(dst, src, tci, "y");
            } else {
                f.resize(pick(0, 17));
                for (auto& b : f) b = std::byte(pick(0, 255));
            }
            Deliveries d = send(port, f);
            SCOPED_TRACE(fmt::format("step {} from port {}", step, port));
            ASSERT_FALSE(d.contains(port)) << "sent back to the sender";
            if (model.ports[port].mirror) {
                ASSERT_TRUE(d.empty()) << "a mirror port's frame was forwarded";
                ++dropped;
                continue;
            }
            std::optional<std::uint16_t> v;
            if (f.size() >= 14 &&
                !(f[12] == std::byte{0x81} && f[13] == std::byte{0} && f.size() < 18)) {
                v = model.vlan_of(port, f);
            }
            if (!v) {
                ASSERT_TRUE(d.empty());
                ++dropped;
                continue;
            }
            PortSet flood;
            for (bus::PortId q = 0; q < count; ++q) {
                const Model::Port& p = model.ports[q];
                if (q != port && p.attached && (p.mirror || model.carries(q, *v))) flood.insert(q);
            }
            PortSet got = ports_of(d);
            for (bus::PortId q : got) ASSERT_TRUE(flood.contains(q)) << "port " << q;
            if ((f[0] & std::byte{1}) != std::byte{0}) {
                ASSERT_EQ(got, flood) << "a group address floods";
                flooded += got.size() > 1 ? 1 : 0;
            } else if (got != flood) {
                ++learned;
                // Learned: at most one port other than mirrors.
                int others = 0;
                for (bus::PortId q : got) others += model.ports[q].mirror ? 0 : 1;
                ASSERT_LE(others, 1);
                for (bus::PortId q = 0; q < count; ++q) {
                    if (flood.contains(q) && model.ports[q].mirror) {
                        ASSERT_TRUE(got.contains(q)) << "mirror " << q;
                    }
                }
            }
            // Each port's bytes are the frame in its form.
            bool sent_tagged = f[12] == std::byte{0x81} && f[13] == std::byte{0};
            std::uint16_t pcp =
                sent_tagged ? std::to_integer<std::uint16_t>(f[14]) << 8 & 0xf000 : 0;
            Bytes plain = f;
            if (sent_tagged) plain.erase(plain.begin() + 12, plain.begin() + 16);
            Bytes tagged = plain;
            tagged.insert(tagged.begin() + 12, {std::byte{0x81}, std::byte{0},
                                                std::byte((pcp | *v) >> 8), std::byte(*v & 0xff)});
            two_forms += route_.variants().size() + (route_.to.empty() ? 0 : 1) == 2 ? 1 : 0;
            for (bus::PortId q : got) mirrored += model.ports[q].mirror ? 1 : 0;
            for (const auto& [q, bytes] : d) {
                ASSERT_EQ(bytes, model.ports[q].untagged == *v ? plain : tagged) << "port " << q;
            }
        }
    }
    EXPECT_GT(dropped, 1000);
    EXPECT_GT(flooded, 1000);
    EXPECT_GT(learned, 300);
    EXPECT_GT(two_forms, 1000);
    EXPECT_GT(mirrored, 1000);
}

}  // namespace
}  // namespace ipnfs::test
