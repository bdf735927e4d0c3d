// Reaching a path a user named (netdev/safe_path.hpp) with that user's
// rights (netdev/thread_credentials.hpp): a normal path opens, symbolic links
// are read a bounded number of times, FUSE types are recognized, and a thread
// acting as nobody is refused what nobody may not reach while the process's
// other threads keep their own rights.  (A real FUSE mount refused, the
// daemon's own: tests/integration/vde_security_test.cpp.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <future>
#include <string>

#include "bus_test_support.hpp"
#include "netdev/safe_path.hpp"
#include "netdev/thread_credentials.hpp"
#include "netdev_test_support.hpp"

namespace ipnfs::test {
namespace {

namespace fs = std::filesystem;
using netdev::kMaxLinks;
using netdev::open_no_fuse;

constexpr uid_t kNobody = 65534;

class SafePath : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "ipnfs-safe-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        tmp_ = tmpl;
        ASSERT_TRUE(fs::create_directory(tmp_ + "/d"));
        sock_ = tmp_ + "/d/sock";
        bound_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, sock_.c_str());
        ASSERT_EQ(::bind(bound_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(tmp_, ec);
    }
    static bool is_socket(const netdev::UniqueFd& fd) {
        struct stat st {};
        return fd.ok() && ::fstat(fd.get(), &st) == 0 && S_ISSOCK(st.st_mode);
    }

    std::string tmp_, sock_;
    UniqueFd bound_;
};

TEST_F(SafePath, ANormalPathOpensWhatItNames) {
    netdev::UniqueFd fd;
    ASSERT_TRUE(IsOk(open_no_fuse(sock_, kMaxLinks, fd)));
    EXPECT_TRUE(is_socket(fd));
    ASSERT_TRUE(IsOk(open_no_fuse(tmp_ + "//d/./sock", kMaxLinks, fd)));
    EXPECT_TRUE(is_socket(fd));
    EXPECT_TRUE(IsOk(open_no_fuse("/", kMaxLinks, fd)));
}

TEST_F(SafePath, MistakesGetTheirErrno) {
    netdev::UniqueFd fd;
    EXPECT_TRUE(
        FailsWith(open_no_fuse("relative/sock", kMaxLinks, fd), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(open_no_fuse("", kMaxLinks, fd), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(open_no_fuse(tmp_ + "/missing", kMaxLinks, fd),
                          std::errc::no_such_file_or_directory));
    EXPECT_TRUE(
        FailsWith(open_no_fuse(sock_ + "/below", kMaxLinks, fd), std::errc::not_a_directory));
    EXPECT_TRUE(FailsWith(open_no_fuse(tmp_ + "/" + std::string(300, 'n'), kMaxLinks, fd),
                          std::errc::filename_too_long));
}

TEST_F(SafePath, SymbolicLinksAreReadABoundedNumberOfTimesNeverFollowedBeyond) {
    ASSERT_EQ(::symlink("d", (tmp_ + "/rel").c_str()), 0);
    ASSERT_EQ(::symlink((tmp_ + "/d/sock").c_str(), (tmp_ + "/abs").c_str()), 0);
    netdev::UniqueFd fd;
    EXPECT_TRUE(IsOk(open_no_fuse(tmp_ + "/rel/sock", kMaxLinks, fd)));
    EXPECT_TRUE(is_socket(fd));
    EXPECT_TRUE(IsOk(open_no_fuse(tmp_ + "/abs", kMaxLinks, fd)));
    EXPECT_TRUE(is_socket(fd)) << "the last component's link is resolved, not opened";
    // None allowed: a link is refused, not followed.
    EXPECT_TRUE(FailsWith(open_no_fuse(tmp_ + "/rel/sock", 0, fd),
                          std::errc::too_many_symbolic_link_levels));
    EXPECT_TRUE(
        FailsWith(open_no_fuse(tmp_ + "/abs", 0, fd), std::errc::too_many_symbolic_link_levels));
    ASSERT_EQ(::symlink("loop", (tmp_ + "/loop").c_str()), 0);
    EXPECT_TRUE(FailsWith(open_no_fuse(tmp_ + "/loop", kMaxLinks, fd),
                          std::errc::too_many_symbolic_link_levels));
}

TEST(SafePathTypes, FuseTypesAreRecognized) {
    EXPECT_TRUE(netdev::is_fuse_type("fuse"));
    EXPECT_TRUE(netdev::is_fuse_type("fuse.ipnfs"));
    EXPECT_TRUE(netdev::is_fuse_type("fuseblk"));
    EXPECT_FALSE(netdev::is_fuse_type("fusectl")) << "the control filesystem is the kernel's";
    EXPECT_FALSE(netdev::is_fuse_type("tmpfs"));
    EXPECT_FALSE(netdev::is_fuse_type("ext4"));
    netdev::UniqueFd root(::open("/", O_PATH | O_CLOEXEC));
    EXPECT_TRUE(IsOk(netdev::check_not_fuse(root.get(), "/")));
}

TEST_F(SafePath, ActingAsNobodyIsRefusedWhatNobodyMayNotReachOnThisThreadOnly) {
    if (::geteuid() != 0) {
        if (in_ci()) FAIL() << "needs root to act for another user";
        GTEST_SKIP() << "needs root to act for another user";
    }
    ASSERT_EQ(::chmod(tmp_.c_str(), 0700), 0);
    netdev::UniqueFd fd;
    // Started before: a thread started while acting would inherit the rights.
    std::promise<void> asked;
    std::future<uid_t> answer = std::async(std::launch::async, [done = asked.get_future()] {
        done.wait();
        return static_cast<uid_t>(::syscall(SYS_setfsuid, -1));
    });
    {
        netdev::ActingAs nobody({0, kNobody, kNobody, {}});
        ASSERT_TRUE(IsOk(nobody.status()));
        EXPECT_TRUE(FailsWith(open_no_fuse(sock_, kMaxLinks, fd), std::errc::permission_denied));
        asked.set_value();
        EXPECT_EQ(answer.get(), 0U) << "another thread of the process took nobody's rights too";
        EXPECT_EQ(::getgroups(0, nullptr), 0) << "nobody has no supplementary group";
    }
    EXPECT_EQ(static_cast<uid_t>(::syscall(SYS_setfsuid, -1)), 0U) << "not restored";
    EXPECT_TRUE(IsOk(open_no_fuse(sock_, kMaxLinks, fd))) << "root's rights not restored";
    // A group that may search the directory lets its member through.
    ASSERT_EQ(::chown(tmp_.c_str(), 0, 4242), 0);
    ASSERT_EQ(::chmod(tmp_.c_str(), 0710), 0);
    {
        netdev::ActingAs member({0, kNobody, kNobody, {4242}});
        ASSERT_TRUE(IsOk(member.status()));
        EXPECT_TRUE(IsOk(open_no_fuse(sock_, kMaxLinks, fd)));
    }
}

TEST_F(SafePath, PeerCredentialsNameTheConnectingProcess) {
    int sv[2] = {-1, -1};
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    UniqueFd a(sv[0]);
    UniqueFd b(sv[1]);
    netdev::Credentials who;
    ASSERT_TRUE(IsOk(netdev::peer_credentials(a.get(), who)));
    EXPECT_EQ(who.pid, ::getpid());
    EXPECT_EQ(who.uid, ::geteuid());
    EXPECT_EQ(who.gid, ::getegid());
    EXPECT_EQ(static_cast<int>(who.groups.size()), ::getgroups(0, nullptr));
}

}  // namespace
}  // namespace ipnfs::test
