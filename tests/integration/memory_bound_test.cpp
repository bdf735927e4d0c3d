// Issue 16, finding 8: a non-root manager sets `queue 65536` and `mtu 65535`
// and opens readers that never read while a writer floods.  The daemon must
// hold at most the byte budgets root set (-o net_mib, -o user_mib), not
// queue x mtu per reader.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

constexpr long kNetMib = 16;
constexpr long kUserMib = 24;
// Generous: allocator slack, rings, thread stacks on a shared machine.
constexpr long kMarginMib = 40;
constexpr int kMessages = 2000;  // 125 MiB of 65535-byte messages per network

class MemoryBoundTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override {
        return {"allow_other", "net_mib=" + std::to_string(kNetMib),
                "user_mib=" + std::to_string(kUserMib)};
    }
};

// As nobody: settings for the largest queues, three idle readers and a
// flood on each network; then reports on `ready` and keeps everything open
// until `done` closes.
int flood_as_nobody(const std::vector<std::string>& nets, int ready, int done) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
        return 200;
    }
    std::vector<int> fds;
    const std::string message(65535, 'x');
    for (const std::string& net : nets) {
        int ctl = open((net + "/ctl").c_str(), O_WRONLY | O_CLOEXEC);
        if (ctl < 0) return 201;
        const std::string settings = "queue 65536\nmtu 65535\n";
        if (write(ctl, settings.data(), settings.size()) < 0) return 202;
        close(ctl);
        for (const char* port : {"/port1", "/port2", "/port3"}) {
            int fd = open((net + port).c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) return 203;
            fds.push_back(fd);
        }
        int w = open((net + "/port0").c_str(), O_WRONLY | O_CLOEXEC);
        if (w < 0) return 204;
        for (int i = 0; i < kMessages; ++i) {
            if (write(w, message.data(), message.size()) != static_cast<ssize_t>(message.size())) {
                return 205;
            }
        }
        close(w);
    }
    char c = 'r';
    if (write(ready, &c, 1) != 1) return 206;
    (void)read(done, &c, 1);  // until the parent has measured
    for (int fd : fds) close(fd);
    return 0;
}

TEST_F(MemoryBoundTest, IdleReadersOfANonRootManagerHoldAtMostTheByteBudgets) {
    std::vector<std::string> nets{make_net("big1"), make_net("big2")};
    for (const std::string& net : nets) {
        ASSERT_EQ(chown(net.c_str(), kNobody, kNogroup), 0) << std::strerror(errno);
    }
    long before_kib = rss_kib(mount_.pid());
    ASSERT_GT(before_kib, 0);
    int ready[2];
    int done[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(done, O_CLOEXEC), 0);
    pid_t child = fork_child([&] {
        close(ready[0]);
        close(done[1]);
        return flood_as_nobody(nets, ready[1], done[0]);
    });
    close(ready[1]);
    close(done[0]);
    char c = 0;
    bool flooded = read(ready[0], &c, 1) == 1;
    long during_kib = rss_kib(mount_.pid());
    Stats first = stats(nets[0]);
    Stats second = stats(nets[1]);
    close(done[1]);
    close(ready[0]);
    int code = exit_code_of(wait_child(child, std::chrono::seconds(60)));
    ASSERT_TRUE(flooded) << "the flood as nobody failed: exit code " << code;
    EXPECT_EQ(code, 0);

    long grown_mib = (during_kib - before_kib) / 1024;
    EXPECT_LT(grown_mib, kUserMib + kMarginMib)
        << "nobody's idle readers made the daemon hold " << grown_mib << " MiB";
    std::uint64_t owner_held = first.total("owner_held");
    EXPECT_LE(owner_held, std::uint64_t{kUserMib} << 20);
    EXPECT_EQ(owner_held, second.total("owner_held")) << "one budget for both networks";
    EXPECT_LE(first.total("held_bytes"), std::uint64_t{kNetMib} << 20);
    EXPECT_GT(first.total("over_limit_drops") + second.total("over_limit_drops"), 0U);
    EXPECT_EQ(first.total("owner_limit"), std::uint64_t{kUserMib} << 20);
    // The readers are gone: nothing is held any more, and the freed pages
    // went back to the system.
    EXPECT_TRUE(eventually([&] { return stats(nets[0]).total("owner_held") == 0; },
                           std::chrono::seconds(5)))
        << "still held: " << stats(nets[0]).total("owner_held");
    long after_kib = 0;
    EXPECT_TRUE(eventually(
        [&] {
            after_kib = rss_kib(mount_.pid());
            return after_kib - before_kib < kNetMib * 1024;
        },
        std::chrono::seconds(5)))
        << "RSS still " << (after_kib - before_kib) / 1024 << " MiB above the start";
}

// As nobody: the largest queues, then readers on port after port until an
// open fails; exits with that errno (0 if all `tries` opened).
int open_readers_as_nobody(const std::string& net, int tries) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
        return 200;
    }
    int ctl = open((net + "/ctl").c_str(), O_WRONLY | O_CLOEXEC);
    if (ctl < 0) return 201;
    const std::string settings = "ports 1024\nqueue 65536\n";
    if (write(ctl, settings.data(), settings.size()) < 0) return 202;
    close(ctl);
    for (int i = 0; i < tries; ++i) {
        std::string port = net + "/port" + std::to_string(i);
        if (open(port.c_str(), O_RDONLY | O_CLOEXEC) < 0) return errno;
    }
    return 0;
}

TEST_F(MemoryBoundTest, QueuesOfIdleReadersCountAgainstTheBudgetAndAnOpenBeyondIsENOBUFS) {
    std::string net = make_net("many");
    ASSERT_EQ(chown(net.c_str(), kNobody, kNogroup), 0) << std::strerror(errno);
    // 512 KiB a reader at queue 65536: net_mib=16 holds 32 of them.
    pid_t child = fork_child([&] { return open_readers_as_nobody(net, 200); });
    EXPECT_EQ(exit_code_of(wait_child(child, std::chrono::seconds(30))), ENOBUFS)
        << "nobody opened 200 readers of 512 KiB each";
    EXPECT_TRUE(
        eventually([&] { return stats(net).total("held_bytes") == 0; }, std::chrono::seconds(5)))
        << "the readers' queues did not go with them";
}

}  // namespace
}  // namespace ipnfs_it
