// A built-in policy compiled as a plugin: its bus::Policy behind the C table
// (policies/abi_export.hpp), loaded from a directory by the catalog and run
// as an AbiPolicy, as any third party's plugin.  The conformance suite
// (tests/unit/policy_conformance_test.cpp) drives it and the built-in side by
// side.  A built-in name is never looked for in the plugin directory, so
// this one is called plugin_NAME (PLUGIN_NAME).
#include "policies/abi_export.hpp"
#include "policies/group.hpp"
#include "policies/hub.hpp"
#include "policies/switch.hpp"

namespace {

const ipnfs_policy& table() {
    using namespace ipnfs::policies;
#if defined(PLUGIN_HUB)
    return export_policy<Hub>(PLUGIN_NAME, "the hub, as a plugin");
#elif defined(PLUGIN_SWITCH)
    return export_policy<Switch>(PLUGIN_NAME, "the switch, as a plugin");
#elif defined(PLUGIN_GROUP)
    constexpr std::uint32_t kEveryAddress = (1U << IPNFS_TO_PORT) | (1U << IPNFS_TO_ANYCAST) |
                                            (1U << IPNFS_TO_MULTICAST) | (1U << IPNFS_TO_BROADCAST);
    return export_policy<Group>(PLUGIN_NAME, "the group, as a plugin", kEveryAddress);
#else
#error "define PLUGIN_HUB, PLUGIN_SWITCH or PLUGIN_GROUP"
#endif
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const ipnfs_policy* ipnfs_policy() {
    return &table();
}
