// Networks going away (rmdir) and the daemon going away (umount, signals),
// starting in the background, and refusing a bad mount point.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using LifecycleTest = IpnfsTest;

bool contains(const std::vector<std::string>& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// Polls fd for `events` on another thread, for up to 5 s: its revents, or 0.
std::future<short> poll_in_background(int fd, short events) {
    return std::async(std::launch::async, [fd, events] {
        pollfd pfd{fd, events, 0};
        return poll(&pfd, 1, 5000) == 1 ? pfd.revents : short{0};
    });
}

TEST_F(LifecycleTest, RmdirWithOpenPortsGivesReadersEndOfFileAndWritersEPIPE) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    Fd rw = open_fd(net + "/port3", O_RDWR);
    BackgroundRead blocked(mount_, r.get());
    ASSERT_TRUE(blocked.wait_blocked(2s));

    auto removed = Clock::now();
    ASSERT_EQ(rmdir(net.c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(blocked.wait(3s)) << "the blocked reader was not woken by rmdir";
    EXPECT_EQ(blocked.result().n, 0) << "expected end of file, errno " << blocked.result().err;
    EXPECT_LT(std::chrono::duration<double>(blocked.finished_at() - removed).count(), 1.0);

    // Further reads: end of file at once, and poll says so.
    Io again = read_one(r.get(), 1000);
    EXPECT_EQ(again.n, 0);
    EXPECT_EQ(read_one(rw.get(), 1000).n, 0);
    Io wr = write_msg(w.get(), "anyone?");
    EXPECT_EQ(wr.n, -1);
    EXPECT_EQ(wr.err, EPIPE);
    EXPECT_EQ(write_msg(rw.get(), "x").err, EPIPE);

    struct stat st {};
    EXPECT_EQ(stat(net.c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_FALSE(contains(list_dir(p("")), "lan"));
}

TEST_F(LifecycleTest, RmdirWakesPollersWithEndOfFile) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    std::future<short> polled = poll_in_background(r.get(), POLLIN);
    ASSERT_EQ(polled.wait_for(300ms), std::future_status::timeout) << "poll returned early";
    auto removed = Clock::now();
    ASSERT_EQ(rmdir(net.c_str()), 0);
    short revents = polled.get();
    EXPECT_TRUE(revents & POLLIN) << "poll was not woken by rmdir";
    EXPECT_EQ(revents & (POLLHUP | POLLERR), POLLHUP | POLLERR) << "revents " << revents;
    EXPECT_LT(seconds_since(removed), 1.0);
    char c;
    EXPECT_EQ(read(r.get(), &c, 1), 0);
}

// A writer waiting for room on a full lossless network learns from poll that
// the network is gone, as a pipe writer learns its reader is: POLLERR and
// POLLHUP, and the write then fails with EPIPE.
TEST_F(LifecycleTest, RmdirWakesAWriterPollingForRoomWithPollerrAndPollhup) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 1\n"), 0);
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY | O_NONBLOCK);
    ASSERT_EQ(write_msg(w.get(), "fills the queue").n, 15);
    pollfd full{w.get(), POLLOUT, 0};
    ASSERT_EQ(poll(&full, 1, 0), 0) << "the queue should be full";
    std::future<short> polled = poll_in_background(w.get(), POLLOUT);
    ASSERT_EQ(polled.wait_for(300ms), std::future_status::timeout) << "poll returned early";
    auto removed = Clock::now();
    ASSERT_EQ(rmdir(net.c_str()), 0);
    short revents = polled.get();
    EXPECT_EQ(revents & (POLLHUP | POLLERR), POLLHUP | POLLERR) << "revents " << revents;
    EXPECT_LT(seconds_since(removed), 1.0);
    EXPECT_EQ(write_msg(w.get(), "x").err, EPIPE);
}

TEST_F(LifecycleTest, PortsOfALiveNetworkNeverSayPollhupOrPollerr) {
    std::string net = make_net("lan");
    Fd rw = open_fd(net + "/port1", O_RDWR);
    pollfd pfd{rw.get(), POLLIN | POLLOUT, 0};
    ASSERT_EQ(poll(&pfd, 1, 0), 1);
    EXPECT_EQ(pfd.revents & (POLLHUP | POLLERR), 0);
}

TEST_F(LifecycleTest, ANetworkMadeAgainWithTheSameNameIsIndependent) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "mtu 4000\n"), 0);
    Fd old_r = open_fd(net + "/port1", O_RDONLY);
    Fd old_w = open_fd(net + "/port2", O_WRONLY);
    ASSERT_EQ(write_msg(old_w.get(), "old").n, 3);
    ASSERT_EQ(rmdir(net.c_str()), 0);

    ASSERT_EQ(mkdir(net.c_str(), 0755), 0) << std::strerror(errno);
    Stats st = stats(net);
    EXPECT_EQ(st.total("msgs_in"), 0u);
    EXPECT_EQ(st.total("connected"), 0u);
    EXPECT_TRUE(st.rows.empty());
    EXPECT_EQ(nth_line(ctl_text(net), 2), "mtu 1514");

    Fd new_r = open_fd(net + "/port1", O_RDONLY);
    Fd new_w = open_fd(net + "/port2", O_WRONLY);
    ASSERT_EQ(write_msg(new_w.get(), "new").n, 3);
    EXPECT_EQ(read_one(new_r.get()).data, "new");
    // The old descriptors still belong to the removed network.
    EXPECT_EQ(write_msg(old_w.get(), "x").err, EPIPE);
    Io old = read_one(old_r.get(), 1000);
    while (old.n > 0) {  // whatever the old network still held, never "new"
        EXPECT_NE(old.data, "new");
        old = read_one(old_r.get(), 1000);
    }
    EXPECT_EQ(old.n, 0);
    EXPECT_EQ(stats(net).total("msgs_in"), 1u);
}

TEST_F(LifecycleTest, UmountStopsTheDaemonWithExitCodeZero) {
    make_net("lan");
    ASSERT_EQ(umount2(mount_.dir().c_str(), 0), 0) << std::strerror(errno);
    auto status = mount_.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not exit after umount";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
    EXPECT_FALSE(mount_.mounted());
}

// A process that made a mount namespace of its own while ipnfs was mounted
// (unshare -m, `ip netns exec`, any user namespace) holds a copy of the
// mount, and the kernel keeps the FUSE connection while any copy lives.
// Root's umount in the daemon's namespace still ends the daemon (and with it
// its TAPs and cables); the copy then says ENOTCONN.
TEST_F(LifecycleTest, UmountEndsTheDaemonWhileAnotherMountNamespaceHoldsACopy) {
    std::string net = make_net("lan");
    if (access("/usr/bin/unshare", X_OK) != 0 || access("/usr/bin/nsenter", X_OK) != 0) {
        IPNFS_SKIP_OR_FAIL("unshare(1) and nsenter(1) are missing (util-linux)");
    }
    pid_t holder = fork_child([] {
        execl("/usr/bin/unshare", "unshare", "--mount", "sleep", "30", static_cast<char*>(nullptr));
        return 127;
    });
    ASSERT_GT(holder, 0);
    const std::string its_mounts = "/proc/" + std::to_string(holder) + "/mountinfo";
    bool copied = eventually(
        [&] {
            return read_whole("/proc/" + std::to_string(holder) + "/comm") == "sleep\n" &&
                   read_whole(its_mounts).find(mount_.dir()) != std::string::npos;
        },
        5s);
    EXPECT_TRUE(copied) << "unshare --mount sleep 30 never held a copy of the mount";

    if (copied) {
        ASSERT_EQ(umount2(mount_.dir().c_str(), 0), 0) << std::strerror(errno);
        auto status = mount_.wait_exit(5s);
        EXPECT_TRUE(status.has_value()) << "the daemon still serves a copy after root's umount";
        if (status) {
            EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
                << "wait status " << *status;
        }
        Shell in_copy = run_argv({"nsenter", "-t", std::to_string(holder), "-m", "stat", net});
        EXPECT_NE(in_copy.exit_code(), 0) << in_copy.out;
        EXPECT_NE(in_copy.err.find("Transport endpoint is not connected"), std::string::npos)
            << in_copy.err;
    }
    ::kill(holder, SIGKILL);
    wait_child(holder, 5s);
}

TEST_F(LifecycleTest, SigtermWithABlockedCatUnmountsAndExitsZero) {
    std::string net = make_net("lan");
    auto cat = std::async(std::launch::async, [&] {
        return run_shell("cat '" + net + "/port1'; echo \"cat exit $?\"", 15);
    });
    auto deadline = Clock::now() + 5s;
    while (stats(net).total("connected") != 1 && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(stats(net).total("connected"), 1u) << "cat never opened the port";
    std::this_thread::sleep_for(200ms);  // let it block in read()

    auto sent = Clock::now();
    mount_.signal(SIGTERM);
    Shell sh = cat.get();
    EXPECT_LT(seconds_since(sent), 3.0) << "cat did not end promptly";
    EXPECT_EQ(sh.out, "cat exit 0\n") << sh.err;
    auto status = mount_.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not exit after SIGTERM";
    EXPECT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 0) << "SIGTERM is a clean stop";
    EXPECT_FALSE(mount_.mounted());
}

TEST_F(LifecycleTest, SigintUnmountsAndExitsZero) {
    make_net("lan");
    mount_.signal(SIGINT);
    auto status = mount_.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not exit after SIGINT";
    EXPECT_TRUE(WIFEXITED(*status)) << "wait status " << *status;
    EXPECT_EQ(WEXITSTATUS(*status), 0) << "SIGINT is a clean stop";
    EXPECT_FALSE(mount_.mounted());
}

// A crash far from a debugger (CI, a user's machine) must leave enough to
// find the line: the signal and the return addresses, in the log file.
TEST_F(LifecycleTest, AFatalSignalLeavesItsNameAndABacktraceInTheLog) {
    make_net("lan");
    mount_.signal(SIGSEGV);
    auto status = mount_.wait_exit(10s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not end on SIGSEGV";
    std::string log = mount_.log();
#ifdef __SANITIZE_ADDRESS__
    // The sanitizer's handler reports instead, and exits.
    EXPECT_NE(log.find("AddressSanitizer"), std::string::npos) << log;
#else
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGSEGV) << "wait status " << *status;
    auto at = log.find("ipnfs: fatal signal SIGSEGV");
    ASSERT_NE(at, std::string::npos) << log;
    EXPECT_NE(log.find("ipnfs(", at), std::string::npos) << "no frame of the daemon: " << log;
#endif
}

TEST(LifecycleCli, ANonExistentMountPointExitsNonZero) {
    const std::string bad = "/tmp/ipnfs-it-no-such-dir/below";
    for (bool foreground : {true, false}) {
        SCOPED_TRACE(foreground ? "with -f" : "without -f");
        std::vector<std::string> argv{IPNFS_BINARY, "none", bad};
        if (foreground) argv.push_back("-f");
        Shell sh = run_argv(argv, 10);
        EXPECT_FALSE(sh.timed_out);
        EXPECT_TRUE(WIFEXITED(sh.status));
        EXPECT_NE(sh.exit_code(), 0) << sh.out << sh.err;
    }
}

TEST(LifecycleCli, WithoutDashFItReturnsZeroOnceMountedAndKeepsServing) {
    if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    AdoptedMount m;
    ASSERT_FALSE(m.dir().empty());
    Shell sh = run_argv({IPNFS_BINARY, "none", m.dir(), "-o", "log_file=" + m.log_file()}, 10);
    ASSERT_FALSE(sh.timed_out) << "the starting process did not return";
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    // Mounted by the time the command returned.
    EXPECT_TRUE(m.mounted());
    EXPECT_GT(m.find_daemon(), 0) << "no background daemon";
    EXPECT_EQ(mkdir((m.dir() + "/lan").c_str(), 0755), 0) << std::strerror(errno);
    EXPECT_EQ(parse_stats(slurp(m.dir() + "/lan/stats")).totals["network"], "lan");

    auto status = m.unmount_and_wait(5s);
    ASSERT_TRUE(status.has_value()) << "the background daemon did not exit after umount";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
    if (HasFailure()) std::cerr << m.log();
}

}  // namespace
}  // namespace ipnfs_it
