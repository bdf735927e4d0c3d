// Acting for a local user on one thread: the peer's credentials of a unix
// socket, and the calling thread's file-system uid, gid and supplementary
// groups switched to them for a while, so that the kernel checks what this
// thread opens and connects to as it would check that user's own calls.
// Raw system calls on purpose: glibc's setgroups() changes every thread of
// the process; SYS_setgroups, SYS_setfsuid and SYS_setfsgid change only the
// caller.
#pragma once

#include <sys/types.h>

#include <vector>

#include "bus/status.hpp"

namespace ipnfs::netdev {

struct Credentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary
};

// SO_PEERCRED and SO_PEERGROUPS of a connected unix socket: who connected.
bus::Status peer_credentials(int fd, Credentials& out);

// While alive, the calling thread's fs uid/gid and groups are `who`'s (its
// effective file capabilities go with a non-zero fs uid).  The destructor
// puts the thread's own back, and aborts the daemon if it cannot: a worker
// left with a user's rights, or root's rights left where a user's were
// meant, is worse than a crash.  A daemon that is not root cannot switch:
// it acts for its own uid unchanged and refuses anyone else (status()).
class ActingAs {
  public:
    explicit ActingAs(const Credentials& who);
    ~ActingAs();
    ActingAs(const ActingAs&) = delete;
    ActingAs& operator=(const ActingAs&) = delete;

    [[nodiscard]] const bus::Status& status() const { return status_; }

  private:
    void restore();

    bus::Status status_;
    bool switched_ = false;
    uid_t fsuid_ = 0;
    gid_t fsgid_ = 0;
    std::vector<gid_t> groups_;
};

}  // namespace ipnfs::netdev
