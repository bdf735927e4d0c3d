// Bounded I/O and process helpers for the integration tests: nothing here
// knows about the daemon, only about files, descriptors and processes.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stats_text.hpp"

namespace ipnfs_it {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double seconds_since(Clock::time_point t0);
// The content of an ordinary file (outside the mount), "" if unreadable.
std::string read_whole(const std::string& path);

// ---- Descriptors: every wait bounded ----

struct Io {
    ssize_t n = -1;
    int err = 0;  // errno, or ETIMEDOUT if nothing happened in time
    std::string data;
    [[nodiscard]] bool timed_out() const { return n < 0 && err == ETIMEDOUT; }
};

// One write() (one message) once poll() says the fd is writable.
Io write_msg(int fd, std::string_view data, int timeout_ms = 2000);
// Loops until all of `data` is written (ordinary files, pipes).
bool write_all(int fd, std::string_view data, int timeout_ms = 2000);
// One read() once poll() says there is something; ETIMEDOUT if nothing came.
Io read_one(int fd, int timeout_ms = 2000, std::size_t bufsize = 65536);

// An owned descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    [[nodiscard]] int get() const { return fd_; }
    [[nodiscard]] bool ok() const { return fd_ >= 0; }
    void reset();

  private:
    int fd_ = -1;
};

// open(); a failure is reported (ADD_FAILURE) and gives an invalid Fd.
Fd open_fd(const std::string& path, int flags);
// open(); -1 and errno on failure, nothing reported.
int try_open(const std::string& path, int flags, mode_t mode = 0);
// The whole content of a (small, non-blocking) file such as ctl or stats.
std::string slurp(const std::string& path);
// open(O_WRONLY|O_TRUNC) + one write() + close: 0 or the errno of the step that failed.
int write_file(const std::string& path, std::string_view text);

// stats parsed (the one parser the unit tests use too), and ctl.
using ipnfs::stats_text::parse_stats;
using ipnfs::stats_text::PortRow;
using ipnfs::stats_text::Stats;
// The "# last error: ..." line of a ctl text, or "" if there is none.
std::string last_error_line(const std::string& ctl_text);
// Names in a directory, without "." and "..", sorted.
std::vector<std::string> list_dir(const std::string& path);
std::vector<std::string> lines_of(const std::string& text);
// Line i (from 0) of text, or "" if it has fewer lines.
std::string nth_line(const std::string& text, std::size_t i);

// sh -c SCRIPT in its own process group, killed (the group) at the deadline.
struct Shell {
    int status = -1;  // wait status
    bool timed_out = false;
    std::string out, err;
    double seconds = 0;
    [[nodiscard]] int exit_code() const;  // -1 unless it exited normally
};
Shell run_shell(const std::string& script, double timeout_s = 10.0);
// Whether `part` occurs in `text` (output, logs, ctl text).
inline bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// A word for a shell script, in single quotes (paths here have no quotes).
inline std::string sq(const std::string& s) {
    return "'" + s + "'";
}
// argv exec'd directly (no shell), same contract.
Shell run_argv(const std::vector<std::string>& argv, double timeout_s = 10.0);

// "Threads:" of /proc/PID/status, or -1.
int thread_count(pid_t pid);
// "VmRSS:" of /proc/PID/status in KiB, or -1.
long rss_kib(pid_t pid);

// The scheduler state letter (R, S, D, ...) of a process, or of a thread of
// this process (task_state), '?' if it is gone.
char process_state(pid_t pid);
char task_state(pid_t tid);

// Polls `done` every 5 ms until it is true or `timeout` passed; its last answer.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// fork(): the child runs `body` and _exit()s with what it returns (keep the
// body to syscalls: the parent has threads).  -1 if fork failed (reported).
pid_t fork_child(const std::function<int()>& body);
// The child's wait status once it exited; at the deadline it is SIGKILLed,
// reaped, reported, and the answer is nullopt.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout);
// The exit code of a child that exited normally, else -1.
int exit_code_of(const std::optional<int>& status);

// A signal handler (installed without SA_RESTART) that does nothing, so a
// signal only interrupts the syscall in progress.
void install_interrupting_handler(int sig);

// The revents poll() gives one descriptor within timeout_ms, 0 if none.
short poll_now(int fd, short events, int timeout_ms = 0);

}  // namespace ipnfs_it
