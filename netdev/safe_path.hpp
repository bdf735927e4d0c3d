// Paths a user names, reached without trusting them: walked from "/" one
// component at a time with O_PATH|O_NOFOLLOW descriptors, never looking
// anything up in a FUSE filesystem (a lookup there is a request to its
// daemon, maybe this one: a worker or the engine thread waiting on itself),
// and symbolic links read with readlinkat in the directory already checked,
// a bounded number of them.  Permission checks are the calling thread's:
// run it under the user's credentials (netdev/thread_credentials.hpp).
#pragma once

#include <string>
#include <string_view>

#include "bus/status.hpp"
#include "netdev/unique_fd.hpp"

namespace ipnfs::netdev {

// Symbolic links followed in one walk, at most (the kernel allows 40).
constexpr int kMaxLinks = 8;

// Success if `fd`'s mount is not a FUSE filesystem (fuse, fuse.*, fuseblk),
// asked without a request to any FUSE daemon: the mount id from statx with
// AT_STATX_DONT_SYNC, its type from /proc/self/mountinfo.  `what` names the
// path in the reason.  Fails closed: an unknown mount is refused.
bus::Status check_not_fuse(int fd, std::string_view what);

// Opens absolute `path` as an O_PATH descriptor of what it names, itself
// never a symbolic link.  Refused: a relative or empty path, ".." past "/",
// a FUSE filesystem anywhere on the way (the last component's included),
// more than `max_links` symbolic links (ELOOP), a component longer than
// NAME_MAX; otherwise the errno of the lookup that failed (EACCES, ENOENT,
// ENOTDIR), each with a reason naming the path.
bus::Status open_no_fuse(std::string_view path, int max_links, UniqueFd& out);

// True if a mountinfo line's filesystem type is FUSE's.  For tests.
bool is_fuse_type(std::string_view fstype);

}  // namespace ipnfs::netdev
