// "A plugin can do everything a built-in can", as tests.  Each built-in
// policy runs two ways: as the daemon runs it (its own bus::Policy, from the
// catalog) and compiled as a plugin (tests/plugins/builtin_plugin.cpp: the
// same code behind the C table, loaded by the catalog from a directory and
// driven through AbiPolicy).  One script drives both, every answer goes to a
// transcript, and the two transcripts must be equal: verbs, link type,
// routes (as sets of ports per form of the message), refusals, ctl answers,
// describe, stats, reset_port.
//
// The rules every policy keeps (only receiving ports named, none twice, a
// refusal carries an errno and a reason and names nobody) run against each
// of those, against the topic example, and against a plugin of your own:
//
//     IPNFS_CONFORMANCE_PLUGIN=/path/to/NAME.so ipnfs_unit_tests
//         --gtest_filter='*PolicyRules*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "policies/catalog.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::PortId;

// Where the built-ins compiled as plugins are: plugin_hub, plugin_switch,
// plugin_group.
const policies::Catalog& plugin_catalog() {
    static const policies::Catalog catalog(IPNFS_TEST_PLUGIN_DIR);
    return catalog;
}

const policies::Catalog& builtin_catalog() {
    static const policies::Catalog catalog;
    return catalog;
}

std::unique_ptr<bus::Policy> make(const policies::Catalog& catalog, const std::string& name) {
    bus::MadePolicy made = catalog.make(name);
    EXPECT_TRUE(IsOk(made.status)) << name;
    return std::move(made.policy);
}

// Queues that fill by port, so load-aware choices (the group's anycast)
// have something to choose by; capacity says who receives, as the
// network's does.
class FakeLoad final : public bus::Load {
  public:
    std::vector<std::uint32_t> queued_by_port = std::vector<std::uint32_t>(16, 0);
    std::vector<bool> receiving = std::vector<bool>(16, false);
    [[nodiscard]] std::uint32_t queued(PortId port) const override {
        return port < queued_by_port.size() ? queued_by_port[port] : 0;
    }
    [[nodiscard]] std::uint32_t capacity(PortId port) const override {
        return port < receiving.size() && receiving[port] ? 64 : 0;
    }
};

std::string hex(std::span<const std::byte> bytes) {
    std::string out;
    for (std::byte b : bytes) out += fmt::format("{:02x}", std::to_integer<unsigned>(b));
    return out;
}

std::string ports(std::vector<PortId> to) {
    std::ranges::sort(to);
    return fmt::format("{}", fmt::join(to, " "));
}

// Drives one policy through a script and writes down every answer.  Names
// of the policy in its answers are written as `alias`, so a built-in and
// its plugin (plugin_NAME) read alike.
class Transcript {
  public:
    Transcript(bus::Policy& policy, std::string alias) : policy_(policy), alias_(std::move(alias)) {
        for (const bus::Command& c : policy_.commands()) {
            log_ +=
                fmt::format("verb {} '{}' {} {} holder {} net_admin {}: {}\n", c.verb, c.args,
                            c.nargs, c.optional, static_cast<int>(c.holder), c.net_admin, c.help);
        }
        log_ += fmt::format("ethernet {}\n", policy_.ethernet());
    }

    void ports(PortId count) {
        policy_.on_ports(count);
        load_.receiving.resize(std::max<std::size_t>(count, load_.receiving.size()));
        log_ += fmt::format("ports {}\n", count);
    }
    void attach(PortId port) {
        policy_.on_attach(port);
        load_.receiving[port] = true;
    }
    void detach(PortId port) {
        policy_.on_detach(port);
        load_.receiving[port] = false;
    }
    void reset_port(PortId port) {
        policy_.reset_port(port);
        log_ += fmt::format("reset_port {}\n", port);
    }
    void queued(PortId port, std::uint32_t n) { load_.queued_by_port[port] = n; }

    // A route that is not `accepted` is one the network tried and gave up
    // (the send waits, or a non-blocking write got EAGAIN): no sent().
    void send(PortId from, std::span<const std::byte> payload, bus::Address to = {},
              bool accepted = true) {
        route_.clear();
        route_.address = to;
        route_.load = &load_;
        policy_.route(from, payload, route_);
        if (accepted) policy_.sent(from, route_);
        log_ += fmt::format("send from {} to {} {}-{}{}: ", from, static_cast<int>(to.to), to.lower,
                            to.upper, accepted ? "" : " not accepted");
        if (!route_.refused.ok()) {
            log_ += fmt::format("refused {} {}\n", static_cast<int>(route_.refused.code),
                                normal(route_.refused.reason));
            return;
        }
        // The ports per form of the message, forms in byte order.
        std::map<std::string, std::vector<PortId>> forms;
        auto& as_sent = forms[hex(payload)];
        as_sent.insert(as_sent.end(), route_.to.begin(), route_.to.end());
        for (const bus::Route::Variant& v : route_.variants()) {
            auto& form = forms[hex(v.payload)];
            form.insert(form.end(), v.to.begin(), v.to.end());
        }
        for (const auto& [bytes, to_ports] : forms) {
            if (!to_ports.empty()) log_ += fmt::format("[{}] {}; ", bytes, test::ports(to_ports));
        }
        log_ += "\n";
    }
    void send(PortId from, std::string_view text, bus::Address to = {}) {
        send(from, bytes(text), to);
    }

    void ctl(std::string_view line) {
        bus::Status s = run_policy_command(policy_, line);
        log_ += fmt::format("ctl '{}': {} {}\n", line, static_cast<int>(s.code), normal(s.reason));
    }
    void describe() {
        std::string out;
        policy_.describe(out);
        log_ += "describe:\n" + out;
    }
    void stats() {
        std::string out;
        policy_.stats(out);
        log_ += "stats:\n" + out;
    }

    [[nodiscard]] const std::string& log() const { return log_; }

  private:
    // Its own name as the alias: "the plugin_hub policy" reads "the hub policy".
    [[nodiscard]] std::string normal(std::string text) const {
        std::string name(policy_.name());
        if (name == alias_) return text;
        for (std::size_t at = text.find(name); at != std::string::npos;
             at = text.find(name, at + alias_.size())) {
            text.replace(at, name.size(), alias_);
        }
        return text;
    }

    bus::Policy& policy_;
    std::string alias_;
    std::string log_;
    bus::Route route_;
    FakeLoad load_;
};

constexpr bus::Address kAnycast7{bus::To::anycast, 7, 7};

void hub_script(Transcript& t) {
    t.ports(6);
    for (PortId p = 0; p < 5; ++p) t.attach(p);
    t.send(1, "a");
    t.ctl("loopback 1 on");
    t.send(1, "b");
    t.describe();
    t.reset_port(1);
    t.describe();
    t.send(1, "c");
    t.send(0, "x", kAnycast7);
    t.send(0, "x", {bus::To::port, 1, 0});
    t.detach(2);
    t.send(0, "d");
    t.ctl("loopback 9 on");
    t.ctl("loopback 1 maybe");
    t.ctl("loopback 1");
    t.ctl("nonsense");
    t.ports(8);
    t.attach(7);
    t.send(7, "e");
    t.stats();
}

void switch_script(Transcript& t) {
    t.ports(6);
    for (PortId p = 0; p < 6; ++p) t.attach(p);
    t.ctl("vlan 2 20");
    t.ctl("trunk 3 10,20");
    t.ctl("mirror 5 on");
    t.ctl("vlan 4 none");
    t.ctl("trunk 4 20");
    t.send(0, frame(kBroadcast, station(1)));
    t.send(1, frame(station(1), station(2)));
    t.send(3, tagged_frame(kBroadcast, station(3), 20));
    t.send(2, frame(station(3), station(4)));
    t.send(0, tagged_frame(kMulticast, station(1), 0x2000));  // priority tag
    t.send(4, tagged_frame(station(4), station(5), 0xa014));  // PCP 5, VLAN 20
    t.send(0, tagged_frame(kBroadcast, station(1), 30));      // a VLAN port 0 lacks
    t.send(0, bytes("short"));                                // malformed
    t.send(0, tagged_frame(kBroadcast, station(1), 30), {}, false);
    t.send(0, bytes("short"), {}, false);
    t.send(0, frame(kBroadcast, station(1)), kAnycast7);
    t.detach(0);
    t.send(1, frame(station(1), station(2)));  // its port gone: floods
    t.reset_port(2);
    t.ctl("vlan 9 1");
    t.ctl("trunk 1 5000");
    t.ctl("expire 0");
    t.ctl("maclimit 2");
    t.ctl("flush");
    t.describe();
    t.stats();
}

void group_script(Transcript& t) {
    t.ports(6);
    for (PortId p = 0; p < 5; ++p) t.attach(p);
    t.ctl("member 1 7");
    t.ctl("member 2 7");
    t.ctl("member 3 9");
    t.ctl("dest 4 anycast 7");
    t.ctl("loopback 0 on");
    t.send(0, "all");
    t.send(0, "one", {bus::To::port, 3, 0});
    t.send(0, "nobody", {bus::To::port, 5, 0});
    t.queued(1, 4);
    for (int i = 0; i < 3; ++i) t.send(0, "any", kAnycast7);
    t.queued(1, 0);
    for (int i = 0; i < 3; ++i) t.send(0, "any", kAnycast7);
    t.send(0, "nobody", {bus::To::anycast, 8, 8});
    t.send(0, "many", {bus::To::multicast, 7, 9});
    t.send(4, "default");
    t.send(1, bytes("again"), {bus::To::broadcast, 0, 0}, false);
    t.describe();
    t.stats();
    t.reset_port(0);
    t.reset_port(4);
    t.describe();
    t.detach(2);
    t.send(0, "any", kAnycast7);
    t.send(0, "any", kAnycast7);
    t.ctl("member 9 1");
    t.ctl("member 1 -1");
    t.ctl("dest 1 nowhere");
    t.ctl("dest 1 multicast 3-1");
    t.stats();
}

struct Builtin {
    std::string name;
    std::function<void(Transcript&)> script;
};

std::ostream& operator<<(std::ostream& os, const Builtin& b) {
    return os << b.name;
}

class PolicyConformance : public ::testing::TestWithParam<Builtin> {};

TEST_P(PolicyConformance, TheBuiltinAndItsPluginAnswerAlike) {
    const Builtin& b = GetParam();
    auto direct = make(builtin_catalog(), b.name);
    auto plugin = make(plugin_catalog(), "plugin_" + b.name);
    ASSERT_NE(direct, nullptr);
    ASSERT_NE(plugin, nullptr);
    EXPECT_EQ(direct->name(), b.name);
    EXPECT_EQ(plugin->name(), "plugin_" + b.name) << "the table's name, as any plugin's";
    Transcript built_in(*direct, b.name);
    Transcript as_plugin(*plugin, b.name);
    b.script(built_in);
    b.script(as_plugin);
    EXPECT_EQ(built_in.log(), as_plugin.log());
}

INSTANTIATE_TEST_SUITE_P(Builtins, PolicyConformance,
                         ::testing::Values(Builtin{"hub", hub_script},
                                           Builtin{"switch", switch_script},
                                           Builtin{"group", group_script}),
                         [](const auto& info) { return info.param.name; });

// ---- the rules every policy keeps, built in or not ----

struct Subject {
    std::string label;  // a test name: letters, digits, '_'
    std::function<std::unique_ptr<bus::Policy>()> make;
};

std::ostream& operator<<(std::ostream& os, const Subject& s) {
    return os << s.label;
}

std::vector<Subject> subjects() {
    std::vector<Subject> all;
    for (std::string name : {"hub", "switch", "group"}) {
        all.push_back({name, [name] { return make(builtin_catalog(), name); }});
        all.push_back(
            {"plugin_" + name, [name] { return make(plugin_catalog(), "plugin_" + name); }});
    }
    all.push_back({"topic", [] {
                       static const policies::Catalog catalog(IPNFS_PLUGIN_DIR);
                       return make(catalog, "topic");
                   }});
    // A plugin of your own: IPNFS_CONFORMANCE_PLUGIN=/path/to/NAME.so.
    if (const char* path = std::getenv("IPNFS_CONFORMANCE_PLUGIN"); path != nullptr && *path) {
        std::filesystem::path file(path);
        std::string name = file.stem().string();
        all.push_back({"yours", [dir = file.parent_path().string(), name] {
                           static const policies::Catalog catalog(dir);
                           return make(catalog, name);
                       }});
    }
    return all;
}

class PolicyRules : public ::testing::TestWithParam<Subject> {};

// Payloads any policy may get: frames for the switch, topics for topic,
// and bytes that are neither.
std::vector<Bytes> payloads() {
    std::vector<Bytes> all = {
        frame(kBroadcast, station(1)),
        frame(station(1), station(2)),
        frame(station(2), station(1)),
        tagged_frame(kMulticast, station(3), 20),
        tagged_frame(station(1), station(3), 0x2000),
        tagged_frame(kBroadcast, station(4), 10),
    };
    for (std::string_view text : {"temp/kitchen 21", "x", "", "humidity"}) {
        all.emplace_back(bytes(text).begin(), bytes(text).end());
    }
    return all;
}

// Words a ctl line of any policy may hold; many lines fail, which is the
// point: a failure must say why.
constexpr std::array<std::string_view, 16> kWords = {
    "0",  "1",     "3",         "7",       "9", "on", "off", "none",
    "10", "10,20", "broadcast", "anycast", "x", "*",  "all", "-1"};

TEST_P(PolicyRules, NamesOnlyReceivingPortsOnceAndRefusesWithAReason) {
    auto policy = GetParam().make();
    ASSERT_NE(policy, nullptr);
    constexpr PortId kPorts = 10;
    std::mt19937 rng(17);
    auto pick = [&](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    std::vector<bool> attached(kPorts, false);
    policy->on_ports(kPorts);
    const std::vector<Bytes> all_payloads = payloads();
    bus::Route route;
    FakeLoad load;
    for (int step = 0; step < 3000; ++step) {
        SCOPED_TRACE(fmt::format("step {}", step));
        auto port = static_cast<PortId>(pick(kPorts));
        switch (pick(8)) {
            case 0:
                if (attached[port]) {
                    policy->on_detach(port);
                } else {
                    policy->on_attach(port);
                }
                attached[port] = !attached[port];
                load.receiving[port] = attached[port];
                break;
            case 1: {
                const bus::CommandTable& verbs = policy->commands();
                if (verbs.empty()) break;
                const bus::Command& c = verbs[pick(verbs.size())];
                std::string line(c.verb);
                std::size_t words = c.nargs + pick(c.optional + 2);
                for (std::size_t i = 0; i < words; ++i) {
                    line += ' ';
                    line += kWords[pick(kWords.size())];
                }
                bus::Status s = run_policy_command(*policy, line);
                if (!s.ok()) {
                    int code = static_cast<int>(s.code);
                    EXPECT_TRUE(code > 0 && code < 4096) << line << ": " << code;
                    EXPECT_FALSE(s.reason.empty()) << line;
                }
                break;
            }
            case 2:
                policy->reset_port(port);
                break;
            default: {
                route.clear();
                route.load = &load;
                bool accepted = pick(4) != 0;
                route.address = {static_cast<bus::To>(pick(5)),
                                 static_cast<std::uint32_t>(pick(12)),
                                 static_cast<std::uint32_t>(pick(12))};
                if (route.address.upper < route.address.lower) {
                    std::swap(route.address.lower, route.address.upper);
                }
                const Bytes& payload = all_payloads[pick(all_payloads.size())];
                policy->route(port, payload, route);
                if (accepted) policy->sent(port, route);
                std::vector<PortId> named(route.to.begin(), route.to.end());
                for (const bus::Route::Variant& v : route.variants()) {
                    named.insert(named.end(), v.to.begin(), v.to.end());
                }
                if (!route.refused.ok()) {
                    int code = static_cast<int>(route.refused.code);
                    EXPECT_TRUE(code > 0 && code < 4096) << code;
                    EXPECT_FALSE(route.refused.reason.empty());
                    EXPECT_TRUE(named.empty()) << "a refused message goes nowhere";
                }
                std::set<PortId> once;
                for (PortId p : named) {
                    ASSERT_LT(p, kPorts);
                    EXPECT_TRUE(attached[p]) << "named port " << p << ", which does not receive";
                    EXPECT_TRUE(once.insert(p).second) << "named port " << p << " twice";
                }
            }
        }
    }
    std::string text;
    policy->describe(text);
    policy->stats(text);
    EXPECT_EQ(text.find("policy_errors"), std::string::npos) << text;
}

// A message the network routes N times without accepting it (it waited for
// room, or a non-blocking write got EAGAIN and was written again) and then
// accepts counts once: stats read as if each was routed once.
TEST_P(PolicyRules, AMessageRoutedAgainAndThenSentCountsOnce) {
    auto retried = GetParam().make();
    auto once = GetParam().make();
    ASSERT_NE(retried, nullptr);
    ASSERT_NE(once, nullptr);
    constexpr PortId kPorts = 6;
    FakeLoad load;
    for (bus::Policy* policy : {retried.get(), once.get()}) {
        policy->on_ports(kPorts);
        for (PortId p = 0; p < 5; ++p) {
            policy->on_attach(p);
            load.receiving[p] = true;
        }
    }
    std::mt19937 rng(5);
    auto pick = [&](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    const std::vector<Bytes> all_payloads = payloads();
    bus::Route route;
    auto send = [&](bus::Policy& policy, PortId from, const Bytes& payload, bus::Address to,
                    bool accepted) {
        route.clear();
        route.load = &load;
        route.address = to;
        policy.route(from, payload, route);
        if (accepted) policy.sent(from, route);
    };
    for (int i = 0; i < 200; ++i) {
        auto from = static_cast<PortId>(pick(kPorts));
        const Bytes& payload = all_payloads[pick(all_payloads.size())];
        bus::Address to{static_cast<bus::To>(pick(5)), static_cast<std::uint32_t>(pick(8)), 0};
        to.upper = to.lower + static_cast<std::uint32_t>(pick(3));
        for (int n = 0; n < 5; ++n) send(*retried, from, payload, to, false);
        send(*retried, from, payload, to, true);
        send(*once, from, payload, to, true);
    }
    std::string counted_retried;
    std::string counted_once;
    retried->stats(counted_retried);
    once->stats(counted_once);
    EXPECT_EQ(counted_retried, counted_once);
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicyRules, ::testing::ValuesIn(subjects()),
                         [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace ipnfs::test
