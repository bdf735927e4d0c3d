// The ctl commands part of `ipnfs --help`, generated from the same command
// tables ctl dispatches and lists, so the two can never disagree.
#pragma once

#include <string>

#include "bus/extension.hpp"
#include "bus/policy.hpp"

namespace ipnfs::daemon {

// Every ctl command a network may take: the network's own, each policy's of
// `catalog` (grouped per policy; `builtin` tells the built-in policies from
// plugins), and the verbs of the extension `extensions` gives a network.
// Builds throwaway networks and extensions; makes nothing outside the process.
std::string ctl_help(const bus::PolicyCatalog& catalog, const bus::PolicyCatalog& builtin,
                     const bus::ExtensionMaker& extensions);

// ctl_help() for the daemon's own catalog (with the plugins of `plugin_dir`,
// if not empty) and its netdev extension, on stdout.
void print_ctl_help(const std::string& plugin_dir);

}  // namespace ipnfs::daemon
