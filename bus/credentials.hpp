// Who sent a message, as the kernel told the daemon: multicast AF_UNIX's
// SCM_CREDENTIALS (struct ucred), for readers that ask for it.
#pragma once

#include <cstdint>

namespace ipnfs::bus {

// The writing process of a data message (the uid, gid and thread id of its
// FUSE write request, in the daemon's namespaces), or of the open that
// connected a port, for its join event.  Not `known` for what no process
// wrote: frames from kernel interfaces, cables and VDE clients.
struct Credentials {
    std::uint32_t pid = 0;  // 0 also when the writer is outside the daemon's pid namespace
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    bool known = false;
};

}  // namespace ipnfs::bus
