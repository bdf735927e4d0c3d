// The policies ctl and mount options can name: the built-in ones, handed to
// the network as they are, and the plugins of one directory, each made
// through its C table (include/ipnfs_policy.h) and run as an AbiPolicy.
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
    [[nodiscard]] bus::MadePolicy make(std::string_view name) const override EXCLUDES(mu_);
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
