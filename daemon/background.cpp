#include "daemon/background.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>

namespace ipnfs::daemon {

namespace {

// The parent: the child's "ready" byte means exit 0; end of file means the
// child exited first, and its status is the parent's.
[[noreturn]] void wait_for_child(pid_t child, int ready_fd) {
    char ready = 0;
    ssize_t n = 0;
    do {
        n = read(ready_fd, &ready, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1) _exit(0);
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) _exit(1);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

}  // namespace

Background::Background(bool foreground) {
    if (foreground) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        std::fprintf(stderr, "ipnfs: pipe: %s\n", std::strerror(errno));
        std::exit(1);
    }
    std::fflush(nullptr);  // nothing buffered is written twice
    pid_t pid = fork();
    if (pid < 0) {
        std::fprintf(stderr, "ipnfs: fork: %s\n", std::strerror(errno));
        std::exit(1);
    }
    if (pid > 0) {
        close(fds[1]);
        wait_for_child(pid, fds[0]);
    }
    close(fds[0]);
    ready_fd_ = fds[1];
}

Background::~Background() {
    if (ready_fd_ >= 0) close(ready_fd_);
}

void Background::detach() {
    std::ignore = chdir("/");  // "/" is there; the point is not to hold the start directory busy
    if (ready_fd_ < 0) return;
    setsid();
    if (int null = open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) close(null);
    }
    char ready = 1;
    std::ignore = write(ready_fd_, &ready, 1);  // fails only if the parent is gone
    close(ready_fd_);
    ready_fd_ = -1;
}

}  // namespace ipnfs::daemon
