#include "test_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace ipnfs_it {

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string read_whole(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Io write_msg(int fd, std::string_view data, int timeout_ms) {
    Io io;
    pollfd pfd{fd, POLLOUT, 0};
    int r = poll(&pfd, 1, timeout_ms);
    if (r == 0) {
        io.err = ETIMEDOUT;
        return io;
    }
    if (r < 0) {
        io.err = errno;
        return io;
    }
    io.n = ::write(fd, data.data(), data.size());
    if (io.n < 0) io.err = errno;
    return io;
}

bool write_all(int fd, std::string_view data, int timeout_ms) {
    while (!data.empty()) {
        Io io = write_msg(fd, data, timeout_ms);
        if (io.n < 0) {
            if (io.err == EINTR || io.err == EAGAIN) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(io.n));
    }
    return true;
}

Io read_one(int fd, int timeout_ms, std::size_t bufsize) {
    Io io;
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, timeout_ms);
    if (r == 0) {
        io.err = ETIMEDOUT;
        return io;
    }
    if (r < 0) {
        io.err = errno;
        return io;
    }
    std::string buf(bufsize, '\0');
    io.n = ::read(fd, buf.data(), buf.size());
    if (io.n < 0) {
        io.err = errno;
    } else {
        buf.resize(static_cast<std::size_t>(io.n));
        io.data = std::move(buf);
    }
    return io;
}

void Fd::reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Fd open_fd(const std::string& path, int flags) {
    int fd = open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) ADD_FAILURE() << "open " << path << ": " << std::strerror(errno);
    return Fd(fd);
}

int try_open(const std::string& path, int flags, mode_t mode) {
    return open(path.c_str(), flags | O_CLOEXEC, mode);
}

std::string slurp(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ADD_FAILURE() << "open " << path << ": " << std::strerror(errno);
        return {};
    }
    std::string text;
    char buf[65536];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    if (n < 0) ADD_FAILURE() << "read " << path << ": " << std::strerror(errno);
    close(fd);
    return text;
}

int write_file(const std::string& path, std::string_view text) {
    int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) return errno;
    int err = 0;
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0) {
        err = errno;
    } else if (static_cast<std::size_t>(n) != text.size()) {
        err = EIO;
    }
    if (close(fd) != 0 && err == 0) err = errno;
    return err;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

std::string nth_line(const std::string& text, std::size_t i) {
    auto lines = lines_of(text);
    return i < lines.size() ? lines[i] : std::string();
}

std::string last_error_line(const std::string& ctl_text) {
    for (const auto& line : lines_of(ctl_text)) {
        if (line.rfind("# last error: ", 0) == 0) return line;
    }
    return {};
}

std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> names;
    DIR* d = opendir(path.c_str());
    if (d == nullptr) {
        ADD_FAILURE() << "opendir " << path << ": " << std::strerror(errno);
        return names;
    }
    while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

int Shell::exit_code() const {
    return (status >= 0 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
}

Shell run_argv(const std::vector<std::string>& args, double timeout_s) {
    Shell sh;
    auto t0 = Clock::now();
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "pipe: " << std::strerror(errno);
        return sh;
    }
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork: " << std::strerror(errno);
        return sh;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        // The test process may ignore signals (SIGPIPE); the child must not.
        ::signal(SIGPIPE, SIG_DFL);
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    setpgid(pid, pid);
    close(null);
    close(out[1]);
    close(err[1]);
    auto deadline =
        t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
    std::optional<Clock::time_point> exited_at;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* sinks[2] = {&sh.out, &sh.err};
    int open_pipes = 2;
    while (true) {
        // WNOWAIT: the exited leader stays a zombie, so its process group
        // id cannot be reused before the kill below.
        siginfo_t info{};
        if (!exited_at &&
            waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid == pid) {
            exited_at = Clock::now();
        }
        if (exited_at && open_pipes == 0) break;
        auto now = Clock::now();
        // Background jobs the script left behind may hold the pipes: give
        // them a second after sh exits, then stop.
        if (now >= deadline || (exited_at && now - *exited_at > 1s)) {
            if (!exited_at) sh.timed_out = true;
            break;
        }
        int r = poll(fds, 2, 20);
        if (r <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) continue;
            char buf[4096];
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                close(fds[i].fd);
                fds[i].fd = -1;
                --open_pipes;
            }
        }
    }
    // Whatever of its process group is still around (timeout, or jobs left
    // in the background) was started by this call.
    ::kill(-pid, SIGKILL);
    auto until = Clock::now() + 5s;
    while (waitpid(pid, &sh.status, WNOHANG) != pid && Clock::now() < until) {
        std::this_thread::sleep_for(5ms);
    }
    for (auto& f : fds) {
        if (f.fd >= 0) close(f.fd);
    }
    sh.seconds = seconds_since(t0);
    return sh;
}

Shell run_shell(const std::string& script, double timeout_s) {
    return run_argv({"/bin/sh", "-c", script}, timeout_s);
}

namespace {
// A number field ("Threads:", "VmRSS:") of /proc/PID/status, or -1.
long status_field(pid_t pid, std::string_view field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field)) return std::stol(line.substr(field.size()));
    }
    return -1;
}
}  // namespace

int thread_count(pid_t pid) {
    return static_cast<int>(status_field(pid, "Threads:"));
}

long rss_kib(pid_t pid) {
    return status_field(pid, "VmRSS:");
}

namespace {
char state_in(const std::string& stat_path) {
    std::ifstream in(stat_path);
    std::string stat;
    std::getline(in, stat);
    auto close_paren = stat.rfind(')');
    return close_paren != std::string::npos && close_paren + 2 < stat.size() ? stat[close_paren + 2]
                                                                             : '?';
}
}  // namespace

char process_state(pid_t pid) {
    return state_in("/proc/" + std::to_string(pid) + "/stat");
}

char task_state(pid_t tid) {
    return state_in("/proc/self/task/" + std::to_string(tid) + "/stat");
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (!done()) {
        if (Clock::now() >= deadline) return done();
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

pid_t fork_child(const std::function<int()>& body) {
    pid_t pid = fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork: " << std::strerror(errno);
        return -1;
    }
    if (pid == 0) {
        ::signal(SIGPIPE, SIG_DFL);
        _exit(body());
    }
    return pid;
}

std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
    if (pid <= 0) return std::nullopt;
    auto deadline = Clock::now() + timeout;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (Clock::now() > deadline) {
            ADD_FAILURE() << "child " << pid << " still running after " << timeout.count()
                          << " ms: killed";
            ::kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return std::nullopt;
        }
        std::this_thread::sleep_for(2ms);
    }
    return st;
}

int exit_code_of(const std::optional<int>& status) {
    return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

void install_interrupting_handler(int sig) {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the interrupted read() returns EINTR
    sigaction(sig, &sa, nullptr);
}

short poll_now(int fd, short events, int timeout_ms) {
    pollfd pfd{fd, events, 0};
    int r = poll(&pfd, 1, timeout_ms);
    return r > 0 ? pfd.revents : 0;
}

}  // namespace ipnfs_it
