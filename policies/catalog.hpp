// The policies ctl and mount options can name: the built-in ones and the
// plugins of one directory.  Every one is made through its C table
// (include/ipnfs_policy.h) and runs as an AbiPolicy.
#pragma once

#include <map>
#include <string>

#include "bus/policy.hpp"
#include "bus/thread_safety.hpp"
#include "policies/plugin.hpp"

namespace ipnfs::policies {

class Catalog final : public bus::PolicyCatalog {
  public:
    // `plugin_dir`: where NAME.so plugins are looked for; empty for none.
    explicit Catalog(std::string plugin_dir = {});

    // A plugin loads on first use and stays loaded.  A built-in name is
    // never looked for in the directory.
    [[nodiscard]] bus::Status make(std::string_view name,
                                   std::unique_ptr<bus::Policy>& out) const override EXCLUDES(mu_);
    [[nodiscard]] std::string names() const override;

  private:
    bus::Status plugin(std::string_view name, Plugin& out) const EXCLUDES(mu_);

    const std::string plugin_dir_;
    // Taken under a network's lock (a network makes its policy under it),
    // never the other way round; dlopen runs under it, once per plugin.
    mutable Mutex mu_;
    mutable std::map<std::string, Plugin, std::less<>> loaded_ GUARDED_BY(mu_);
};

}  // namespace ipnfs::policies
