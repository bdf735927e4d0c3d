// Ends libfuse's loop once the daemon's mount is gone from its own mount
// namespace.  The kernel keeps a FUSE connection while any mount namespace
// still holds a copy of the mount (one a process made with unshare -m or
// `ip netns exec`, or any user's user namespace, while it was mounted), so
// root's umount alone would leave the daemon, its TAPs and its cables
// serving whoever made the copy, for as long as they like.
#pragma once

#include <pthread.h>

#include <atomic>
#include <string>
#include <thread>

namespace ipnfs::daemon {

class UnmountWatch {
  public:
    // Right after the mount: finds it in /proc/self/mountinfo (its device
    // number; the mount itself is never touched, as a stat would ask this
    // daemon, whose loop is not running yet).  When no mount of that device
    // is left in the namespace, it sends SIGTERM to `loop_thread`, the
    // thread in libfuse's loop, whose handler ends the loop as for a kill.
    // Inactive (logged) if the mount or mountinfo cannot be read.
    UnmountWatch(const std::string& mountpoint, pthread_t loop_thread);
    // Stops watching; before libfuse's signal handlers are removed.
    ~UnmountWatch();
    UnmountWatch(const UnmountWatch&) = delete;
    UnmountWatch& operator=(const UnmountWatch&) = delete;

    // The mount went away here: it is not this daemon's to unmount any
    // more (the mount point may hold another file system by now).
    [[nodiscard]] bool gone() const { return gone_.load(); }

  private:
    void run(int mountinfo_fd, const std::string& device, pthread_t loop_thread);

    int stop_fd_ = -1;  // an eventfd: written to stop the thread
    std::atomic<bool> gone_{false};
    std::thread thread_;
};

}  // namespace ipnfs::daemon
