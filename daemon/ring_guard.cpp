#include "daemon/ring_guard.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ipnfs::daemon {

namespace {

// The fuse connection's number (its name under /sys/fs/fuse/connections) of
// the last FUSE mount on `mountpoint` in this mount namespace, or "".
std::string connection_of(const std::string& mountpoint) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::string found;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string id, parent, devno, root, point;
        f >> id >> parent >> devno >> root >> point;
        auto dash = line.find(" - ");
        if (point != mountpoint || dash == std::string::npos) continue;
        if (line.compare(dash + 3, 4, "fuse") != 0) continue;
        auto colon = devno.find(':');
        if (colon == std::string::npos) continue;
        unsigned major = std::stoul(devno.substr(0, colon));
        unsigned minor = std::stoul(devno.substr(colon + 1));
        found = std::to_string((major << 20) | minor);  // the kernel's dev_t, as fusectl names it
    }
    return found;
}

}  // namespace

bool RingGuard::start(const std::string& mountpoint, std::string& why) {
    std::string conn = connection_of(mountpoint);
    if (conn.empty()) {
        why = "no FUSE mount on " + mountpoint + " in /proc/self/mountinfo";
        return false;
    }
    // Everything the child uses is made before the fork: it only makes
    // system calls (the daemon has threads).
    const std::string abort_path = "/sys/fs/fuse/connections/" + conn + "/abort";
    // The mount point is looked up from its directory, held now while the
    // mount is there: a directory above it that a user renames later cannot
    // send the guard's stat and umount to another mount.
    std::size_t slash = mountpoint.find_last_of('/');
    std::string name = slash == std::string::npos ? mountpoint : mountpoint.substr(slash + 1);
    std::string parent = slash == std::string::npos ? "." : mountpoint.substr(0, slash);
    if (name.empty() || name == "." || name == "..") {
        why = "no mount point name in " + mountpoint;
        return false;
    }
    int dir = open(parent.empty() ? "/" : parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        why = "open " + parent + ": " + std::strerror(errno);
        return false;
    }
    const std::string target = "/proc/self/fd/" + std::to_string(dir) + "/" + name;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        why = std::string("pipe: ") + std::strerror(errno);
        close(dir);
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        why = std::string("fork: ") + std::strerror(errno);
        close(fds[0]);
        close(fds[1]);
        close(dir);
        return false;
    }
    if (pid == 0) {
        // Nothing of the daemon's may stay open here: a /dev/fuse or the
        // auto_unmount helper's socket would outlive the daemon.  Kept: the
        // pipe's read end and the mount point's directory.
        int r = fds[0];
        auto lo = static_cast<unsigned>(std::min(r, dir));
        auto hi = static_cast<unsigned>(std::max(r, dir));
        if (lo > 3) close_range(3, lo - 1, 0);
        if (hi > lo + 1) close_range(lo + 1, hi - 1, 0);
        close_range(hi + 1, ~0U, 0);
        prctl(PR_SET_NAME, "ipnfs-guard");
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        char c = 0;
        ssize_t n = 0;
        while ((n = read(r, &c, 1)) < 0 && errno == EINTR) {
        }
        if (n == 1) _exit(0);  // dismissed: the daemon unmounts itself
        // Where the fuse control file system is mounted, the connection ends
        // at once; else when the kernel lets go of the rings.
        int a = open(abort_path.c_str(), O_WRONLY | O_CLOEXEC);
        if (a >= 0) {
            (void)!write(a, "1", 1);
            close(a);
        }
        // A dead FUSE mount answers ENOTCONN: unmounted here unless the
        // helper did it first (then the directory answers, and so does a new
        // mount made meanwhile).  ECANCELED and the like: the rings are still
        // going; asked again for up to 10 s.
        for (int i = 0; i < 500; ++i) {
            struct stat st;
            if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) break;
            if (errno == ENOTCONN) {
                umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
                break;
            }
            usleep(20000);
        }
        _exit(0);
    }
    close(dir);
    close(fds[0]);
    fd_ = fds[1];
    return true;
}

void RingGuard::dismiss() {
    if (fd_ < 0) return;
    (void)!write(fd_, "x", 1);
    close(fd_);
    fd_ = -1;
}

RingGuard::~RingGuard() {
    dismiss();
}

}  // namespace ipnfs::daemon
