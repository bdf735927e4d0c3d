#include "policies/catalog.hpp"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "policies/abi_policy.hpp"
#include "policies/group.hpp"
#include "policies/hub.hpp"
#include "policies/switch.hpp"

namespace ipnfs::policies {

namespace {

// The built-in policies, in the order names() lists them.  Each is a
// bus::Policy of its own: the network calls it directly, without the C table.
struct Builtin {
    std::string_view name;
    std::unique_ptr<bus::Policy> (*make)();
};

template <class P>
std::unique_ptr<bus::Policy> make_builtin() {
    return std::make_unique<P>();
}

constexpr std::array<Builtin, 3> kBuiltins{{
    {"group", &make_builtin<Group>},
    {"hub", &make_builtin<Hub>},
    {"switch", &make_builtin<Switch>},
}};

const Builtin* builtin(std::string_view name) {
    const auto* it = std::ranges::find(kBuiltins, name, &Builtin::name);
    return it != kBuiltins.end() ? &*it : nullptr;
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

bus::MadePolicy Catalog::make(std::string_view name) const {
    if (const Builtin* b = builtin(name)) return {bus::Status::success(), b->make()};
    Plugin loaded;
    if (!plugin_dir_.empty() && valid_plugin_name(name)) {
        bus::Status s = plugin(name, loaded);
        if (!s.ok() && s.code != std::errc::no_such_file_or_directory)
            return {std::move(s), nullptr};
    }
    const ipnfs_policy* table = loaded.table;
    if (table == nullptr) {
        return {bus::Status::error(std::errc::invalid_argument,
                                   fmt::format("unknown policy '{}' (known: {})", name, names())),
                nullptr};
    }
    void* self = table->create();
    if (self == nullptr) {
        return {bus::Status::error(std::errc::not_enough_memory,
                                   fmt::format("policy '{}' could not make an instance", name)),
                nullptr};
    }
    // The verbs come from the instance, so they are checked only now.
    if (bus::Status s = check_verbs(*table, self, name); !s.ok()) {
        table->destroy(self);
        return {std::move(s), nullptr};
    }
    return {bus::Status::success(),
            std::make_unique<AbiPolicy>(*table, self, std::move(loaded.library))};
}

std::string Catalog::names() const {
    std::vector<std::string> all;
    all.reserve(kBuiltins.size());
    for (const Builtin& b : kBuiltins) all.emplace_back(b.name);
    if (!plugin_dir_.empty()) {
        for (std::string& name : plugin_names(plugin_dir_)) {
            if (builtin(name) == nullptr) all.push_back(std::move(name));
        }
    }
    std::ranges::sort(all);
    return fmt::format("{}", fmt::join(all, ", "));
}

}  // namespace ipnfs::policies
