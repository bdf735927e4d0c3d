// The shell's way to write to a port (docs/usage.md, "Writing from the
// shell"), with bash on a lossless network whose receiver does not read:
// `exec 3>portN` sends without making the port a receiver, its waiting
// write ends on Ctrl-C, and the one uninterruptible wait the docs name (an
// O_TRUNC open behind another waiting write of the same file) ends with
// holdtime.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

class ShellWriterTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
    }

    // bash -c SCRIPT in a process group of its own, as a terminal's
    // foreground job: kill(-pid, SIGINT) is its Ctrl-C.  Its stdout goes
    // nowhere, its stderr to err_file(); TearDown kills what is left.
    pid_t start_bash(const std::string& script) {
        std::string err = err_file();
        pid_t pid = fork_child([script, err] {
            setpgid(0, 0);
            ::signal(SIGINT, SIG_DFL);
            ::signal(SIGTERM, SIG_DFL);
            int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
            int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (null >= 0) dup2(null, 1);
            if (fd >= 0) dup2(fd, 2);
            execlp("bash", "bash", "-c", script.c_str(), static_cast<char*>(nullptr));
            return 127;
        });
        if (pid > 0) {
            setpgid(pid, pid);
            shell_ = pid;
        }
        return pid;
    }
    // The shell's wait status once it exited (then TearDown leaves it be).
    std::optional<int> wait_shell(std::chrono::milliseconds timeout) {
        std::optional<int> status = wait_child(shell_, timeout);
        shell_ = -1;
        return status;
    }
    void TearDown() override {
        if (shell_ > 0) {
            kill(-shell_, SIGKILL);
            wait_child(shell_, 5s);
        }
        IpnfsTest::TearDown();
    }
    [[nodiscard]] std::string err_file() const { return scratch() + "/bash.err"; }

    // The port's row in stats (zeros if it has none).
    PortRow row(unsigned port) {
        Stats s = stats(net_);
        auto it = s.rows.find(port);
        return it == s.rows.end() ? PortRow{} : it->second;
    }
    bool parked_senders(std::uint64_t n) {
        return eventually([&] { return stats(net_).total("parked_senders") == n; }, 5s);
    }

    std::string net_;
    pid_t shell_ = -1;
};

// A lossless network that never gives up on a receiver, with room for one
// message per port: the second message to a port that does not read waits.
constexpr const char* kWaitForEver = "lossless on\nqueue 1\nholdtime 0\n";

TEST_F(ShellWriterTest, ExecWriteOnlyDoesNotMakeTheWriterAReceiver) {
    ASSERT_EQ(ctl(net_, "lossless on\nqueue 2\nholdtime 0\n"), 0);
    Fd rx = open_fd(net_ + "/port0", O_RDONLY);
    pid_t sh = start_bash("exec 3>" + sq(net_ + "/port2") + "\necho from-shell >&3\nsleep 30\n");
    ASSERT_GT(sh, 0);
    Io first = read_one(rx.get(), 5000);
    EXPECT_EQ(first.data, "from-shell\n");
    PortRow shell_port = row(2);
    EXPECT_EQ(shell_port.readers, 0u) << "exec 3>port2 made port 2 a receiver";
    EXPECT_EQ(shell_port.writers, 1u);

    // Another sender goes on past port 2's queue length while the shell
    // holds port 2 open: port 2 receives nothing, so holds nobody back.
    Fd tx = open_fd(net_ + "/port3", O_WRONLY);
    for (int i = 0; i < 8; ++i) {
        std::string m = "m" + std::to_string(i);
        Io w = write_msg(tx.get(), m, 2000);
        ASSERT_EQ(w.n, static_cast<ssize_t>(m.size()))
            << "write " << i << " waited: the shell's port holds the network back";
        EXPECT_EQ(read_one(rx.get(), 2000).data, m);
    }
    EXPECT_EQ(row(2).queued, 0u);
    EXPECT_EQ(stats(net_).total("stalls"), 0u);
    ASSERT_EQ(kill(-sh, SIGTERM), 0);
    std::optional<int> status = wait_shell(5s);
    EXPECT_TRUE(status && WIFSIGNALED(*status)) << read_whole(err_file());
}

TEST_F(ShellWriterTest, CtrlCEndsAWaitingWriteOfTheRecipe) {
    ASSERT_EQ(ctl(net_, kWaitForEver), 0);
    Fd rx = open_fd(net_ + "/port0", O_RDONLY);  // never reads
    // As an interactive shell does, the script survives the signal: the
    // write itself must end, with EINTR.
    pid_t sh =
        start_bash("trap 'echo interrupted >&2; exit 130' INT\nexec 3>" + sq(net_ + "/port2") +
                   "\necho one >&3\necho two >&3\necho sent-two >&2\n");
    ASSERT_GT(sh, 0);
    ASSERT_TRUE(parked_senders(1)) << "the second echo never waited";
    EXPECT_EQ(process_state(sh), 'S') << "the waiting write is not interruptible";
    EXPECT_EQ(row(2).readers, 0u);

    auto t0 = Clock::now();
    ASSERT_EQ(kill(-sh, SIGINT), 0);
    std::optional<int> status = wait_shell(5s);
    EXPECT_EQ(exit_code_of(status), 130) << read_whole(err_file());
    EXPECT_LT(seconds_since(t0), 2.0) << "Ctrl-C did not end the write promptly";
    std::string err = read_whole(err_file());
    EXPECT_TRUE(contains(err, "Interrupted system call")) << err;
    EXPECT_FALSE(contains(err, "sent-two")) << err;
    EXPECT_TRUE(parked_senders(0));
    // All or none: the interrupted message reached nobody.
    EXPECT_EQ(read_one(rx.get(), 2000).data, "one\n");
    EXPECT_TRUE(read_one(rx.get(), 200).timed_out());
}

// The old advice (`exec 3<>port2`) opens for reading too: what the docs now
// warn about, shown as stats shows it.
TEST_F(ShellWriterTest, ExecReadWriteMakesTheWriterAReceiver) {
    Shell sh = run_shell(
        "exec 3<>" + sq(net_ + "/port2") + "\nawk '$1 == 2 { print $2 }' " + sq(net_ + "/stats"),
        10);
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_EQ(sh.out, "1\n") << "port 2's readers while the shell holds it with <>";
}

// The one uninterruptible wait docs/usage.md names: `exec 3>port` (O_TRUNC)
// while another write of the same port file waits for room.  It lasts as
// long as that write waits, so holdtime bounds it.
TEST_F(ShellWriterTest, TruncatingOpenBehindAWaitingWriteEndsWithHoldtime) {
    ASSERT_EQ(ctl(net_, "lossless on\nqueue 1\nholdtime 1500\n"), 0);
    Fd rx = open_fd(net_ + "/port0", O_RDONLY);  // never reads
    Fd other = open_fd(net_ + "/port2", O_WRONLY);
    ASSERT_EQ(write_msg(other.get(), "fills").n, 5);
    BackgroundWrite waiting(mount_, other.get(), "waits");
    ASSERT_TRUE(parked_senders(1));
    auto t0 = Clock::now();
    pid_t sh = start_bash("exec 3>" + sq(net_ + "/port2") + "\necho opened >&2\n");
    ASSERT_GT(sh, 0);
    EXPECT_TRUE(eventually([&] { return process_state(sh) == 'D'; }, 1s))
        << "the O_TRUNC open did not wait for the inode lock; state " << process_state(sh);
    std::optional<int> status = wait_shell(10s);
    EXPECT_EQ(exit_code_of(status), 0) << read_whole(err_file());
    double waited = seconds_since(t0);
    EXPECT_LT(waited, 1.5 + 3.0) << "the open outlived holdtime";
    EXPECT_TRUE(waiting.wait(5s));
    EXPECT_EQ(waiting.result().n, 5) << "holdtime stalled port 0, so the waiting write went";
    EXPECT_GE(stats(net_).total("stalls"), 1u);
}

}  // namespace
}  // namespace ipnfs_it
