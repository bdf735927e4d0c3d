// Integration test support: a real ipnfs daemon mounted on a temporary
// directory, driven from outside with syscalls and sh, as a user would.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "test_io.hpp"

namespace ipnfs_it {

// CI=true turns every "cannot run here" into a failure instead of a skip.
bool in_ci();
// Empty if /dev/fuse is usable, else why not.
std::string fuse_problem();

// IPNFS_TEST_TRANSPORT=uring: every Mount the fixture starts asks for FUSE
// over io_uring (`-o uring=on`) unless its options name `uring` themselves;
// the fuse module's enable_uring must then be on (tools/test.sh turns it on
// for its ring stage and back off after).
bool transport_is_uring();

// Skip (locally) or fail (under CI=true) the current test.
#define IPNFS_SKIP_OR_FAIL(why)                   \
    do {                                          \
        if (::ipnfs_it::in_ci()) FAIL() << (why); \
        GTEST_SKIP() << (why);                    \
    } while (0)

// The daemon under test: an IPNFS_BINARY process the fixture started.
class Mount {
  public:
    Mount() = default;
    Mount(const Mount&) = delete;
    Mount& operator=(const Mount&) = delete;
    ~Mount() { cleanup(); }

    // Makes a temp dir and runs `ipnfs none DIR -f -o log...` plus `-o OPT`
    // for each extra option; waits up to 5 s for the mount.  False with a
    // reason if the daemon exited or never mounted.  A `prefix` runs the
    // daemon under a command that execs it in the same process (such as
    // `nsenter --net=PATH`), so pid() is still the daemon's.
    bool start(const std::vector<std::string>& extra_options, std::string& why,
               const std::vector<std::string>& prefix = {});

    [[nodiscard]] const std::string& dir() const { return dir_; }
    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] std::string path(std::string_view rel) const;
    [[nodiscard]] bool mounted() const;

    // The daemon's wait status once it has exited (reaped here), or nullopt
    // if it is still running after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    // Sends sig to the daemon this object started, unless already reaped.
    void signal(int sig);
    // SIGKILL to the daemon (unblocks every syscall on the mount with
    // ENOTCONN), then reaps it.
    void kill_daemon();
    // Unmount if still mounted, wait for the daemon (SIGKILL if it hangs).
    void stop();
    // stop(), then remove the temp dir and log files.  Idempotent.
    void cleanup();
    // The daemon's log file and its stdout/stderr, for failure reports.
    [[nodiscard]] std::string log() const;

  private:
    std::string dir_;
    std::string log_file_;
    std::string out_file_;
    pid_t pid_ = -1;
    std::mutex mu_;  // guards status_ and the reaping of pid_
    std::optional<int> status_;
};

// SIGKILLs the daemon if the test outlives `limit`: every blocked syscall on
// the mount then fails, so no test can hang.
class Watchdog {
  public:
    Watchdog(Mount& mount, std::chrono::seconds limit);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

// A blocking call (read(), write(), ...) on another thread, so the test can
// check it stays blocked, interrupt it, and collect its result with a deadline.
class BackgroundCall {
  public:
    BackgroundCall(Mount& mount, std::function<Io()> call);
    // Joins; if the call is still blocked, kills the daemon first so it ends.
    ~BackgroundCall();
    BackgroundCall(const BackgroundCall&) = delete;
    BackgroundCall& operator=(const BackgroundCall&) = delete;
    bool wait(std::chrono::milliseconds timeout);  // true once the call returned
    // True once the thread sleeps inside the call (state S), give or take 50 ms.
    bool wait_blocked(std::chrono::milliseconds timeout);
    [[nodiscard]] bool done() const { return done_.load(); }
    [[nodiscard]] pthread_t handle() { return thread_.native_handle(); }
    [[nodiscard]] const Io& result() const { return io_; }
    [[nodiscard]] Clock::time_point finished_at() const { return finished_; }

  private:
    Mount& mount_;
    std::atomic<bool> done_{false};
    std::atomic<pid_t> tid_{0};
    Io io_;
    Clock::time_point finished_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::thread thread_;
};

// A blocking read() of one buffer on another thread.
class BackgroundRead : public BackgroundCall {
  public:
    BackgroundRead(Mount& mount, int fd, std::size_t bufsize = 65536);
};

// A blocking write() of one buffer (one message) on another thread.
class BackgroundWrite : public BackgroundCall {
  public:
    BackgroundWrite(Mount& mount, int fd, std::string data);
};

// A mount made by someone else (mount(8), a daemonizing ipnfs).  The test
// process becomes a child subreaper meanwhile, so the daemon, orphaned when
// it daemonizes, is adopted and can be waited for (and killed if it hangs).
class AdoptedMount {
  public:
    AdoptedMount();   // makes the temp dir (dir()), becomes a subreaper
    ~AdoptedMount();  // unmounts, reaps (or kills) the daemon, removes the dir
    AdoptedMount(const AdoptedMount&) = delete;
    AdoptedMount& operator=(const AdoptedMount&) = delete;

    [[nodiscard]] const std::string& dir() const { return dir_; }
    [[nodiscard]] std::string log_file() const { return dir_ + ".log"; }
    [[nodiscard]] bool mounted() const;
    // The adopted child whose command line names dir(), or -1.
    pid_t find_daemon();
    // umount DIR, then the daemon's wait status (nullopt if it did not exit in time).
    std::optional<int> unmount_and_wait(std::chrono::milliseconds timeout);
    [[nodiscard]] std::string log() const;

  private:
    std::string dir_;
    pid_t daemon_ = -1;
};

// A mounted daemon per test.  Subclasses may add -o options.
class IpnfsTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;
    virtual std::vector<std::string> mount_options() const { return {}; }
    // A command the daemon runs under (see Mount::start).
    virtual std::vector<std::string> daemon_prefix() const { return {}; }

    [[nodiscard]] std::string p(std::string_view rel) const { return mount_.path(rel); }
    // mkdir MOUNT/name (a new network); fails the test if it cannot.
    std::string make_net(const std::string& name, mode_t mode = 0755);
    // Writes `text` to NET/ctl in one write(): 0 or the errno.
    int ctl(const std::string& net, std::string_view text);
    [[nodiscard]] std::string ctl_text(const std::string& net) { return slurp(net + "/ctl"); }
    [[nodiscard]] Stats stats(const std::string& net);
    // A scratch directory outside the mount, for shell output files.
    [[nodiscard]] const std::string& scratch() const { return scratch_; }

    Mount mount_;
    std::unique_ptr<Watchdog> watchdog_;
    std::string scratch_;
};

}  // namespace ipnfs_it
