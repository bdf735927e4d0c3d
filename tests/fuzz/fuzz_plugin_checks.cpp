// The plugin loader's checks: policies::check_table and valid_plugin_name on
// tables and names built from the input, then, for a table they accept, the
// policy driven as the daemon drives it (its verbs made into ctl commands,
// one command run, one message routed).  Accepted must mean well formed by
// docs/policy-plugins.md, refused must mean ELIBBAD with a reason, and no
// table that passes may crash the daemon's side.
//
// Never dlopen() of the input: dlopen runs the file's constructors, which is
// the plugin's code, not the loader's; a fuzzer would be fuzzing the dynamic
// linker with arbitrary code.  The file checks before dlopen (name, owner,
// mode) are valid_plugin_name and a stat; everything after it is
// check_table, which this target gets to see directly.
//
// The table's functions are harmless stubs; the input picks which are there,
// what create() returns, the verbs table and what command() answers.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bus/commands.hpp"
#include "fuzz_support.hpp"
#include "include/ipnfs_policy.h"
#include "policies/abi_policy.hpp"
#include "policies/plugin.hpp"

namespace ipnfs::fuzz {
namespace {

// What the stubs answer, set from the input before each run.
struct Script {
    bool create_fails = false;
    std::vector<std::string> strings;  // owns the verbs' texts
    std::vector<ipnfs_verb> verbs;
    int command_result = 0;
    std::vector<std::uint32_t> names;  // the ports route() names
    int route_error = 0;
};
Script script;
int instance;

void* stub_create() {
    return script.create_fails ? nullptr : &instance;
}
void stub_destroy(void* /*self*/) {}
void stub_ports(void* /*self*/, std::uint32_t /*count*/) {}
void stub_attach(void* /*self*/, std::uint32_t /*port*/) {}
void stub_detach(void* /*self*/, std::uint32_t /*port*/) {}
void stub_route(void* /*self*/, ipnfs_route* r) {
    for (std::uint32_t port : script.names) ipnfs_route_add(r, port);
    if (script.route_error != 0) ipnfs_route_refuse(r, script.route_error, "refused by the stub");
}
const ipnfs_verb* stub_verbs(void* /*self*/, std::uint32_t* count) {
    *count = static_cast<std::uint32_t>(script.verbs.size());
    return script.verbs.empty() ? nullptr : script.verbs.data();
}
int stub_command(void* /*self*/, std::uint32_t /*verb*/, std::uint32_t /*argc*/,
                 const char* const* /*argv*/, ipnfs_text* reason) {
    if (script.command_result != 0) ipnfs_text_printf(reason, "the stub says no");
    return script.command_result;
}
void stub_describe(void* /*self*/, ipnfs_text* out) {
    ipnfs_text_printf(out, "# stub\n");
}
void stub_stats(void* /*self*/, ipnfs_text* /*out*/) {}

// A C string from the input: its bytes up to the first NUL, or NULL.
const char* c_string(FuzzedDataProvider& in, std::vector<std::string>& owner) {
    if (in.ConsumeBool()) return nullptr;
    owner.push_back(in.ConsumeRandomLengthString(80));
    return owner.back().c_str();
}

// The docs' rules for a name (docs/usage.md, "Policy plugins").
bool name_rules(std::string_view name) {
    auto allowed = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
    };
    return !name.empty() && name.size() <= 64 && std::ranges::all_of(name, allowed);
}

// The docs' rules for a table (docs/policy-plugins.md, "The table").
bool table_rules(const ipnfs_policy& t, std::string_view name) {
    constexpr std::uint32_t kKinds = 1U << (IPNFS_TO_BROADCAST + 1);
    return (t.abi == IPNFS_POLICY_ABI || t.abi == 4) && (t.addressing & 1U) == 0 &&
           t.addressing < kKinds &&
           (t.abi == 4 || (t.scopes & ~std::uint32_t{IPNFS_SCOPE_CLUSTER}) == 0) &&
           t.name != nullptr && name == t.name && t.create != nullptr && t.destroy != nullptr &&
           t.ports != nullptr && t.attach != nullptr && t.detach != nullptr && t.route != nullptr &&
           t.describe != nullptr && (t.verbs == nullptr) == (t.command == nullptr) &&
           (t.link_type == IPNFS_LINK_OPAQUE || t.link_type == IPNFS_LINK_ETHERNET);
}

ipnfs_policy table_from(FuzzedDataProvider& in, std::vector<std::string>& owner) {
    ipnfs_policy t{};
    t.abi = in.ConsumeBool()   ? IPNFS_POLICY_ABI
            : in.ConsumeBool() ? 4U
                               : in.ConsumeIntegral<std::uint32_t>();
    t.addressing = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint32_t>(0, 63)
                                    : in.ConsumeIntegral<std::uint32_t>();
    t.name = c_string(in, owner);
    t.summary = c_string(in, owner);
    auto present = in.ConsumeIntegral<std::uint16_t>();
    auto has = [&](int bit) { return (present & (1U << bit)) == 0; };  // mostly there
    t.create = has(0) ? stub_create : nullptr;
    t.destroy = has(1) ? stub_destroy : nullptr;
    t.ports = has(2) ? stub_ports : nullptr;
    t.attach = has(3) ? stub_attach : nullptr;
    t.detach = has(4) ? stub_detach : nullptr;
    t.route = has(5) ? stub_route : nullptr;
    t.verbs = has(6) ? stub_verbs : nullptr;
    t.command = has(7) ? stub_command : nullptr;
    t.describe = has(8) ? stub_describe : nullptr;
    t.stats = has(9) ? stub_stats : nullptr;
    t.link_type = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint32_t>(0, 1)
                                   : in.ConsumeIntegral<std::uint32_t>();
    t.scopes = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint32_t>(0, 1)
                                : in.ConsumeIntegral<std::uint32_t>();
    return t;
}

void script_from(FuzzedDataProvider& in) {
    script = {};
    script.create_fails = in.ConsumeIntegralInRange(0, 7) == 0;
    auto verbs = in.ConsumeIntegralInRange(0, 4);
    script.strings.reserve(std::size_t{3} * 4);  // c_string's pointers must stay put
    for (int i = 0; i < verbs; ++i) {
        ipnfs_verb v{};
        v.verb = c_string(in, script.strings);
        v.args = c_string(in, script.strings);
        v.nargs = in.ConsumeIntegralInRange<std::uint32_t>(0, 3);
        v.optional = in.ConsumeIntegralInRange<std::uint32_t>(0, 2);
        v.flags = in.ConsumeIntegral<std::uint32_t>();
        v.help = c_string(in, script.strings);
        script.verbs.push_back(v);
    }
    constexpr std::array<int, 6> kResults = {0, EINVAL, ENOSPC, -EINVAL, 4096, -1};
    script.command_result =
        kResults[in.ConsumeIntegralInRange<std::size_t>(0, kResults.size() - 1)];
    script.route_error = kResults[in.ConsumeIntegralInRange<std::size_t>(0, kResults.size() - 1)];
    auto names = in.ConsumeIntegralInRange(0, 6);
    for (int i = 0; i < names; ++i) script.names.push_back(in.ConsumeIntegralInRange(0U, 5U));
}

// An error the daemon hands back to a client: a real errno, with a reason.
void require_errno(const bus::Status& s, std::string_view what) {
    require(!s.reason.empty(), what, "no reason");
    int code = static_cast<int>(s.code);
    require(code > 0 && code < 4096, what, "not an errno: " + std::to_string(code));
}

// Verbs ctl could run: named, one word, not a comment.
bool verb_rules() {
    return std::ranges::all_of(script.verbs, [](const ipnfs_verb& v) {
        if (v.verb == nullptr) return false;
        std::string_view word = v.verb;
        return !word.empty() && !word.starts_with('#') &&
               word.find_first_of(" \t\r\n") == std::string_view::npos;
    });
}

// The daemon's side of an accepted table, as Catalog::make and a network use it.
void drive(const ipnfs_policy& table, FuzzedDataProvider& in) {
    void* self = table.create();
    if (self == nullptr) return;  // Catalog::make: ENOMEM
    bool good = table.verbs == nullptr || verb_rules();
    bus::Status checked = policies::check_verbs(table, self, table.name);
    require(checked.ok() == good, good ? "good verbs refused" : "bad verbs taken", checked.reason);
    if (!checked.ok()) {
        require_error(checked, {ELIBBAD}, "verbs refused");
        return;  // Catalog::make: refused, the instance destroyed
    }
    policies::AbiPolicy policy(table, self, nullptr);
    policy.on_ports(4);
    policy.on_attach(1);
    policy.on_attach(2);
    std::string text;
    policy.describe(text);
    policy.stats(text);
    std::array<const bus::CommandTable*, 1> tables{&policy.commands()};
    bus::append_help(policy.commands(), text);
    bus::Status s = bus::dispatch(tables, in.ConsumeRandomLengthString(64), bus::Caller{});
    if (!s.ok()) require_errno(s, "a policy's command");
    bus::Route route;
    std::vector<std::byte> payload(in.ConsumeIntegralInRange(0, 16));
    policy.route(0, payload, route);
    if (!route.refused.ok()) require_errno(route.refused, "a policy's refusal");
    for (bus::PortId port : route.to) require(port == 1 || port == 2, "a named port receives");
}

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs;
    using namespace ipnfs::fuzz;
    FuzzedDataProvider in(data, size);
    std::vector<std::string> owner;
    owner.reserve(2);  // c_string's pointers must stay put
    ipnfs_policy table = table_from(in, owner);
    std::string name = in.ConsumeBool() && table.name != nullptr ? std::string(table.name)
                                                                 : in.ConsumeRandomLengthString(80);

    require(policies::valid_plugin_name(name) == name_rules(name), "valid_plugin_name", name);

    bool well_formed = table_rules(table, name);
    bus::Status s = policies::check_table(&table, name);
    require(s.ok() == well_formed, well_formed ? "a good table refused" : "a bad table taken",
            s.reason);
    if (!s.ok()) {
        require_error(s, {ELIBBAD}, "a table refused");
        require(s.reason.starts_with("policy '"), "the reason names the policy", s.reason);
        return 0;
    }
    script_from(in);
    drive(table, in);
    return 0;
}
