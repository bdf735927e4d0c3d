// Policy plugins: the catalog loads the example topic plugin and refuses
// broken ones with a reason; AbiPolicy drops and counts names a policy must
// not give.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>

#include "bus_test_support.hpp"
#include "policies/catalog.hpp"

namespace ipnfs::test {
namespace {

namespace fsys = std::filesystem;
using bus::PortId;
using PortSet = std::set<PortId>;

constexpr auto kLibBad = static_cast<std::errc>(ELIBBAD);

// A directory of its own for one test's plugins, removed afterwards.
class PluginDir {
  public:
    PluginDir() {
        std::string templ = (fsys::temp_directory_path() / "ipnfs-plugins-XXXXXX").string();
        path_ = ::mkdtemp(templ.data());
    }
    ~PluginDir() {
        std::error_code ec;
        fsys::remove_all(path_, ec);
    }
    PluginDir(const PluginDir&) = delete;
    PluginDir& operator=(const PluginDir&) = delete;

    // Copies a built plugin in as NAME.so.
    void add(const fsys::path& from, const std::string& name) const {
        fsys::copy_file(from, path_ / (name + ".so"), fsys::copy_options::overwrite_existing);
    }
    [[nodiscard]] fsys::path file(const std::string& name) const { return path_ / (name + ".so"); }
    [[nodiscard]] std::string str() const { return path_.string(); }

  private:
    fsys::path path_;
};

fsys::path topic_so() {
    return fsys::path(IPNFS_PLUGIN_DIR) / "topic.so";
}

fsys::path test_so(const std::string& kind) {
    return fsys::path(IPNFS_TEST_PLUGIN_DIR) / ("bad_" + kind + ".so");
}

bus::Status run(bus::Policy& policy, std::string_view line) {
    return run_policy_command(policy, line);
}

PortSet route(bus::Policy& policy, PortId from, std::string_view payload,
              bus::Address address = {}) {
    bus::Route r;
    r.address = address;
    policy.route(from, bytes(payload), r);
    policy.sent(from, r);  // accepted, as the network does: it counts
    return {r.to.begin(), r.to.end()};
}

std::unique_ptr<bus::Policy> make(const policies::Catalog& catalog, std::string_view name) {
    bus::MadePolicy made = catalog.make(name);
    EXPECT_TRUE(IsOk(made.status));
    return std::move(made.policy);
}

// Four attached ports.
std::unique_ptr<bus::Policy> topic() {
    static const policies::Catalog catalog(IPNFS_PLUGIN_DIR);
    auto policy = make(catalog, "topic");
    if (policy) {
        policy->on_ports(4);
        for (PortId p = 0; p < 4; ++p) policy->on_attach(p);
    }
    return policy;
}

TEST(PluginCatalog, ListsThePluginsOfItsDirectoryAfterTheBuiltins) {
    policies::Catalog catalog(IPNFS_PLUGIN_DIR);
    EXPECT_EQ(catalog.names(), "group, hub, switch, topic");
    EXPECT_EQ(policies::Catalog().names(), "group, hub, switch");
}

TEST(PluginCatalog, MakesAFreshTopicPolicyPerNetwork) {
    policies::Catalog catalog(IPNFS_PLUGIN_DIR);
    auto a = make(catalog, "topic");
    auto b = make(catalog, "topic");
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a->name(), "topic");
    a->on_ports(2);
    b->on_ports(2);
    ASSERT_TRUE(IsOk(run(*a, "subscribe 1 x")));
    std::string da;
    std::string db;
    a->describe(da);
    b->describe(db);
    EXPECT_EQ(da, "subscribe 1 x\n");
    EXPECT_EQ(db, "") << "instances share nothing";
}

TEST(TopicPlugin, DeliversByPrefixToOtherSubscribersOnly) {
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 1 temp/")));
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 2 *")));
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 3 temp/attic")));
    EXPECT_EQ(route(*policy, 0, "temp/kitchen 21"), (PortSet{1, 2}));
    EXPECT_EQ(route(*policy, 0, "temp/attic 9"), (PortSet{1, 2, 3}));
    EXPECT_EQ(route(*policy, 0, "humidity 40"), (PortSet{2}));
    EXPECT_EQ(route(*policy, 2, "temp/x"), (PortSet{1})) << "never back to the sender";
    EXPECT_EQ(route(*policy, 0, "temp"), (PortSet{2})) << "shorter than the prefix";
    ASSERT_TRUE(IsOk(run(*policy, "unsubscribe 2 *")));
    EXPECT_EQ(route(*policy, 0, "humidity 40"), PortSet{});
    policy->on_detach(1);
    EXPECT_EQ(route(*policy, 0, "temp/x"), PortSet{}) << "only receiving ports";
}

TEST(TopicPlugin, CountsAndDescribesWhatItWasTold) {
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 1 a")));
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 1 b")));
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 3 *")));
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 2 zz")));
    ASSERT_TRUE(IsOk(run(*policy, "unsubscribe 2 all")));
    route(*policy, 3, "a1");
    route(*policy, 3, "q");
    std::string described;
    policy->describe(described);
    EXPECT_EQ(described, "subscribe 1 a\nsubscribe 1 b\nsubscribe 3 *\n");
    std::string stats;
    policy->stats(stats);
    EXPECT_EQ(stats, "topic matched 1 unmatched 1\n");
}

TEST(TopicPlugin, BadWordsAreRefusedWithAReason) {
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    bus::Status s = run(*policy, "subscribe 4 x");
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_NE(s.reason.find("port must be a number from 0 to 3"), std::string::npos) << s.reason;
    EXPECT_TRUE(FailsWith(run(*policy, "subscribe one x"), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(run(*policy, "subscribe 1"), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(run(*policy, "subscribe 1 " + std::string(256, 'x')),
                          std::errc::invalid_argument));
    for (int i = 0; i < 64; ++i) {
        ASSERT_TRUE(IsOk(run(*policy, "subscribe 1 p" + std::to_string(i))));
    }
    EXPECT_TRUE(FailsWith(run(*policy, "subscribe 1 one-too-many"), std::errc::no_space_on_device));
}

TEST(TopicPlugin, ItsVerbsAreSettingsOfThePortItself) {
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    ASSERT_EQ(policy->commands().size(), 2U);
    for (const bus::Command& c : policy->commands()) {
        EXPECT_EQ(c.holder, bus::Holder::reader) << c.verb;  // what the port receives
    }
}

TEST(TopicPlugin, TakesNoAddresses) {
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    bus::Route r;
    r.address = {bus::To::anycast, 1, 1};
    policy->route(0, bytes("x"), r);
    EXPECT_TRUE(FailsWith(r.refused, std::errc::operation_not_supported));
    EXPECT_TRUE(r.to.empty());
}

struct Refusal {
    std::string kind;
    std::string reason;
};

TEST(PluginCatalog, RefusesABrokenPluginWithTheReasonAndKeepsWorking) {
    const std::array<Refusal, 7> cases{{
        {"abi", "built for policy ABI 99, this ipnfs speaks ABI 5"},
        {"scope", "unknown scope bits 0x2"},
        {"link", "unknown link type 7"},
        {"name", "its table calls it 'somebody_else'"},
        {"no_route", "its table has no route()"},
        {"no_symbol", "exports no ipnfs_policy()"},
        // Found by tests/fuzz (fuzz_plugin_checks): made into a ctl command,
        // a verb without a name crashed the daemon.
        {"verb", "its verb 0 is NULL"},
    }};
    PluginDir dir;
    for (const Refusal& c : cases) dir.add(test_so(c.kind), "bad_" + c.kind);
    dir.add(topic_so(), "topic");
    policies::Catalog catalog(dir.str());
    for (const Refusal& c : cases) {
        auto [s, made] = catalog.make("bad_" + c.kind);
        EXPECT_TRUE(FailsWith(s, kLibBad)) << c.kind;
        EXPECT_NE(s.reason.find(c.reason), std::string::npos) << s.reason;
        EXPECT_EQ(made, nullptr);
        // Asking again gives the same answer: a refusal is not remembered as a load.
        EXPECT_TRUE(FailsWith(catalog.make("bad_" + c.kind).status, kLibBad));
    }
    EXPECT_NE(make(catalog, "topic"), nullptr);
}

TEST(PluginCatalog, RefusesAFileThatIsNotASharedObject) {
    PluginDir dir;
    std::ofstream(dir.file("junk")) << "not an ELF file\n";
    ::chmod(dir.file("junk").c_str(), 0644);
    policies::Catalog catalog(dir.str());
    bus::Status s = catalog.make("junk").status;
    EXPECT_TRUE(FailsWith(s, kLibBad));
    EXPECT_NE(s.reason.find("junk.so refused"), std::string::npos) << s.reason;
}

TEST(PluginCatalog, RefusesAPluginOthersCouldHaveChanged) {
    PluginDir dir;
    dir.add(topic_so(), "topic");
    ASSERT_EQ(::chmod(dir.file("topic").c_str(), 0775), 0);
    policies::Catalog catalog(dir.str());
    bus::Status s = catalog.make("topic").status;
    EXPECT_TRUE(FailsWith(s, std::errc::permission_denied));
    EXPECT_NE(s.reason.find("writable by its owner only"), std::string::npos) << s.reason;
}

TEST(PluginCatalog, OnlyNamesInItsDirectoryLoad) {
    policies::Catalog catalog(IPNFS_PLUGIN_DIR);
    for (std::string_view name : {"../plugins/topic", "/topic", "missing", "topic.so", ""}) {
        bus::Status s = catalog.make(name).status;
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << name;
        EXPECT_NE(s.reason.find("unknown policy"), std::string::npos) << s.reason;
    }
}

TEST(PluginCatalog, ABuiltinNameIsNeverLookedForInTheDirectory) {
    PluginDir dir;
    dir.add(test_so("abi"), "hub");
    policies::Catalog catalog(dir.str());
    auto hub = make(catalog, "hub");
    ASSERT_NE(hub, nullptr);
    EXPECT_EQ(hub->name(), "hub");
    EXPECT_EQ(catalog.names(), "group, hub, switch");
}

TEST(AbiPolicy, NamesAPolicyMustNotGiveAreDroppedAndCounted) {
    PluginDir dir;
    dir.add(test_so("names"), "bad_names");
    policies::Catalog catalog(dir.str());
    auto policy = make(catalog, "bad_names");
    ASSERT_NE(policy, nullptr);
    policy->on_ports(8);
    policy->on_attach(1);
    policy->on_attach(2);
    EXPECT_EQ(route(*policy, 0, "x"), (PortSet{1, 2}));
    bus::Route r;
    policy->route(0, bytes("x"), r);
    EXPECT_EQ(r.to.size(), 2U) << "the repeated name is dropped";
    r.clear();
    policy->route(0, bytes("x"), r);  // routed again (it waited) before it is accepted
    policy->sent(0, r);
    std::string stats;
    policy->stats(stats);
    EXPECT_EQ(stats, "policy_errors 4\n") << "two bad names per accepted message";
}

// Found by tests/fuzz (fuzz_plugin_checks): a negated errno went to the
// client as it was, which libfuse turns into ERANGE and a line that does not
// name the plugin.
TEST(AbiPolicy, AValueThatIsNotAnErrnoBecomesEIOWithAReasonNamingIt) {
    PluginDir dir;
    dir.add(test_so("errno"), "bad_errno");
    policies::Catalog catalog(dir.str());
    auto policy = make(catalog, "bad_errno");
    ASSERT_NE(policy, nullptr);
    policy->on_ports(4);
    policy->on_attach(1);
    bus::Route r;
    policy->route(0, bytes("x"), r);
    EXPECT_TRUE(FailsWith(r.refused, std::errc::io_error));
    EXPECT_EQ(r.refused.reason,
              "policy 'bad_errno': route() returned -113, which is not an errno: nobody");
    EXPECT_TRUE(r.to.empty());
    bus::Status s = run(*policy, "poke 1");
    EXPECT_TRUE(FailsWith(s, std::errc::io_error));
    EXPECT_EQ(s.reason, "policy 'bad_errno': command() returned -22, which is not an errno");
}

// ---- cluster scope (docs/policy-plugins.md, "Cluster scope") ----

TEST(PluginCluster, OnlyAPluginThatDeclaresClusterScopeSpansHosts) {
    PluginDir dir;
    dir.add(topic_so(), "topic");
    dir.add(test_so("abi4"), "bad_abi4");
    dir.add(fsys::path(IPNFS_TEST_PLUGIN_DIR) / "plugin_hub.so", "plugin_hub");
    policies::Catalog catalog(dir.str());
    auto topic = make(catalog, "topic");
    ASSERT_NE(topic, nullptr);
    EXPECT_TRUE(topic->spans_hosts());
    // ABI 4 tables end before `scopes`: whatever lies there is not read.
    auto old = make(catalog, "bad_abi4");
    ASSERT_NE(old, nullptr) << "a plugin built for ABI 4 runs as it is";
    EXPECT_FALSE(old->spans_hosts());
    auto hub = make(catalog, "plugin_hub");
    ASSERT_NE(hub, nullptr);
    EXPECT_FALSE(hub->spans_hosts()) << "the exports have no place() to offer";
}

TEST(PluginCluster, AnotherHostsMessageReachesThisHostsSubscribersOnly) {
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 1 sport/")));
    ASSERT_TRUE(IsOk(run(*policy, "subscribe 2 *")));
    EXPECT_EQ(route(*policy, bus::kElsewhere, "sport/ 2:1"), (PortSet{1, 2}));
    EXPECT_EQ(route(*policy, bus::kElsewhere, "weather/ rain"), (PortSet{2}));
    ASSERT_TRUE(IsOk(run(*policy, "unsubscribe 2 *")));
    EXPECT_EQ(route(*policy, bus::kElsewhere, "weather/ rain"), PortSet{});
    // The network's sent() after place() (a message of this host's, before
    // it is ordered) counts nothing: its route() and sent() come later.
    bus::Route placed;
    policy->place(0, {}, placed);
    policy->sent(0, placed);
    std::string stats;
    policy->stats(stats);
    EXPECT_NE(stats.find("topic matched 2 unmatched 1"), std::string::npos) << stats;
}

TEST(PluginCluster, PlaceRefusesAnAddressOfOnePortOfTheWholeCluster) {
    policies::Catalog catalog(IPNFS_TEST_PLUGIN_DIR);
    // The group's export takes every address kind: only the scope refuses.
    auto group = make(catalog, "plugin_group");
    ASSERT_NE(group, nullptr);
    group->on_ports(2);
    auto place = [&](bus::Policy& policy, bus::Address address) {
        bus::Route r;
        r.address = address;
        policy.place(0, {}, r);
        return r.refused;
    };
    for (bus::To to : {bus::To::port, bus::To::anycast}) {
        bus::Status s = place(*group, {to, 1, 2});
        EXPECT_TRUE(FailsWith(s, std::errc::operation_not_supported)) << static_cast<int>(to);
        EXPECT_NE(s.reason.find("whole cluster"), std::string::npos) << s.reason;
    }
    EXPECT_TRUE(IsOk(place(*group, {bus::To::multicast, 1, 2})));
    EXPECT_TRUE(IsOk(place(*group, {bus::To::broadcast, 0, 0})));
    EXPECT_TRUE(IsOk(place(*group, {})));
    // A kind the table does not take is refused at the writer too.
    auto policy = topic();
    ASSERT_NE(policy, nullptr);
    bus::Status s = place(*policy, {bus::To::multicast, 1, 2});
    EXPECT_TRUE(FailsWith(s, std::errc::operation_not_supported));
    EXPECT_NE(s.reason.find("takes no addressed messages"), std::string::npos) << s.reason;
    EXPECT_TRUE(IsOk(place(*policy, {})));
}

}  // namespace
}  // namespace ipnfs::test
