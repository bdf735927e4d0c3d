// -o config=FILE: the networks of a config file (config/config.hpp) made in the
// tree at mount, before the mount exists.
#pragma once

#include <string>

#include "bus/commands.hpp"
#include "config/config.hpp"
#include "fs/tree.hpp"

namespace ipnfs::config {

// Pass 1, in file order: each network is made with its mode, owner and
// group, then its ctl lines run as `caller` (cables excepted), then its
// files' attributes are set.  Pass 2: the cable lines.  Stops at the first
// error: false, and `error` names the line.  What was made stays in the
// tree: the caller hangs it up.
bool apply(fs::Tree& tree, const Config& config, const bus::Caller& caller, Error& error);

// Reads and applies `path`.  False with "PATH:LINE: reason" (or "PATH: reason"
// if it cannot be read); also logged (event config-error).
bool apply_file(fs::Tree& tree, const std::string& path, const bus::Caller& caller,
                std::string& error);

}  // namespace ipnfs::config
