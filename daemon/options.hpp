// Command line: `ipnfs [SOURCE] MOUNTPOINT [-f] [-d] [-s] [-o OPTIONS]`, the
// form mount(8) and mount.fuse3 use.  ipnfs's own -o options are taken out
// here; the rest go to libfuse.
#pragma once

#include <fuse_lowlevel.h>

#include <string>

#include "bus/network.hpp"
#include "daemon/log.hpp"
#include "fs/uring_transport.hpp"

namespace ipnfs::daemon {

struct Options {
    std::string source = "ipnfs";
    std::string log_level = "info";
    std::string log_file;                         // empty: log_target says where
    LogTarget log_target = LogTarget::automatic;  // -o log=auto|journal|syslog|stderr
    std::string policy = "hub";
    std::string plugins;                 // absolute; empty: no policy plugins
    std::string config;                  // absolute; empty: no networks made at mount
    std::string vde_dir = "/run/ipnfs";  // where `vde NAME` makes endpoints (netdev/vde_dir.hpp)
    bool vde_dir_given = false;  // -o vde_dir=DIR: a DIR that cannot be used stops the mount
    bus::Settings defaults;
    bus::Bounds bounds;
    bus::ByteLimits byte_limits;  // -o net_mib, -o user_mib
    fs::UringOptions uring;       // -o uring[=on|off|auto], -o uring_entries=N
    unsigned root_mode = 0755;
    bool max_threads_given = false;  // -o max_threads=N (libfuse's option) was given
};

// Parses argv into `opts` and leaves libfuse's arguments (with the mount
// point last) in `args`.  Returns false with a message on bad input.
bool parse_options(fuse_args& args, Options& opts, std::string& error);

void print_usage(const char* prog);

}  // namespace ipnfs::daemon
