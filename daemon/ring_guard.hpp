// With FUSE over io_uring, a SIGKILLed daemon's /dev/fuse stays referenced by
// its rings until the kernel's io_uring exit work has cancelled their
// commands.  In that window fusermount3's auto_unmount helper, woken by the
// daemon's end, opens the mount point to see whether it is dead: the open goes
// to a dying ring entry and fails with ECANCELED, not ENOTCONN, and the helper
// leaves the mount alone (seen 2 runs in 6 on Linux 6.18).  The guard is a
// child process that waits for the daemon's end; if the daemon did not say
// goodbye (a SIGKILL), it aborts the connection through the fuse control
// file system (where it is mounted) and, once the mount point answers
// ENOTCONN, unmounts it lazily as the helper would have.
#pragma once

#include <string>

namespace ipnfs::daemon {

class RingGuard {
  public:
    RingGuard() = default;
    ~RingGuard();
    RingGuard(const RingGuard&) = delete;
    RingGuard& operator=(const RingGuard&) = delete;

    // Starts the guard for the FUSE mount on `mountpoint` (mounted already).
    // False, with `why`, if the mount is not found or the child cannot be made.
    bool start(const std::string& mountpoint, std::string& why);
    // The daemon ends cleanly: the guard leaves the mount to it.
    void dismiss();

  private:
    int fd_ = -1;  // the pipe's write end; its close without a byte means SIGKILL
};

}  // namespace ipnfs::daemon
