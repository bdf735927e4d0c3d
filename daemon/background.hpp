// Detaching from the terminal in two steps around the mount.  libfuse's
// fuse_daemonize() forks after the mount, but what runs before it (a config
// file's TAPs and VDE endpoints start the netdev engine's thread) must run in
// the process that stays: threads do not survive a fork.  So the daemon forks
// first and its parent waits: it exits 0 once the child has mounted and
// detached, or with the child's own exit status if the child fails, so a
// failed mount still gives mount(8) a non-zero status.
#pragma once

namespace ipnfs::daemon {

class Background {
  public:
    // In the foreground nothing forks.  Otherwise the calling process forks:
    // the parent never returns from here, the child does.
    explicit Background(bool foreground);
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    ~Background();

    // Once mounted: the working directory becomes /, and in the background
    // the child also leaves the terminal's session, its stdio goes to
    // /dev/null and the waiting parent exits 0.
    void detach();

  private:
    int ready_fd_ = -1;  // the child's end of the pipe the parent waits on
};

}  // namespace ipnfs::daemon
