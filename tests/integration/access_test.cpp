// Access control, AF_IPN style, seen by a second, unprivileged user
// (nobody:nogroup): r on a port file = may receive, w = may send, w on ctl =
// may manage, w on the mount root = may create networks, x on a network
// directory = may traverse it.  The mount uses allow_other.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

// Runs `body` in a child as nobody:nogroup (no supplementary groups, umask
// 022).  Its answer: what body returned (0, or an errno), 200 if the child
// could not become nobody, -1 if it did not exit normally.
int as_nobody(const std::function<int()>& body) {
    pid_t pid = fork_child([&] {
        if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
            setresuid(kNobody, kNobody, kNobody) != 0) {
            return 200;
        }
        umask(022);
        return body();
    });
    return exit_code_of(wait_child(pid, 10s));
}

// open(path, flags) as nobody: 0 or the errno.
int open_as_nobody(const std::string& path, int flags) {
    return as_nobody([&] {
        int fd = open(path.c_str(), flags | O_CLOEXEC);
        if (fd < 0) return errno;
        close(fd);
        return 0;
    });
}

// One message written as nobody to a port: 0 or the errno of open/write.
int send_as_nobody(const std::string& path, const std::string& msg) {
    return as_nobody([&] {
        int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return errno;
        ssize_t n = ::write(fd, msg.data(), msg.size());
        int err = n < 0 ? errno : (n == static_cast<ssize_t>(msg.size()) ? 0 : 99);
        close(fd);
        return err;
    });
}

int mkdir_as_nobody(const std::string& path, mode_t mode) {
    return as_nobody([&] { return mkdir(path.c_str(), mode) == 0 ? 0 : errno; });
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        ADD_FAILURE() << "stat " << path << ": " << std::strerror(errno);
        return 0;
    }
    return st.st_mode & 07777;
}

class AccessTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }
    void SetUp() override {
        if (getuid() != 0) IPNFS_SKIP_OR_FAIL("needs root to act as a second user");
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        old_umask_ = umask(0);  // modes below are exactly what mkdir is given
    }
    void TearDown() override {
        umask(old_umask_);
        IpnfsTest::TearDown();
    }
    mode_t old_umask_ = 022;
};

TEST_F(AccessTest, OnA0755NetworkNobodyMayReceiveButNotSendOrManage) {
    std::string net = make_net("lan", 0755);
    EXPECT_EQ(mode_of(net + "/port0"), 0644u);
    Fd root_w = open_fd(net + "/port1", O_WRONLY);

    // nobody receives a message root sends.
    int ready[2];
    ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
    const std::string port0 = net + "/port0";
    pid_t child = fork_child([&] {
        if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
            setresuid(kNobody, kNobody, kNobody) != 0) {
            return 200;
        }
        int fd = open(port0.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return errno;
        if (::write(ready[1], "r", 1) != 1) return 98;
        pollfd pfd{fd, POLLIN, 0};
        if (poll(&pfd, 1, 5000) != 1) return 97;
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf);
        return n == 5 && std::memcmp(buf, "hello", 5) == 0 ? 0 : 96;
    });
    close(ready[1]);
    pollfd pfd{ready[0], POLLIN, 0};
    EXPECT_EQ(poll(&pfd, 1, 5000), 1) << "nobody could not open port0 for reading";
    char c = 0;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    close(ready[0]);
    EXPECT_EQ(write_msg(root_w.get(), "hello").n, 5);
    EXPECT_EQ(exit_code_of(wait_child(child, 10s)), 0) << "nobody did not receive root's message";

    // w = may send: refused.
    EXPECT_EQ(open_as_nobody(net + "/port0", O_WRONLY), EACCES);
    EXPECT_EQ(open_as_nobody(net + "/port0", O_RDWR), EACCES);
    EXPECT_EQ(open_as_nobody(net + "/clone", O_WRONLY), EACCES);
    EXPECT_EQ(open_as_nobody(net + "/clone", O_RDONLY), 0);
    // Managing: ctl is readable, not writable.
    EXPECT_EQ(open_as_nobody(net + "/ctl", O_RDONLY), 0);
    EXPECT_EQ(open_as_nobody(net + "/ctl", O_WRONLY), EACCES);
    EXPECT_EQ(open_as_nobody(net + "/stats", O_RDONLY), 0);
    EXPECT_EQ(open_as_nobody(net + "/events", O_RDONLY), 0);
    EXPECT_EQ(stats(net).rows[0].msgs_out, 1u);
    // Nor may nobody remove root's network or change its files' modes.
    EXPECT_EQ(as_nobody([&] { return rmdir(net.c_str()) == 0 ? 0 : errno; }), EACCES);
    EXPECT_EQ(as_nobody([&] { return chmod(port0.c_str(), 0666) == 0 ? 0 : errno; }), EPERM);
    EXPECT_EQ(mode_of(port0), 0644u);
}

TEST_F(AccessTest, WriteOnTheMountRootLetsAUserCreateNetworks) {
    std::string lan = make_net("lan", 0755);
    EXPECT_EQ(mode_of(p("")), 0755u);
    EXPECT_EQ(mkdir_as_nobody(p("mine"), 0755), EACCES);
    EXPECT_EQ(list_dir(p("")), (std::vector<std::string>{"ipnfs.prom", "lan"}));

    ASSERT_EQ(chmod(p("").c_str(), 0777), 0);
    ASSERT_EQ(mkdir_as_nobody(p("mine"), 0755), 0);
    struct stat st {};
    ASSERT_EQ(stat(p("mine").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kNobody);
    EXPECT_EQ(st.st_gid, kNogroup);
    EXPECT_EQ(st.st_mode & 07777, 0755u) << "the mode given to mkdir, after nobody's umask";
    ASSERT_EQ(stat(p("mine/ctl").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kNobody) << "a network's files belong to its creator";
    // Its creator manages it.
    std::string ctl_path = p("mine/ctl");
    EXPECT_EQ(as_nobody([&] {
                  int fd = open(ctl_path.c_str(), O_WRONLY | O_CLOEXEC);
                  if (fd < 0) return errno;
                  int err = ::write(fd, "mtu 2000\n", 9) == 9 ? 0 : errno;
                  close(fd);
                  return err;
              }),
              0);
    EXPECT_EQ(nth_line(ctl_text(p("mine")), 2), "mtu 2000");
    // And can remove it again.
    std::string mine = p("mine");
    EXPECT_EQ(as_nobody([&] { return rmdir(mine.c_str()) == 0 ? 0 : errno; }), 0);
    EXPECT_EQ(list_dir(p("")), (std::vector<std::string>{"ipnfs.prom", "lan"}));
}

TEST_F(AccessTest, ChmodOPlusWOnAPortLetsNobodySendThere) {
    std::string net = make_net("lan", 0755);
    Fd r = open_fd(net + "/port0", O_RDONLY);
    EXPECT_EQ(send_as_nobody(net + "/port3", "refused"), EACCES);
    ASSERT_EQ(chmod((net + "/port3").c_str(), 0646), 0);
    EXPECT_EQ(send_as_nobody(net + "/port3", "from nobody"), 0);
    EXPECT_EQ(read_one(r.get()).data, "from nobody");
    EXPECT_EQ(stats(net).rows[3].msgs_in, 1u);
    EXPECT_EQ(send_as_nobody(net + "/port4", "refused"), EACCES) << "only port3 was opened up";
    // The port's own mode outlives a change of the directory's.
    ASSERT_EQ(chmod(net.c_str(), 0775), 0);
    EXPECT_EQ(mode_of(net + "/port3"), 0646u);
    EXPECT_EQ(mode_of(net + "/port4"), 0664u);
    EXPECT_EQ(send_as_nobody(net + "/port3", "still"), 0);
    EXPECT_EQ(send_as_nobody(net + "/port4", "refused"), EACCES);
    EXPECT_EQ(read_one(r.get()).data, "still");
    EXPECT_TRUE(read_one(r.get(), 200).timed_out()) << "a refused send was delivered";
}

TEST_F(AccessTest, WriteOnCtlIsTheRightToManage) {
    std::string net = make_net("lan", 0755);
    auto write_ctl = [&](const char* cmd) {
        std::string path = net + "/ctl";
        return as_nobody([&] {
            int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd < 0) return errno;
            int err = ::write(fd, cmd, std::strlen(cmd)) >= 0 ? 0 : errno;
            close(fd);
            return err;
        });
    };
    EXPECT_EQ(write_ctl("mtu 2000\n"), EACCES);
    EXPECT_EQ(nth_line(ctl_text(net), 2), "mtu 1514");
    ASSERT_EQ(chmod((net + "/ctl").c_str(), 0646), 0);
    EXPECT_EQ(write_ctl("mtu 2000\n"), 0);
    EXPECT_EQ(nth_line(ctl_text(net), 2), "mtu 2000");
    // Managing is not sending: the ports are still closed to nobody.
    EXPECT_EQ(open_as_nobody(net + "/port0", O_WRONLY), EACCES);
}

TEST_F(AccessTest, XOnTheNetworkDirectoryIsTheRightToTraverseIt) {
    std::string net = make_net("lan", 0744);  // others: r, no x
    EXPECT_EQ(mode_of(net + "/port0"), 0644u);
    std::string port0 = net + "/port0";
    EXPECT_EQ(open_as_nobody(port0, O_RDONLY), EACCES) << "port0 is readable, the way is not";
    EXPECT_EQ(as_nobody([&] {
                  struct stat st {};
                  return stat(port0.c_str(), &st) == 0 ? 0 : errno;
              }),
              EACCES);
    ASSERT_EQ(chmod(net.c_str(), 0755), 0);
    EXPECT_EQ(open_as_nobody(port0, O_RDONLY), 0);
}

TEST_F(AccessTest, FileModesAndOwnersFollowTheNetworkDirectory) {
    // mkdir -m 0770: ports 0660, nothing for others.
    std::string team = make_net("team", 0770);
    EXPECT_EQ(mode_of(team + "/port0"), 0660u);
    EXPECT_EQ(mode_of(team + "/ctl"), 0660u);
    EXPECT_EQ(mode_of(team + "/stats"), 0440u);
    EXPECT_EQ(mode_of(team + "/events"), 0440u);
    EXPECT_EQ(open_as_nobody(team + "/port0", O_RDONLY), EACCES);
    // Group nogroup: its members get the group's rights on every file.
    ASSERT_EQ(chown(team.c_str(), 0, kNogroup), 0);
    EXPECT_EQ(open_as_nobody(team + "/port0", O_RDONLY), 0);
    EXPECT_EQ(open_as_nobody(team + "/port0", O_WRONLY), 0);
    EXPECT_EQ(open_as_nobody(team + "/ctl", O_WRONLY), 0);
    EXPECT_EQ(open_as_nobody(team + "/events", O_RDONLY), 0);

    // chown of a 0755 network to nobody: nobody owns (and may write) its files.
    std::string lan = make_net("lan", 0755);
    EXPECT_EQ(open_as_nobody(lan + "/port2", O_WRONLY), EACCES);
    ASSERT_EQ(chown(lan.c_str(), kNobody, kNogroup), 0);
    struct stat st {};
    ASSERT_EQ(stat((lan + "/port2").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kNobody);
    EXPECT_EQ(open_as_nobody(lan + "/port2", O_WRONLY), 0);
    EXPECT_EQ(open_as_nobody(lan + "/ctl", O_WRONLY), 0);
    EXPECT_EQ(open_as_nobody(lan + "/stats", O_WRONLY), EACCES) << "stats is never writable";
    EXPECT_EQ(open_as_nobody(lan + "/events", O_WRONLY), EACCES) << "events is never writable";
    // As the owner, nobody may now chmod the files, and it sticks.
    std::string port2 = lan + "/port2";
    EXPECT_EQ(as_nobody([&] { return chmod(port2.c_str(), 0600) == 0 ? 0 : errno; }), 0);
    EXPECT_EQ(mode_of(port2), 0600u);
}

TEST_F(AccessTest, ChmodAndChownLastAsLongAsTheObject) {
    std::string net = make_net("lan", 0755);
    std::string port3 = net + "/port3";
    ASSERT_EQ(chmod(port3.c_str(), 0606), 0);
    ASSERT_EQ(chown(port3.c_str(), 1234, 4321), 0);
    {
        Fd rw = open_fd(port3, O_RDWR);  // use does not reset it
        ASSERT_EQ(write_msg(rw.get(), "x").n, 1);
    }
    ASSERT_EQ(ctl(net, "ports 40\nmtu 3000\n"), 0);
    ASSERT_EQ(chmod(net.c_str(), 0700), 0);
    ASSERT_EQ(chmod(net.c_str(), 0755), 0);
    struct stat st {};
    ASSERT_EQ(stat(port3.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0606u);
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 4321u);
    EXPECT_EQ(send_as_nobody(port3, "other may write"), 0);
    // A network made again under the same name is a new object.
    ASSERT_EQ(rmdir(net.c_str()), 0);
    make_net("lan", 0755);
    ASSERT_EQ(stat(port3.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(send_as_nobody(port3, "refused"), EACCES);
}

}  // namespace
}  // namespace ipnfs_it
