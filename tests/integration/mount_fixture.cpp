#include "mount_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#ifndef IPNFS_BINARY
#error "IPNFS_BINARY must name the daemon under test"
#endif

namespace ipnfs_it {

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string_view(ci) == "true";
}

std::string fuse_problem() {
    if (access("/dev/fuse", F_OK) != 0) return "/dev/fuse does not exist";
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) return std::string("cannot open /dev/fuse: ") + std::strerror(errno);
    close(fd);
    return {};
}
namespace {
bool is_fuse_ipnfs_mount(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::vector<std::string> w;
        std::string word;
        while (words >> word) w.push_back(word);
        if (w.size() < 7 || w[4] != dir) continue;
        for (std::size_t i = 5; i + 1 < w.size(); ++i) {
            if (w[i] == "-" && w[i + 1] == "fuse.ipnfs") return true;
        }
    }
    return false;
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

}  // namespace

std::string Mount::path(std::string_view rel) const {
    std::string out = dir_;
    if (!rel.empty()) {
        out += '/';
        out += rel;
    }
    return out;
}

bool Mount::mounted() const {
    return !dir_.empty() && is_fuse_ipnfs_mount(dir_);
}

bool transport_is_uring() {
    const char* t = std::getenv("IPNFS_TEST_TRANSPORT");
    return t != nullptr && std::string_view(t) == "uring";
}

bool Mount::start(const std::vector<std::string>& extra_options, std::string& why,
                  const std::vector<std::string>& prefix) {
    char tmpl[] = "/tmp/ipnfs-it.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        why = std::string("mkdtemp: ") + std::strerror(errno);
        return false;
    }
    dir_ = tmpl;
    log_file_ = dir_ + ".log";
    out_file_ = dir_ + ".out";
    std::vector<std::string> args = prefix;
    args.insert(args.end(),
                {IPNFS_BINARY, "none", dir_, "-f", "-o", "log_level=debug,log_file=" + log_file_});
    bool names_uring = false;
    for (const auto& opt : extra_options) {
        args.push_back("-o");
        args.push_back(opt);
        if (opt.rfind("uring", 0) == 0) names_uring = true;
    }
    if (transport_is_uring() && !names_uring) {
        args.push_back("-o");
        args.push_back("uring=on");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out = open(out_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        why = std::string("fork: ") + std::strerror(errno);
        return false;
    }
    if (pid == 0) {
        dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        execvp(argv[0], argv.data());
        _exit(127);
    }
    close(out);
    close(null);
    pid_ = pid;
    auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
        if (mounted()) return true;
        if (auto st = wait_exit(0ms)) {
            why = "the daemon exited (" + describe_status(*st) + ") before mounting:\n" + log();
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
    why = "no fuse.ipnfs mount on " + dir_ + " after 5 s:\n" + log();
    return false;
}

std::optional<int> Mount::wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (status_) return status_;
            if (pid_ <= 0) return std::nullopt;
            int st = 0;
            pid_t r = waitpid(pid_, &st, WNOHANG);
            if (r == pid_) {
                status_ = st;
                return status_;
            }
        }
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(5ms);
    }
}

void Mount::signal(int sig) {
    std::lock_guard lock(mu_);
    if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

void Mount::kill_daemon() {
    signal(SIGKILL);
    wait_exit(10s);
}

void Mount::stop() {
    if (pid_ <= 0) return;
    if (!wait_exit(0ms) && mounted()) {
        if (umount2(dir_.c_str(), 0) != 0) umount2(dir_.c_str(), MNT_DETACH);
    }
    if (!wait_exit(5s)) {
        std::cerr << "ipnfs (pid " << pid_ << ") did not exit after unmount; killing it\n";
        kill_daemon();
    }
    if (mounted()) umount2(dir_.c_str(), MNT_DETACH);
}

void Mount::cleanup() {
    stop();
    if (!dir_.empty()) {
        if (mounted()) umount2(dir_.c_str(), MNT_DETACH);
        rmdir(dir_.c_str());
        unlink(log_file_.c_str());
        unlink(out_file_.c_str());
        dir_.clear();
    }
}

std::string Mount::log() const {
    std::string text = "---- " + log_file_ + " ----\n" + read_whole(log_file_);
    text += "---- daemon stdout/stderr ----\n" + read_whole(out_file_);
    constexpr std::size_t kMax = 20000;
    if (text.size() > kMax) text = "[...]\n" + text.substr(text.size() - kMax);
    return text;
}

Watchdog::Watchdog(Mount& mount, std::chrono::seconds limit) {
    thread_ = std::thread([this, &mount, limit] {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
        ADD_FAILURE() << "test still running after " << limit.count()
                      << " s: killing the daemon so that blocked syscalls end";
        mount.signal(SIGKILL);
    });
}

Watchdog::~Watchdog() {
    {
        std::lock_guard lock(mu_);
        done_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void IpnfsTest::SetUp() {
    ::signal(SIGPIPE, SIG_IGN);
    if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    std::string why;
    if (!mount_.start(mount_options(), why, daemon_prefix())) {
        IPNFS_SKIP_OR_FAIL("cannot mount ipnfs: " + why);
    }
    watchdog_ = std::make_unique<Watchdog>(mount_, 45s);
    char tmpl[] = "/tmp/ipnfs-it-scratch.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    scratch_ = tmpl;
}

void IpnfsTest::TearDown() {
    watchdog_.reset();
    mount_.stop();
    if (HasFailure()) std::cerr << mount_.log();
    mount_.cleanup();
    if (!scratch_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(scratch_, ec);
    }
}

std::string IpnfsTest::make_net(const std::string& name, mode_t mode) {
    std::string path = p(name);
    if (mkdir(path.c_str(), mode) != 0) {
        ADD_FAILURE() << "mkdir " << path << ": " << std::strerror(errno);
    }
    return path;
}

int IpnfsTest::ctl(const std::string& net, std::string_view text) {
    return write_file(net + "/ctl", text);
}

Stats IpnfsTest::stats(const std::string& net) {
    return parse_stats(slurp(net + "/stats"));
}

BackgroundCall::BackgroundCall(Mount& mount, std::function<Io()> call) : mount_(mount) {
    thread_ = std::thread([this, call = std::move(call)] {
        tid_ = static_cast<pid_t>(syscall(SYS_gettid));
        Io io = call();
        std::lock_guard lock(mu_);
        io_ = std::move(io);
        finished_ = Clock::now();
        done_ = true;
        cv_.notify_all();
    });
}

BackgroundCall::~BackgroundCall() {
    if (!wait(0ms)) {
        ADD_FAILURE() << "a call was still blocked at the end of the test; killing the daemon";
        mount_.kill_daemon();
    }
    thread_.join();
}

BackgroundRead::BackgroundRead(Mount& mount, int fd, std::size_t bufsize)
    : BackgroundCall(mount, [fd, bufsize] {
          std::string buf(bufsize, '\0');
          Io io;
          io.n = ::read(fd, buf.data(), buf.size());
          if (io.n < 0) {
              io.err = errno;
          } else {
              buf.resize(static_cast<std::size_t>(io.n));
              io.data = std::move(buf);
          }
          return io;
      }) {}

BackgroundWrite::BackgroundWrite(Mount& mount, int fd, std::string data)
    : BackgroundCall(mount, [fd, data = std::move(data)] {
          Io io;
          io.n = ::write(fd, data.data(), data.size());
          if (io.n < 0) io.err = errno;
          return io;
      }) {}

bool BackgroundCall::wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return done_.load(); });
}

bool BackgroundCall::wait_blocked(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (done_) return false;
        pid_t tid = tid_;
        if (tid != 0) {
            std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
            std::string stat;
            std::getline(in, stat);
            auto close_paren = stat.rfind(')');
            if (close_paren != std::string::npos && close_paren + 2 < stat.size() &&
                stat[close_paren + 2] == 'S') {
                std::this_thread::sleep_for(50ms);
                return !done_;
            }
        }
        std::this_thread::sleep_for(5ms);
    }
    return false;
}

AdoptedMount::AdoptedMount() {
    char tmpl[] = "/tmp/ipnfs-it-ext.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
        return;
    }
    dir_ = tmpl;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

bool AdoptedMount::mounted() const {
    return !dir_.empty() && is_fuse_ipnfs_mount(dir_);
}

pid_t AdoptedMount::find_daemon() {
    if (daemon_ > 0) return daemon_;
    std::string me = std::to_string(getpid());
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cmdline = read_whole("/proc/" + name + "/cmdline");
        if (cmdline.find(dir_) == std::string::npos) continue;
        std::ifstream status("/proc/" + name + "/status");
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("PPid:", 0) == 0) {
                std::istringstream in(line.substr(5));
                std::string ppid;
                in >> ppid;
                if (ppid == me) daemon_ = std::stoi(name);
                break;
            }
        }
        if (daemon_ > 0) break;
    }
    return daemon_;
}

std::optional<int> AdoptedMount::unmount_and_wait(std::chrono::milliseconds timeout) {
    find_daemon();
    if (umount2(dir_.c_str(), 0) != 0) {
        ADD_FAILURE() << "umount " << dir_ << ": " << std::strerror(errno);
        return std::nullopt;
    }
    if (daemon_ <= 0) return std::nullopt;
    auto deadline = Clock::now() + timeout;
    int st = 0;
    while (Clock::now() < deadline) {
        if (waitpid(daemon_, &st, WNOHANG) == daemon_) {
            daemon_ = -1;
            return st;
        }
        std::this_thread::sleep_for(5ms);
    }
    return std::nullopt;
}

std::string AdoptedMount::log() const {
    return "---- " + log_file() + " ----\n" + read_whole(log_file());
}

AdoptedMount::~AdoptedMount() {
    if (dir_.empty()) return;
    find_daemon();
    if (mounted() && umount2(dir_.c_str(), 0) != 0) umount2(dir_.c_str(), MNT_DETACH);
    if (daemon_ > 0) {
        int st = 0;
        auto deadline = Clock::now() + 5s;
        while (waitpid(daemon_, &st, WNOHANG) != daemon_) {
            if (Clock::now() > deadline) {
                ::kill(daemon_, SIGKILL);
                waitpid(daemon_, &st, 0);
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
    }
    if (mounted()) umount2(dir_.c_str(), MNT_DETACH);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    rmdir(dir_.c_str());
    unlink(log_file().c_str());
}

}  // namespace ipnfs_it
