#include "policies/catalog.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "policies/abi_export.hpp"
#include "policies/abi_policy.hpp"
#include "policies/group.hpp"
#include "policies/hub.hpp"
#include "policies/switch.hpp"

namespace ipnfs::policies {

namespace {

// The built-in tables, by name, in the order names() lists them.
std::array<const ipnfs_policy*, 3> builtins() {
    constexpr std::uint32_t kEveryAddress = (1U << IPNFS_TO_PORT) | (1U << IPNFS_TO_ANYCAST) |
                                            (1U << IPNFS_TO_MULTICAST) | (1U << IPNFS_TO_BROADCAST);
    return {
        &export_policy<Group>("group", "TIPC-style groups: unicast, anycast, multicast, broadcast",
                              kEveryAddress),
        &export_policy<Hub>("hub", "every receiving port but the sender gets each message"),
        &export_policy<Switch>("switch", "Ethernet learning switch with 802.1Q VLANs"),
    };
}

const ipnfs_policy* builtin(std::string_view name) {
    for (const ipnfs_policy* table : builtins()) {
        if (name == table->name) return table;
    }
    return nullptr;
}

}  // namespace

Catalog::Catalog(std::string plugin_dir) : plugin_dir_(std::move(plugin_dir)) {}

bus::Status Catalog::plugin(std::string_view name, Plugin& out) const {
    MutexLock lock(mu_);
    if (auto it = loaded_.find(name); it != loaded_.end()) {
        out = it->second;
        return bus::Status::success();
    }
    bus::Status s = load_plugin(plugin_dir_, name, out);
    if (!s.ok()) {
        if (s.code != std::errc::no_such_file_or_directory)
            bus::log::warn({"plugin-error"}, "{}", s.reason);
        return s;
    }
    bus::log::info({"plugin-load"}, "policy plugin {} loaded from {}/{}.so", name, plugin_dir_,
                   name);
    loaded_.emplace(name, out);
    return s;
}

bus::Status Catalog::make(std::string_view name, std::unique_ptr<bus::Policy>& out) const {
    const ipnfs_policy* table = builtin(name);
    Plugin loaded;
    if (table == nullptr && !plugin_dir_.empty() && valid_plugin_name(name)) {
        bus::Status s = plugin(name, loaded);
        if (!s.ok() && s.code != std::errc::no_such_file_or_directory) return s;
        table = loaded.table;
    }
    if (table == nullptr) {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("unknown policy '{}' (known: {})", name, names()));
    }
    if (bus::Status s = check_table(table, name); !s.ok()) return s;
    void* self = table->create();
    if (self == nullptr) {
        return bus::Status::error(std::errc::not_enough_memory,
                                  fmt::format("policy '{}' could not make an instance", name));
    }
    // The verbs come from the instance, so they are checked only now.
    if (bus::Status s = check_verbs(*table, self, name); !s.ok()) {
        table->destroy(self);
        return s;
    }
    out = std::make_unique<AbiPolicy>(*table, self, std::move(loaded.library));
    return bus::Status::success();
}

std::string Catalog::names() const {
    std::vector<std::string> all;
    for (const ipnfs_policy* table : builtins()) all.emplace_back(table->name);
    if (!plugin_dir_.empty()) {
        for (std::string& name : plugin_names(plugin_dir_)) {
            if (builtin(name) == nullptr) all.push_back(std::move(name));
        }
    }
    std::ranges::sort(all);
    return fmt::format("{}", fmt::join(all, ", "));
}

}  // namespace ipnfs::policies
