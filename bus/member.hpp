// A port as the group of a cluster network knows it (`scope cluster`,
// docs/cluster.md): whose it is, and what the other daemons need of it to
// address it.  Shared by the bus, the policies that span hosts and the
// cluster layer; no engine and no FUSE here.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>

#include "bus/message.hpp"

namespace ipnfs::bus {

// A port of one daemon of the group: the engine's node id (what users
// see), the daemon's process id on that node (two joins of one node, such
// as a daemon that restarted, stay apart), and the port's number there.
struct Origin {
    std::uint32_t node = 0;
    std::uint32_t daemon = 0;
    PortId port = 0;
    auto operator<=>(const Origin&) const = default;
};

// What a port's daemon tells the group of it with its join, and again
// whenever it changes: whether the port has a reader, and the member
// identity (instance) it holds for policies that take addresses.
struct Presence {
    bool receives = false;
    std::optional<std::uint32_t> instance;
    bool operator==(const Presence&) const = default;
};

}  // namespace ipnfs::bus
