// Policy plugins: shared objects in the directory named by the mount option
// `plugins=DIR`, each exporting the table of include/ipnfs_policy.h.  Every
// loaded table passes check_table() before it is used, so a bad plugin is
// refused with a reason and the daemon goes on.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bus/status.hpp"
#include "include/ipnfs_policy.h"

namespace ipnfs::policies {

// ELIBBAD unless the table speaks this daemon's ABI, is called `name`, has
// every function it must have and no unknown addressing bit or link type.
bus::Status check_table(const ipnfs_policy* table, std::string_view name);

// ELIBBAD unless every verb the instance `self` lists is a word ctl could
// run: not NULL (the daemon would crash reading it), not empty, without
// whitespace, not starting with '#' (ctl skips such a line).
bus::Status check_verbs(const ipnfs_policy& table, void* self, std::string_view name);

// Letters, digits, '-' and '_', at most 64 (so a name never leaves the
// directory).
bool valid_plugin_name(std::string_view name);

struct Plugin {
    std::shared_ptr<const void> library;  // dlclose()s when the last user goes
    const ipnfs_policy* table = nullptr;
};

// Loads DIR/NAME.so: ENOENT if there is none; EACCES if the file could be
// changed by someone the daemon does not trust (not owned by root or the
// daemon's user, or writable by group or others); ELIBBAD if it does not
// load or its table fails check_table().
bus::Status load_plugin(const std::string& dir, std::string_view name, Plugin& out);

// The names of the plugins in DIR (NAME.so files with valid names), sorted.
std::vector<std::string> plugin_names(const std::string& dir);

}  // namespace ipnfs::policies
