// Each policy's routing on arbitrary traffic: a network of the policy the
// input picks, ports that connect and leave, sends of arbitrary payloads
// (Ethernet frames for the switch, from a few stations, tagged or not;
// addresses for the group), settings changed in between, and receives.
// Whatever a port receives must be a message that was sent, byte for byte,
// or (switch) the same frame with its 802.1Q tag added, removed or
// rewritten; a port gets each message once at most and never its own unless
// it asked for loopback; and the network's counters add up: msgs_in is the
// sends accepted, msgs_out the messages taken, nothing dropped while every
// queue has room.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "bus/network.hpp"
#include "fuzz_support.hpp"

namespace ipnfs::fuzz {
namespace {

using Bytes = std::vector<std::byte>;

constexpr std::size_t kHeader = 14;  // Ethernet: dst, src, ethertype
constexpr std::size_t kTag = 4;      // 802.1Q: TPID, TCI
constexpr std::size_t kLargest = bus::Limits::kMaxMtu;

struct Sent {
    bus::PortId from;
    bool to_self;  // the sender may get it: loopback, or it named itself (group)
    Bytes payload;
};

bool tagged(std::span<const std::byte> f) {
    return f.size() >= kHeader + kTag && f[12] == std::byte{0x81} && f[13] == std::byte{0x00};
}

std::uint16_t tci(std::span<const std::byte> f) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(f[14]) << 8 |
                                      std::to_integer<unsigned>(f[15]));
}

bool valid_vid(std::uint16_t tci) {
    unsigned vid = tci & 0x0fffU;
    return vid >= 1 && vid <= 4094;
}

// The forms the switch may give a frame at a port's edge.
bool switch_form(std::span<const std::byte> sent, std::span<const std::byte> got) {
    if (sent.size() < kHeader) return false;
    auto head = [](std::span<const std::byte> f) { return f.first(12); };
    if (tagged(sent)) {
        // Stripped: the tag is gone, the rest as sent.
        if (got.size() + kTag == sent.size() && std::ranges::equal(head(got), head(sent)) &&
            std::ranges::equal(got.subspan(12), sent.subspan(12 + kTag))) {
            return true;
        }
        // Retagged (a priority tag gets its VID): PCP and DEI kept.
        return got.size() == sent.size() && tagged(got) &&
               std::ranges::equal(head(got), head(sent)) &&
               std::ranges::equal(got.subspan(16), sent.subspan(16)) &&
               (tci(got) & 0xf000U) == (tci(sent) & 0xf000U) && valid_vid(tci(got));
    }
    // Tagged on the way out: no priority of its own.
    return got.size() == sent.size() + kTag && tagged(got) &&
           std::ranges::equal(head(got), head(sent)) &&
           std::ranges::equal(got.subspan(12 + kTag), sent.subspan(12)) &&
           (tci(got) & 0xf000U) == 0 && valid_vid(tci(got));
}

std::uint64_t stat(const std::string& stats, std::string_view key) {
    std::string prefix = fmt::format("\n{} ", key);
    std::size_t at = stats.find(prefix);
    require(at != std::string::npos, "a stats line", key);
    return std::stoull(stats.substr(at + prefix.size()));
}

class Run {
  public:
    Run(FuzzedDataProvider& in, std::string policy) : in_(in), policy_(std::move(policy)) {
        require(bus::Network::create("route", {}, catalog(), policy_, net_).ok(), "a network");
        ports_ = in_.ConsumeIntegralInRange<bus::PortId>(2, 8);
        require(net_->control(fmt::format("ports {}\nmtu {}\nqueue 1024", ports_, kLargest)).ok(),
                "settings");
        if (in_.ConsumeBool()) require(net_->control("lossless on").ok(), "lossless");
        conns_.resize(ports_);
        loopback_.resize(ports_, false);
        dest_.resize(ports_, bus::To::broadcast);
    }

    void step() {
        switch (in_.ConsumeIntegralInRange(0, 5)) {
            case 0:
                toggle(port());
                break;
            case 1:
                send(port(), raw());
                break;
            case 2:
                send(port(), frame());
                break;
            case 3:
                send(port(), large());
                break;
            case 4:
                setting();
                break;
            default:
                drain(port());
        }
    }

    void finish() {
        for (bus::PortId p = 0; p < ports_; ++p) {
            if (conns_[p]) toggle(p);
        }
        std::string stats = net_->stats();
        require(stat(stats, "msgs_in") == accepted_, "msgs_in counts the sends accepted", stats);
        require(stat(stats, "msgs_out") == received_, "msgs_out counts the messages taken", stats);
        // A frame the switch must tag past the largest message is dropped
        // (and counted): the only loss while every queue has room.
        if (largest_sent_ + kTag <= kLargest) {
            require(stat(stats, "drops") == 0, "nothing dropped", stats);
        }
    }

  private:
    bus::PortId port() { return in_.ConsumeIntegralInRange<bus::PortId>(0, ports_ - 1); }

    Bytes bytes(std::size_t len) {
        auto v = in_.ConsumeBytes<std::uint8_t>(len);
        Bytes out(v.size());
        if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
        return out;
    }

    Bytes raw() { return bytes(in_.ConsumeIntegralInRange<std::size_t>(0, 256)); }

    // A frame between a few stations (one a group address), so that the
    // switch learns and forwards, tagged with a VID near the ones set.
    Bytes frame() {
        auto station = [&](std::uint8_t n) {
            // Station 0 is the broadcast address; the others are unicast.
            return n == 0 ? Bytes(6, std::byte{0xff})
                          : Bytes{std::byte{2}, {}, {}, {}, {}, std::byte{n}};
        };
        Bytes f = station(in_.ConsumeIntegralInRange<std::uint8_t>(0, 3));
        Bytes src = station(in_.ConsumeIntegralInRange<std::uint8_t>(0, 3));
        f.insert(f.end(), src.begin(), src.end());
        if (in_.ConsumeBool()) {
            auto t = static_cast<std::uint16_t>(in_.ConsumeIntegralInRange(0, 4) |
                                                (in_.ConsumeIntegral<std::uint8_t>() & 0xf0) << 8);
            f.insert(f.end(),
                     {std::byte{0x81}, std::byte{0x00}, std::byte(t >> 8), std::byte(t & 0xff)});
        }
        f.insert(f.end(), {std::byte{0x08}, std::byte{0x00}});
        Bytes body = bytes(in_.ConsumeIntegralInRange<std::size_t>(0, 64));
        f.insert(f.end(), body.begin(), body.end());
        return f;
    }

    // Around the largest message: too large to send, or too large to tag.
    Bytes large() {
        Bytes f = frame();
        f.resize(kLargest - kTag + in_.ConsumeIntegralInRange<std::size_t>(0, 2 * kTag),
                 std::byte{0x5a});
        return f;
    }

    void toggle(bus::PortId p) {
        if (conns_[p]) {
            drain(p);
            net_->disconnect(*conns_[p]);
            conns_[p].reset();
            return;
        }
        bool reads = in_.ConsumeBool();
        bool writes = !reads || in_.ConsumeBool();
        bus::Connection c;
        require(net_->connect(p, reads, writes, c).ok(), "a port connects");
        conns_[p] = c;
    }

    bus::Address address() {
        auto to = static_cast<bus::To>(in_.ConsumeIntegralInRange(0, 4));
        auto lower = in_.ConsumeIntegralInRange<std::uint32_t>(0, 9);
        auto upper = std::max(lower, in_.ConsumeIntegralInRange<std::uint32_t>(0, 9));
        return {to, lower, to == bus::To::multicast ? upper : to == bus::To::port ? 0 : lower};
    }

    void send(bus::PortId p, Bytes payload) {
        bus::Address to = address();
        if (!conns_[p] || !conns_[p]->writes) return;
        bus::Status s = net_->send(*conns_[p], payload, to);
        if (!s.ok()) {
            if (payload.size() > kLargest) {
                require_error(s, {EMSGSIZE}, "a message past the largest");
            } else {
                require_error(s, {EHOSTUNREACH, EOPNOTSUPP}, "a send refused");
            }
            return;
        }
        require(payload.size() <= kLargest, "a message past the largest sent");
        ++accepted_;
        largest_sent_ = std::max(largest_sent_, payload.size());
        // The group sends a unicast or anycast to whoever the sender names,
        // itself included (docs/usage.md, "Group policy").
        bus::To kind = to.to == bus::To::standard ? dest_[p] : to.to;
        bool named = policy_ == "group" && (kind == bus::To::port || kind == bus::To::anycast);
        sent_.push_back({p, loopback_[p] || named, std::move(payload)});
    }

    // A setting of the kinds routing depends on, with values near the ones
    // frames use; a verb of another policy is refused, which is fine.
    void setting() {
        bus::PortId p = port();
        auto n = in_.ConsumeIntegralInRange(0, 4);
        std::string line;
        bus::To dest = bus::To::broadcast;
        switch (in_.ConsumeIntegralInRange(0, 9)) {
            case 0:
                line = fmt::format("loopback {} {}", p, n % 2 ? "on" : "off");
                break;
            case 1:
                line = n == 0 ? fmt::format("vlan {} none", p) : fmt::format("vlan {} {}", p, n);
                break;
            case 2:
                line = n == 0
                           ? fmt::format("trunk {} none", p)
                           : fmt::format("trunk {} {},{}", p, n, in_.ConsumeIntegralInRange(1, 4));
                break;
            case 3:
                line = fmt::format("mirror {} {}", p, n % 2 ? "on" : "off");
                break;
            case 4:
                line = n == 0 ? "flush" : fmt::format("maclimit {}", n);
                break;
            case 5:
                line =
                    n == 0 ? fmt::format("member {} none", p) : fmt::format("member {} {}", p, n);
                break;
            case 6: {
                constexpr std::array<const char*, 4> kForms = {"broadcast", "port", "anycast",
                                                               "multicast"};
                constexpr std::array<bus::To, 4> kKinds = {bus::To::broadcast, bus::To::port,
                                                           bus::To::anycast, bus::To::multicast};
                line = n == 0 ? fmt::format("dest {} broadcast", p)
                              : fmt::format("dest {} {} {}", p, kForms[n % 4], n);
                dest = n == 0 ? bus::To::broadcast : kKinds[n % 4];
                break;
            }
            case 7:
                line = fmt::format("subscribe {} {}", p, in_.ConsumeBytesAsString(2).c_str());
                break;
            case 8:
                line = fmt::format("unsubscribe {} all", p);
                break;
            default:
                line = fmt::format("expire {}", n + 1);
        }
        bus::Status s = net_->control(line);
        if (!s.ok()) {
            require_error(s, {EINVAL, ENOSPC}, "a setting");
            return;
        }
        if (line.starts_with("loopback")) loopback_[p] = n % 2 == 1;
        if (line.starts_with("dest")) dest_[p] = dest;
    }

    void drain(bus::PortId p) {
        if (!conns_[p] || !conns_[p]->reads) return;
        for (;;) {
            bus::Received got = net_->receive(*conns_[p], nullptr);
            if (got.outcome != bus::Outcome::message) break;
            check(p, *got.message);
        }
    }

    void check(bus::PortId p, const bus::Message& m) {
        require(!m.is_event(), "an event nobody asked for");
        require(seen_.emplace(p, m.seq()).second, "a port gets a message once");
        ++received_;
        for (const Sent& s : sent_) {
            if (s.from != m.from()) continue;
            bool same = std::ranges::equal(s.payload, m.payload()) ||
                        (policy_ == "switch" && switch_form(s.payload, m.payload()));
            if (same && (p != s.from || s.to_self)) return;
        }
        fail(p == m.from() ? "a port got its own message without loopback"
                           : "a message nobody sent");
    }

    FuzzedDataProvider& in_;
    const std::string policy_;
    std::shared_ptr<bus::Network> net_;
    bus::PortId ports_ = 0;
    std::vector<std::optional<bus::Connection>> conns_;
    std::vector<bool> loopback_;
    std::vector<bus::To> dest_;  // the group's default destinations, as set
    std::vector<Sent> sent_;
    std::set<std::pair<bus::PortId, std::uint64_t>> seen_;
    std::uint64_t accepted_ = 0;
    std::uint64_t received_ = 0;
    std::size_t largest_sent_ = 0;
};

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs::fuzz;
    FuzzedDataProvider in(data, size);
    const auto& names = policy_names();
    Run run(in, names[in.ConsumeIntegralInRange<std::size_t>(0, names.size() - 1)]);
    for (int op = 0; op < 256 && in.remaining_bytes() > 0; ++op) run.step();
    run.finish();
    return 0;
}
