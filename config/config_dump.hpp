// ipnfs --dump MOUNTPOINT: the networks of a mounted tree as a config file
// (config/config.hpp), read from outside like any client: stat, ctl, readdir.
#pragma once

#include <string>

#include "config/config.hpp"

namespace ipnfs::config {

// The state of the ipnfs mounted at `mountpoint`, networks in name order.
// False with a reason if it is not an ipnfs mount or a file cannot be read.
bool read_mounted(const std::string& mountpoint, Config& out, std::string& error);

// `ipnfs --dump MOUNTPOINT`: prints the config to stdout; errors go to
// stderr.  The process's exit status.
int dump_main(int argc, char** argv);

}  // namespace ipnfs::config
