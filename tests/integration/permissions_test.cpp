// The tree's shape is fixed (EPERM), and modes/owners behave like files'.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using PermissionsTest = IpnfsTest;

mode_t mode_of(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        ADD_FAILURE() << "stat " << path << ": " << std::strerror(errno);
        return 0;
    }
    return st.st_mode & 07777;
}

TEST_F(PermissionsTest, MkdirInsideANetworkIsEPERM) {
    std::string net = make_net("lan");
    EXPECT_EQ(mkdir((net + "/sub").c_str(), 0755), -1);
    EXPECT_EQ(errno, EPERM);
}

TEST_F(PermissionsTest, CreatingAFileIsEPERM) {
    std::string net = make_net("lan");
    for (const std::string& path : {net + "/newfile", p("newfile")}) {
        SCOPED_TRACE(path);
        EXPECT_EQ(try_open(path, O_WRONLY | O_CREAT, 0644), -1);
        EXPECT_EQ(errno, EPERM);
        EXPECT_EQ(mknod(path.c_str(), S_IFREG | 0644, 0), -1);
        EXPECT_EQ(errno, EPERM);
    }
    // O_CREAT on an existing port just opens it.
    int fd = try_open(net + "/port0", O_WRONLY | O_CREAT, 0644);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd >= 0) close(fd);
}

TEST_F(PermissionsTest, UnlinkRenameAndLinksAreEPERM) {
    std::string net = make_net("lan");
    for (const char* name : {"port0", "ctl", "stats", "clone", "events", "capture"}) {
        SCOPED_TRACE(name);
        std::string path = net + "/" + name;
        EXPECT_EQ(unlink(path.c_str()), -1);
        EXPECT_EQ(errno, EPERM);
        EXPECT_EQ(rename(path.c_str(), (net + "/renamed").c_str()), -1);
        EXPECT_EQ(errno, EPERM);
        EXPECT_EQ(link(path.c_str(), (net + "/linked").c_str()), -1);
        EXPECT_EQ(errno, EPERM);
    }
    EXPECT_EQ(rename(net.c_str(), p("other").c_str()), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(symlink("port0", (net + "/sym").c_str()), -1);
    EXPECT_EQ(errno, EPERM);
    std::vector<std::string> names = list_dir(net);
    EXPECT_EQ(names.size(), 6u + 32u) << "the network's files changed";
}

TEST_F(PermissionsTest, ChmodAndChownWorkOnEveryObject) {
    std::string net = make_net("lan");
    std::vector<std::string> objects{
        p(""), net, net + "/ctl", net + "/stats", net + "/clone", net + "/port0", net + "/events"};
    for (const auto& path : objects) {
        SCOPED_TRACE(path);
        ASSERT_EQ(chmod(path.c_str(), 0710), 0) << std::strerror(errno);
        EXPECT_EQ(mode_of(path), 0710u);
        ASSERT_EQ(chown(path.c_str(), 1234, 5678), 0) << std::strerror(errno);
        struct stat st {};
        ASSERT_EQ(stat(path.c_str(), &st), 0);
        EXPECT_EQ(st.st_uid, 1234u);
        EXPECT_EQ(st.st_gid, 5678u);
        EXPECT_EQ(st.st_mode & 07777, 0710u) << "chown changed the mode";
    }
    // port1 was not touched: it still derives from the (changed) directory.
    EXPECT_EQ(mode_of(net + "/port1"), 0710u & 0666u);
}

TEST_F(PermissionsTest, FilesTakeTheNetworkDirectorysReadWriteBits) {
    mode_t old = umask(0);
    std::string net = make_net("lan", 0750);
    umask(old);
    EXPECT_EQ(mode_of(net), 0750u);
    EXPECT_EQ(mode_of(net + "/port0"), 0640u);
    EXPECT_EQ(mode_of(net + "/port31"), 0640u);
    EXPECT_EQ(mode_of(net + "/ctl"), 0640u);
    EXPECT_EQ(mode_of(net + "/clone"), 0640u);
    EXPECT_EQ(mode_of(net + "/stats"), 0440u);
    EXPECT_EQ(mode_of(net + "/events"), 0440u);

    // They follow the directory's later changes, owner included.
    ASSERT_EQ(chmod(net.c_str(), 0777), 0);
    EXPECT_EQ(mode_of(net + "/port0"), 0666u);
    EXPECT_EQ(mode_of(net + "/stats"), 0444u);
    EXPECT_EQ(mode_of(net + "/events"), 0444u);
    ASSERT_EQ(chown(net.c_str(), 4321, 8765), 0);
    struct stat st {};
    ASSERT_EQ(stat((net + "/port3").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4321u);
    EXPECT_EQ(st.st_gid, 8765u);

    // A network created by mkdir -m 0700 gives 0600 ports.
    umask(0);
    std::string priv = make_net("private", 0700);
    umask(old);
    EXPECT_EQ(mode_of(priv + "/port0"), 0600u);
    EXPECT_EQ(mode_of(priv + "/stats"), 0400u);
    EXPECT_EQ(mode_of(priv + "/events"), 0400u);
}

// With allow_other, other users reach the mount and the kernel applies the
// mode bits ipnfs reports.
class AllowOtherTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }

    // The errno an unprivileged user (nobody) gets opening path, 0 on success.
    static int open_as_nobody(const std::string& path, int flags) {
        pid_t pid = fork();
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(255);
            int fd = open(path.c_str(), flags);
            _exit(fd >= 0 ? 0 : (errno & 0x7f));
        }
        int st = 0;
        auto deadline = Clock::now() + 10s;
        while (waitpid(pid, &st, WNOHANG) != pid) {
            if (Clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                return -1;
            }
            std::this_thread::sleep_for(5ms);
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
};

TEST_F(AllowOtherTest, ModeBitsDecideWhoMayOpenPorts) {
    if (getuid() != 0) IPNFS_SKIP_OR_FAIL("needs root to switch to another user");
    mode_t old = umask(0);
    std::string open_net = make_net("open", 0777);
    std::string closed_net = make_net("closed", 0700);
    umask(old);
    EXPECT_EQ(open_as_nobody(open_net + "/port1", O_RDWR), 0);
    EXPECT_EQ(open_as_nobody(open_net + "/ctl", O_RDONLY), 0);
    EXPECT_EQ(open_as_nobody(closed_net + "/port1", O_RDONLY), EACCES);

    ASSERT_EQ(chmod(closed_net.c_str(), 0755), 0);  // ports now 0644
    EXPECT_EQ(open_as_nobody(closed_net + "/port1", O_RDONLY), 0);
    EXPECT_EQ(open_as_nobody(closed_net + "/port1", O_WRONLY), EACCES);
    ASSERT_EQ(chmod((closed_net + "/port1").c_str(), 0666), 0);
    EXPECT_EQ(open_as_nobody(closed_net + "/port1", O_WRONLY), 0);
}

}  // namespace
}  // namespace ipnfs_it
