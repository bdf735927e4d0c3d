// Issue 16's VDE findings, attacked on a real mount as nobody, who owns a
// network root served with `vde` (root's CAP_NET_ADMIN; nobody has none):
//   2. a VDE client names its own data socket, which the daemon connected to
//      as root: a 0600 root socket, or a root service's socket anyone may
//      write to (/dev/log), was reached with root's rights;
//   5. `vde PATH` inside the mount: the daemon's workers waited on
//      themselves for good;
//   6. the endpoint directory was the network owner's: renamed and replaced
//      by a symbolic link, it made root bind sockets in a root-only directory.
// Each test fails if the attack works.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "test_user.hpp"
#include "vde_fixture.hpp"

namespace ipnfs_it {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kMagic = 0xfeedface;

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    return addr;
}

bool become_nobody() {
    return setgroups(0, nullptr) == 0 && setresgid(kNogroup, kNogroup, kNogroup) == 0 &&
           setresuid(kNobody, kNobody, kNobody) == 0;
}

// What a VDE client's request got.
enum Answer : int { kServed = 0, kDropped = 1, kNoCtl = 2, kNoAnswer = 3, kNotNobody = 4 };

// As nobody: connects to CTL and asks for a port whose frames go to
// `client` (an address nobody names, not necessarily one it owns); binds
// `client` first if `bind_it` (a socket of nobody's own, mode 0600).
int ask_as_nobody(const std::string& ctl, const sockaddr_un& client, bool bind_it = false) {
    pid_t pid = fork_child([&] {
        if (!become_nobody()) return int{kNotNobody};
        if (bind_it) {
            int own = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (bind(own, reinterpret_cast<const sockaddr*>(&client), sizeof client) != 0 ||
                chmod(client.sun_path, 0600) != 0) {
                return int{kNoCtl};
            }
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr = unix_address(ctl);
        if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            return int{kNoCtl};
        }
        char req[3 * 4 + sizeof(sockaddr_un)] = {};
        std::uint32_t words[3] = {kMagic, 3, 0};
        std::memcpy(req, words, sizeof words);
        std::memcpy(req + sizeof words, &client, sizeof client);
        if (write(fd, req, sizeof req) != static_cast<ssize_t>(sizeof req)) return int{kNoCtl};
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) return int{kNoAnswer};
        sockaddr_un reply{};
        return recv(fd, &reply, sizeof reply, 0) == sizeof reply ? int{kServed} : int{kDropped};
    });
    return exit_code_of(wait_child(pid, 10s));
}

// A datagram socket bound at `path`, owned by the test (root), mode `mode`.
struct Listener {
    Fd fd;
    Listener(const std::string& path, mode_t mode)
        : fd(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) {
        sockaddr_un addr = unix_address(path);
        EXPECT_EQ(bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0)
            << path << ": " << std::strerror(errno);
        EXPECT_EQ(chmod(path.c_str(), mode), 0);
    }
    // Whether a datagram came (the network's frames, had the daemon connected).
    [[nodiscard]] bool heard() const {
        char buf[2048];
        return recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT) >= 0;
    }
};

class VdeSecurityTest : public VdeDirTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        auto options = VdeDirTest::mount_options();
        options.emplace_back("allow_other");
        // One worker: a worker that made a filesystem call on the mount
        // would wait on itself at once (before the fix, `vde MOUNT/new` hung
        // the daemon for good this way: the writer in state D, unkillable).
        options.emplace_back("max_threads=1");
        return options;
    }
    // A network nobody owns, mode 0700, served at sw_ by root.
    std::string nobodys_net(const std::string& name) {
        std::string net = make_net(name, 0700);
        EXPECT_EQ(chown(net.c_str(), kNobody, kNogroup), 0) << std::strerror(errno);
        EXPECT_EQ(ctl(net, "vde sw"), 0) << last_error_line(ctl_text(net));
        return net;
    }
    // Broadcasts a frame into `net` from a port file, so that every VDE
    // client that was served would get it.
    void broadcast(const std::string& net) {
        Fd port = open_fd(net + "/port9", O_RDWR);
        ASSERT_TRUE(port.ok());
        std::string frame(64, '\0');
        frame.replace(0, 6, std::string(6, '\xff'));
        frame.replace(6, 6, std::string("\x02\0\0\0\0\x09", 6));
        ASSERT_EQ(write_msg(port.get(), frame).n, 64);
    }
};

TEST_F(VdeSecurityTest, TheEndpointDirectoryIsRootsItsOwnerCannotSwapItForALink) {
    // Where the old daemon was made to bind: a root-only directory.
    const std::string secret = base_ + "/../" + fs::path(base_).filename().string() + ".secret";
    ASSERT_EQ(mkdir(secret.c_str(), 0700), 0);
    std::string net = nobodys_net("lan");
    struct stat st {};
    ASSERT_EQ(lstat(sw_.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0U) << "the endpoint directory is the network owner's";
    EXPECT_EQ(st.st_mode & 07777, 0755U);
    ASSERT_EQ(lstat((sw_ + "/ctl").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kNobody) << "ctl follows the network";

    // The swap, as the network's owner.
    pid_t pid = fork_child([&] {
        if (!become_nobody()) return 100;
        int failed = 0;
        if (rename(sw_.c_str(), (sw_ + ".moved").c_str()) == 0) failed |= 1;
        if (symlink(secret.c_str(), (sw_ + "/x").c_str()) == 0) failed |= 2;
        if (chmod(sw_.c_str(), 0777) == 0) failed |= 4;
        if (unlink((sw_ + "/ctl").c_str()) == 0) failed |= 8;
        return failed;
    });
    EXPECT_EQ(exit_code_of(wait_child(pid, 10s)), 0)
        << "nobody changed the endpoint directory (1 rename, 2 link, 4 chmod, 8 unlink)";
    EXPECT_TRUE(list_dir(secret).empty()) << "root made something in " << secret;
    ASSERT_EQ(ctl(net, "unvde sw"), 0) << last_error_line(ctl_text(net));
    EXPECT_FALSE(fs::exists(sw_)) << "unvde left the directory";
    EXPECT_TRUE(list_dir(secret).empty());
    EXPECT_EQ(list_dir(base_), std::vector<std::string>{}) << "left in the VDE directory";
    std::error_code ec;
    fs::remove_all(secret, ec);
}

TEST_F(VdeSecurityTest, VdeInsideTheMountIsRefusedQuicklyAndTheMountStaysResponsive) {
    std::string net = make_net("lan");
    std::string other = make_net("other");
    for (const std::string& path : {net + "/x", p("x"), p("lan"), p("new")}) {
        auto start = Clock::now();
        EXPECT_EQ(ctl(net, "vde " + path), EPERM) << path;
        EXPECT_LT(Clock::now() - start, 2s) << "vde " << path << " took long";
        EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "VDE endpoints are made only there"))
            << ctl_text(net);
    }
    // Others' networks work on.
    Fd a = open_fd(other + "/port0", O_RDWR);
    Fd b = open_fd(other + "/port1", O_RDWR);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(write_msg(a.get(), "still here").n, 10);
    EXPECT_EQ(read_one(b.get(), 2000).data, "still here");
}

TEST_F(VdeSecurityTest, AClientSocketInsideAFuseMountIsRefusedWithoutAsking) {
    // The daemon's own mount: a lookup there would be a request to itself.
    std::string net = nobodys_net("lan");
    auto start = Clock::now();
    EXPECT_EQ(ask_as_nobody(sw_ + "/ctl", unix_address(net + "/port3")), kDropped);
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_TRUE(eventually([&] { return contains(mount_.log(), "FUSE filesystem"); }, 3s))
        << mount_.log();
    std::string other = make_net("other");
    Fd a = open_fd(other + "/port0", O_RDWR);
    Fd b = open_fd(other + "/port1", O_RDWR);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(write_msg(a.get(), "still here").n, 10);
    EXPECT_EQ(read_one(b.get(), 2000).data, "still here");
}

TEST_F(VdeSecurityTest, AClientReachesOnlyASocketItOwnsWithItsOwnRights) {
    std::string net = nobodys_net("lan");
    const std::string ctl_path = sw_ + "/ctl";
    // A root-only socket: 0600 in a 0700 directory.
    const std::string vault = scratch() + "/vault";
    ASSERT_EQ(mkdir(vault.c_str(), 0700), 0);
    Listener root_only(vault + "/sock", 0600);
    EXPECT_EQ(ask_as_nobody(ctl_path, unix_address(vault + "/sock")), kDropped);
    // A root service's socket anyone may write to (as /dev/log is): what the
    // daemon sent would carry root's credentials.
    const std::string open_dir = base_ + ".public";
    ASSERT_EQ(mkdir(open_dir.c_str(), 0755), 0);
    Listener service(open_dir + "/log", 0666);
    EXPECT_EQ(ask_as_nobody(ctl_path, unix_address(open_dir + "/log")), kDropped);
    if (fs::exists("/dev/log")) {
        EXPECT_EQ(ask_as_nobody(ctl_path, unix_address("/dev/log")), kDropped);
    }
    // An abstract name: no owner to check.
    sockaddr_un abstract{};
    abstract.sun_family = AF_UNIX;
    std::memcpy(abstract.sun_path, "\0ipnfs-vde-test", 15);
    EXPECT_EQ(ask_as_nobody(ctl_path, abstract), kDropped);
    // A link nobody planted to the root socket.
    const std::string link = base_ + ".link";
    ASSERT_EQ(symlink((vault + "/sock").c_str(), link.c_str()), 0);
    EXPECT_EQ(ask_as_nobody(ctl_path, unix_address(link)), kDropped);

    // A name that would forge a log line.
    EXPECT_EQ(ask_as_nobody(ctl_path, unix_address("/tmp/x\nevent=forged")), kDropped);

    broadcast(net);
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(root_only.heard()) << "the network's frames reached a root-only socket";
    EXPECT_FALSE(service.heard()) << "the network's frames reached root's service socket";
    const std::string log = mount_.log();
    EXPECT_TRUE(contains(log, "Permission denied")) << log;
    EXPECT_TRUE(contains(log, "belongs to uid 0, not to the client's 65534")) << log;
    EXPECT_TRUE(contains(log, "abstract name")) << log;
    EXPECT_FALSE(contains(log, "\nevent=forged")) << log;
    EXPECT_TRUE(contains(log, "/tmp/x?event=forged has bytes outside printable ASCII")) << log;

    // nobody's own socket is served: the refusals above are not all there is.
    const std::string own_dir = base_ + ".nobody";
    ASSERT_EQ(mkdir(own_dir.c_str(), 0755), 0);
    ASSERT_EQ(chown(own_dir.c_str(), kNobody, kNogroup), 0);
    EXPECT_EQ(ask_as_nobody(ctl_path, unix_address(own_dir + "/sock"), true), kServed)
        << mount_.log();
    std::error_code ec;
    for (const std::string& dir : {open_dir, own_dir, link}) fs::remove_all(dir, ec);
}

TEST_F(VdeSecurityTest, AVdeDirectoryOthersCouldWriteToOrALinkStopsTheMount) {
    const std::string open_dir = base_ + ".open";
    ASSERT_EQ(mkdir(open_dir.c_str(), 0755), 0);
    ASSERT_EQ(chmod(open_dir.c_str(), 01777), 0);
    const std::string link = base_ + ".lnk";
    ASSERT_EQ(symlink(base_.c_str(), link.c_str()), 0);
    for (const auto& [dir, why] :
         std::vector<std::pair<std::string, std::string>>{{open_dir, "writable by group or others"},
                                                          {link, "is a symbolic link"},
                                                          {"relative", "not an absolute path"}}) {
        Mount bad;
        std::string error;
        EXPECT_FALSE(bad.start({"vde_dir=" + dir}, error)) << dir << " was accepted";
        EXPECT_TRUE(contains(error, why)) << error;
    }
    std::error_code ec;
    fs::remove_all(open_dir, ec);
    fs::remove(link, ec);
}

}  // namespace
}  // namespace ipnfs_it
