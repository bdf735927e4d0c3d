#include "netdev/thread_credentials.hpp"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "bus/log.hpp"

namespace ipnfs::netdev {

namespace {

// setfsuid/setfsgid return the previous value and never an error: asking
// with -1 changes nothing and tells the current one.
uid_t set_fsuid(uid_t uid) {
    return static_cast<uid_t>(::syscall(SYS_setfsuid, uid));
}
gid_t set_fsgid(gid_t gid) {
    return static_cast<gid_t>(::syscall(SYS_setfsgid, gid));
}
int set_groups(const std::vector<gid_t>& groups) {
    return static_cast<int>(::syscall(SYS_setgroups, groups.size(), groups.data()));
}

std::vector<gid_t> thread_groups() {
    int n = ::getgroups(0, nullptr);  // the calling thread's, a plain system call
    std::vector<gid_t> groups(static_cast<std::size_t>(std::max(n, 0)));
    if (n > 0) n = ::getgroups(n, groups.data());
    groups.resize(static_cast<std::size_t>(std::max(n, 0)));
    return groups;
}

}  // namespace

bus::Status peer_credentials(int fd, Credentials& out) {
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
        return bus::Status::error(static_cast<std::errc>(errno),
                                  fmt::format("SO_PEERCRED: {}", std::strerror(errno)));
    }
    std::vector<gid_t> groups(16);
    for (;;) {
        len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) break;
        if (errno != ERANGE || len <= groups.size() * sizeof(gid_t)) {
            return bus::Status::error(static_cast<std::errc>(errno),
                                      fmt::format("SO_PEERGROUPS: {}", std::strerror(errno)));
        }
        groups.resize(len / sizeof(gid_t));  // the kernel said how many
    }
    groups.resize(len / sizeof(gid_t));
    out = Credentials{peer.pid, peer.uid, peer.gid, std::move(groups)};
    return bus::Status::success();
}

ActingAs::ActingAs(const Credentials& who) {
    fsuid_ = set_fsuid(static_cast<uid_t>(-1));
    fsgid_ = set_fsgid(static_cast<gid_t>(-1));
    if (::geteuid() != 0) {
        if (who.uid != fsuid_) {
            status_ = bus::Status::error(
                std::errc::operation_not_permitted,
                fmt::format("the daemon is not root: it cannot act for uid {}", who.uid));
        }
        return;
    }
    groups_ = thread_groups();
    switched_ = true;
    // Groups first: dropping the fs uid does not drop CAP_SETGID, but the
    // order keeps every step the one a root thread may take.
    if (set_groups(who.groups) != 0) {
        status_ = bus::Status::error(static_cast<std::errc>(errno),
                                     fmt::format("setgroups: {}", std::strerror(errno)));
        restore();
        return;
    }
    set_fsgid(who.gid);
    set_fsuid(who.uid);
    if (set_fsgid(static_cast<gid_t>(-1)) != who.gid ||
        set_fsuid(static_cast<uid_t>(-1)) != who.uid) {
        status_ = bus::Status::error(std::errc::operation_not_permitted,
                                     fmt::format("cannot take uid {} gid {}", who.uid, who.gid));
        restore();
    }
}

ActingAs::~ActingAs() {
    restore();
}

void ActingAs::restore() {
    if (!switched_) return;
    switched_ = false;
    set_fsuid(fsuid_);
    set_fsgid(fsgid_);
    bool ok = set_fsuid(static_cast<uid_t>(-1)) == fsuid_ &&
              set_fsgid(static_cast<gid_t>(-1)) == fsgid_ && set_groups(groups_) == 0;
    if (!ok) {
        bus::log::error({"credentials"}, "cannot restore the thread's own credentials: stopping");
        std::abort();
    }
}

}  // namespace ipnfs::netdev
