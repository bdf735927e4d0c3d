// Issue 16, finding 14: one reader of a lossless network that never reads
// (here: another user's reader, SIGSTOPped) must not hold every sender, root's
// included, for ever.  After the network's holdtime its port turns lossy
// until it reads again, and then it learns how many messages it lost.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

using namespace std::chrono_literals;

constexpr int kMessages = 20;
constexpr auto kHoldtime = 1000ms;
// Generous on a shared machine: the bound is kHoldtime.
constexpr auto kMargin = 4s;

class SlowConsumerTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }
};

// As nobody: reads `port` for ever, copying each message to `out`, one a line.
int read_as_nobody(const std::string& port, int out) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
        return 200;
    }
    int fd = open(port.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 201;
    std::vector<char> buf(65536);
    for (;;) {
        ssize_t n = read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;  // the stop interrupted a parked read
        if (n <= 0) return 202;
        std::string line(buf.data(), static_cast<std::size_t>(n));
        if (line.back() != '\n') line += '\n';
        if (!write_all(out, line)) return 203;
    }
}

TEST_F(SlowConsumerTest, AStoppedLosslessReaderHoldsRootsSenderOnlyForTheHoldtime) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 4\nevents 1 on\n"), 0);
    EXPECT_EQ(ctl(net, "holdtime " + std::to_string(kHoldtime.count()) + "\n"), 0)
        << last_error_line(ctl_text(net));
    int lines[2];
    ASSERT_EQ(pipe2(lines, O_CLOEXEC), 0);
    pid_t reader = fork_child([&] {
        close(lines[0]);
        return read_as_nobody(net + "/port1", lines[1]);
    });
    close(lines[1]);
    ASSERT_TRUE(eventually([&] { return stats(net).rows[1].readers == 1; }, 5s));
    ASSERT_EQ(kill(reader, SIGSTOP), 0);
    ASSERT_TRUE(eventually([&] { return process_state(reader) == 'T'; }, 5s));

    Fd w = open_fd(net + "/port0", O_WRONLY);
    auto t0 = Clock::now();
    bool sent = false;
    {
        BackgroundCall flood(mount_, [&] {
            Io io;
            for (int i = 0; i < kMessages; ++i) {
                std::string m = "m" + std::to_string(i) + "\n";
                io.n = ::write(w.get(), m.data(), m.size());
                if (io.n < 0) {
                    io.err = errno;
                    break;
                }
            }
            return io;
        });
        sent = flood.wait(kHoldtime + kMargin);
        if (!sent) kill(reader, SIGKILL);  // its close lets the sender go
        flood.wait(10s);
        EXPECT_GT(flood.result().n, 0) << std::strerror(flood.result().err);
    }
    double took = seconds_since(t0);
    EXPECT_TRUE(sent) << "a stopped reader held root's sender for more than "
                      << (kHoldtime + kMargin).count() << " ms";
    EXPECT_GE(took, 0.9 * static_cast<double>(kHoldtime.count()) / 1000)
        << "the sender did not wait for the holdtime first";
    EXPECT_GE(stats(net).total("stalls"), 1U);

    // Resumed, the reader gets what was queued for it, then `lost N`.
    kill(reader, SIGCONT);
    std::string got;
    std::uint64_t lost = 0;
    int data = 0;
    auto deadline = Clock::now() + 5s;
    while (lost == 0 && Clock::now() < deadline) {
        Io io = read_one(lines[0], 500, 4096);
        if (io.n <= 0) continue;
        got += io.data;
        for (std::size_t nl; (nl = got.find('\n')) != std::string::npos; got.erase(0, nl + 1)) {
            std::string line = got.substr(0, nl);
            if (line.rfind("lost ", 0) == 0) lost = std::stoull(line.substr(5));
            if (line.rfind('m', 0) == 0) ++data;
        }
    }
    kill(reader, SIGKILL);
    wait_child(reader, 10s);
    close(lines[0]);
    EXPECT_GT(lost, 0U) << "the resumed reader was not told what it lost";
    EXPECT_EQ(static_cast<std::uint64_t>(data) + lost, std::uint64_t{kMessages})
        << data << " messages read, " << lost << " reported lost";
    EXPECT_EQ(stats(net).total("parked_senders"), 0U);
}

}  // namespace
}  // namespace ipnfs_it
