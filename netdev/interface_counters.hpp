// What the kernel itself counted for an interface (the drops `ip -s link`
// shows), read through rtnetlink by index or name, never through /sys or a
// path a user could race.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netdev/unique_fd.hpp"

namespace ipnfs::netdev {

// Where the kernel keeps one interface: in the daemon's own network
// namespace by index, or in the namespace open as `netns` (a TAP moved
// elsewhere) by name.
struct InterfaceRef {
    unsigned ifindex = 0;  // 0: look it up by name
    std::string name;
    UniqueFd netns;  // not open: the daemon's own namespace
};

// The kernel's drop counters of one interface (rtnl_link_stats64).
struct InterfaceDrops {
    std::uint64_t rx_dropped = 0;  // received, dropped by the kernel (no buffer, backlog full, ...)
    std::uint64_t rx_missed = 0;   // never taken off the device (a NIC's ring overran)
    std::uint64_t tx_dropped = 0;  // handed to the interface, dropped there (a TAP's full queue)
};

// The counters of each interface, in order, over one netlink socket; an
// entry is empty when that interface is gone, or lives in a namespace the
// daemon's has no id for.  The kernel answers at once: nothing here waits
// for a user.
std::vector<std::optional<InterfaceDrops>> read_interface_drops(
    const std::vector<InterfaceRef>& where);

}  // namespace ipnfs::netdev
