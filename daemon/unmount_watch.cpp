#include "daemon/unmount_watch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sstream>
#include <vector>

#include "bus/log.hpp"

namespace ipnfs::daemon {

namespace {

// mountinfo writes space, tab, newline and backslash as \ooo.
std::string unescape(const std::string& field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size()) {
            const std::string digits = field.substr(i + 1, 3);
            if (digits.find_first_not_of("01234567") == std::string::npos) {
                out += static_cast<char>(std::stoi(digits, nullptr, 8));
                i += 3;
                continue;
            }
        }
        out += field[i];
    }
    return out;
}

struct MountLine {
    std::string device;  // major:minor
    std::string mountpoint;
    std::string fstype;
};

std::vector<MountLine> parse(const std::string& text) {
    std::vector<MountLine> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::array<std::string, 5> f;  // id, parent, major:minor, root, mount point
        if (!(words >> f[0] >> f[1] >> f[2] >> f[3] >> f[4])) continue;
        std::string word;
        // Optional fields end at "-"; the file system type follows.
        while (words >> word && word != "-") {
        }
        std::string fstype;
        words >> fstype;
        lines.push_back({f[2], unescape(f[4]), fstype});
    }
    return lines;
}

bool read_all(int fd, std::string& out) {
    out.clear();
    if (::lseek(fd, 0, SEEK_SET) != 0) return false;
    std::array<char, 4096> buf{};
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) return true;
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
}

}  // namespace

UnmountWatch::UnmountWatch(const std::string& mountpoint, pthread_t loop_thread) {
    int fd = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    std::string text;
    std::string device;
    if (fd >= 0 && read_all(fd, text)) {
        // The newest mount on the mount point is this one (mounted just now).
        for (const MountLine& m : parse(text)) {
            if (m.mountpoint == mountpoint && m.fstype.starts_with("fuse")) device = m.device;
        }
    }
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (device.empty() || stop_fd_ < 0) {
        bus::log::warn({"unmount-watch"},
                       "cannot watch for the unmount of {} ({}): the daemon ends when the last "
                       "mount namespace lets go of the mount",
                       mountpoint, device.empty() ? "not in /proc/self/mountinfo" : "eventfd");
        if (fd >= 0) ::close(fd);
        return;
    }
    // Signals are for libfuse's loop: none may run its handler on this
    // thread, where it would end nothing.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    thread_ = std::thread([this, fd, device, loop_thread] { run(fd, device, loop_thread); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

UnmountWatch::~UnmountWatch() {
    if (thread_.joinable()) {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
        thread_.join();
    }
    if (stop_fd_ >= 0) ::close(stop_fd_);
}

void UnmountWatch::run(int mountinfo_fd, const std::string& device, pthread_t loop_thread) {
    std::string text;
    for (;;) {
        // mountinfo reports every change of this namespace's mounts as
        // POLLPRI (and POLLERR) until it is polled again.
        std::array<pollfd, 2> fds{pollfd{mountinfo_fd, POLLPRI, 0}, pollfd{stop_fd_, POLLIN, 0}};
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            bus::log::warn({"unmount-watch"}, "poll: {}; no longer watching for the unmount",
                           std::strerror(errno));
            break;
        }
        if (fds[1].revents != 0) break;
        if ((fds[0].revents & (POLLPRI | POLLERR)) == 0) continue;
        if (!read_all(mountinfo_fd, text)) {
            bus::log::warn({"unmount-watch"}, "/proc/self/mountinfo: {}; no longer watching",
                           std::strerror(errno));
            break;
        }
        bool mounted = false;
        for (const MountLine& m : parse(text)) mounted = mounted || m.device == device;
        if (!mounted) {
            gone_ = true;
            bus::log::info({"unmount"}, "unmounted in the daemon's mount namespace: ending");
            // Not to end this thread: libfuse's handler ends its loop, and
            // the signal wakes the thread that waits in it.
            pthread_kill(loop_thread, SIGTERM);  // NOLINT(bugprone-bad-signal-to-kill-thread)
            break;
        }
    }
    ::close(mountinfo_fd);
}

}  // namespace ipnfs::daemon
