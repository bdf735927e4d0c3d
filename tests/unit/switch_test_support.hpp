// Helpers for the switch's unit tests: Ethernet frames built byte by byte, a
// clock the test moves, and a fixture that routes a frame and tells, for
// each port, the bytes it would receive.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus_test_support.hpp"
#include "policies/switch.hpp"

namespace ipnfs::test {

using Bytes = std::vector<std::byte>;
using Mac = policies::ethernet::Mac;

inline constexpr Mac kBroadcast = 0xffff'ffff'ffff;
inline constexpr Mac kMulticast = 0x0100'5e00'0001;  // an IPv4 multicast group

// A locally administered unicast address ending in n.
inline constexpr Mac station(std::uint32_t n) {
    return 0x0200'0000'0000 | n;
}

inline void put_mac(Bytes& out, Mac mac) {
    for (int shift = 40; shift >= 0; shift -= 8) out.push_back(std::byte((mac >> shift) & 0xff));
}
inline void put_u16(Bytes& out, std::uint16_t v) {
    out.push_back(std::byte(v >> 8));
    out.push_back(std::byte(v & 0xff));
}
inline void put_text(Bytes& out, std::string_view body) {
    for (char c : body) out.push_back(std::byte(c));
}

// An untagged IPv4 frame.
inline Bytes frame(Mac dst, Mac src, std::string_view body = "hello") {
    Bytes out;
    put_mac(out, dst);
    put_mac(out, src);
    put_u16(out, 0x0800);
    put_text(out, body);
    return out;
}

// The same frame with an 802.1Q tag.
inline Bytes tagged_frame(Mac dst, Mac src, std::uint16_t tci, std::string_view body = "hello") {
    Bytes out;
    put_mac(out, dst);
    put_mac(out, src);
    put_u16(out, 0x8100);
    put_u16(out, tci);
    put_u16(out, 0x0800);
    put_text(out, body);
    return out;
}

using PortSet = std::set<bus::PortId>;
// For each port a route names: the bytes it gets.
using Deliveries = std::map<bus::PortId, Bytes>;

inline PortSet ports_of(const Deliveries& d) {
    PortSet out;
    for (const auto& [port, bytes] : d) out.insert(port);
    return out;
}

// The route flattened, checking what every route must be: no port named
// twice, no variant without ports, at most two forms of the frame.
inline Deliveries flatten(const bus::Route& route, std::span<const std::byte> sent) {
    Deliveries out;
    for (bus::PortId port : route.to) {
        EXPECT_TRUE(out.emplace(port, Bytes(sent.begin(), sent.end())).second)
            << "port " << port << " named twice";
    }
    for (const bus::Route::Variant& v : route.variants()) {
        EXPECT_FALSE(v.to.empty()) << "a variant for nobody";
        for (bus::PortId port : v.to) {
            EXPECT_TRUE(out.emplace(port, v.payload).second) << "port " << port << " named twice";
        }
    }
    std::size_t forms = (route.to.empty() ? 0 : 1) + route.variants().size();
    EXPECT_LE(forms, 2u) << "more than two forms of one frame";
    return out;
}

// A steady clock that moves only when the test says so.
class FakeClock {
  public:
    [[nodiscard]] std::function<std::chrono::steady_clock::time_point()> source() {
        return [this] { return now_; };
    }
    void advance(std::chrono::steady_clock::duration d) { now_ += d; }

  private:
    std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
};

class SwitchTest : public ::testing::Test {
  protected:
    // A switch with `count` ports of which `attached` have a reader.
    void make(bus::PortId count, std::initializer_list<bus::PortId> attached) {
        sw_.on_ports(count);
        for (bus::PortId p : attached) sw_.on_attach(p);
    }

    Deliveries send(bus::PortId from, const Bytes& bytes) {
        route_.clear();
        sw_.route(from, bytes, route_);
        sw_.sent(from, route_);  // accepted, as the network does: it counts
        return flatten(route_, bytes);
    }
    PortSet send_to(bus::PortId from, const Bytes& bytes) { return ports_of(send(from, bytes)); }

    bus::Status run(std::string_view line) { return run_policy_command(sw_, line); }
    void run_ok(std::string_view lines) { run_policy_lines(sw_, lines); }
    [[nodiscard]] std::string described() const { return policy_describe(sw_); }
    [[nodiscard]] std::string stats() const { return policy_stats(sw_); }
    // The first stats line ("switch ...").
    [[nodiscard]] std::string summary() const {
        std::string s = stats();
        return s.substr(0, s.find('\n'));
    }
    // One counter of the first stats line.
    [[nodiscard]] std::uint64_t counter(std::string_view name) const {
        return stats_text::counter_of(summary(), name);
    }

    FakeClock clock_;
    policies::Switch sw_{clock_.source()};
    bus::Route route_;
};

}  // namespace ipnfs::test
