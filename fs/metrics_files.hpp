// What a network's `metrics` file and the mount root's ipnfs.prom show
// (fs/metrics.hpp makes the format).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "bus/credentials.hpp"
#include "fs/tree.hpp"
#include "fs/uring_transport.hpp"

namespace ipnfs::fs {

// The series of one network: its stats text as series.
std::string network_metrics(const NetDir& dir);

// What the daemon as a whole holds, for ipnfs.prom.
struct DaemonCounts {
    std::size_t open_files = 0;
    std::optional<UringStats> ring;  // with -o uring
};

// The series of every network whose `stats` `opener` may read (search on
// the root and the directory, read on stats: what open(2) of it would
// check), then the daemon's gauges, which count every network.
std::string root_metrics(Tree& tree, const bus::Caller& opener, const DaemonCounts& daemon);

}  // namespace ipnfs::fs
