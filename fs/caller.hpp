// Who sent a request, as far as ctl commands care.
#pragma once

#include <fuse_lowlevel.h>

#include "bus/commands.hpp"

namespace ipnfs::fs {

// The capabilities of the process behind `req`, read from /proc while its
// request holds it.  CAP_NET_ADMIN counts only in the daemon's user namespace:
// a process that is root in a container of its own does not manage this
// machine's interfaces.
bus::Caller caller_of(fuse_req_t req);

// The daemon itself as a caller (the config file's ctl lines run with the
// daemon's own privilege).
bus::Caller daemon_caller();

}  // namespace ipnfs::fs
