// Who opened a file and who writes to it, as far as ctl commands and port
// settings care.
#pragma once

#include <fuse_lowlevel.h>

#include "bus/commands.hpp"
#include "bus/credentials.hpp"

namespace ipnfs::fs {

// The credentials of the process behind an open request: uid, gid,
// supplementary groups and the capabilities that matter here, read while its
// open holds it (the thread cannot exit or exec before the reply), and kept
// with the open file as the kernel keeps a file's f_cred.  Capabilities count
// only in the daemon's user namespace: a process that is root in a container
// of its own does not manage this machine's interfaces.
bus::Caller opener_of(fuse_req_t req);

// The credentials a ctl write acts with: the opener's, with each capability
// kept only if the writing process holds it too.  A descriptor handed to a
// setuid program (its stdout, say) gains nothing from that program's
// privilege, and one handed down by a privileged opener gains nothing either.
bus::Caller writer_of(fuse_req_t req, const bus::Caller& opener);

// The process behind a request as the kernel put it in the request's
// header: what a write's message carries for readers that ask for its
// sender (IPNFS_IOC_SET_CREDS), and an open's for its port's join.  Unlike
// the opener's, these credentials decide nothing.
bus::Credentials sender_of(fuse_req_t req);

// The daemon itself as a caller (the config file's ctl lines run with the
// daemon's own privilege).
bus::Caller daemon_caller();

}  // namespace ipnfs::fs
