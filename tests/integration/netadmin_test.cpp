// tap and grab change the machine's networking, so they need CAP_NET_ADMIN
// in the writing process, whatever the file modes allow: root without the
// capability, and a user that may write ctl, both get EPERM, ctl says why,
// and no interface appears.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include "netns.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

class NetdevPermTest : public NetdevTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }
    std::vector<std::string> tools() const override { return {"setpriv", "timeout"}; }
};

// One write of `line` to ctl as nobody:nogroup: 0 or the errno, 200 if the
// child could not become nobody.
int write_ctl_as_nobody(const std::string& ctl_path, const std::string& line) {
    pid_t pid = fork_child([&] {
        if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
            setresuid(kNobody, kNobody, kNobody) != 0) {
            return 200;
        }
        int fd = open(ctl_path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return errno;
        int err = ::write(fd, line.data(), line.size()) >= 0 ? 0 : errno;
        close(fd);
        return err;
    });
    return exit_code_of(wait_child(pid, 10s));
}

TEST_F(NetdevPermTest, RootWithoutCapNetAdminGetsEPERMForTapAndGrab) {
    std::string net = make_net("lan");
    VethPair veth(ifname("vA"), ifname("vB"));
    ASSERT_TRUE(veth.ok()) << veth.error();
    const std::string name = ifname("tx0");
    // setpriv drops CAP_NET_ADMIN from the bounding set: the shell and the
    // echo it runs are root without it.  (coreutils' echo names the errno;
    // the shell's builtin says only "I/O error".)
    const std::string drop = "setpriv --inh-caps=-net_admin --bounding-set=-net_admin ";
    Shell check = root_sh(drop + "grep CapEff /proc/self/status", 10);
    ASSERT_EQ(check.exit_code(), 0) << describe(check);

    Shell tap_sh =
        root_sh(drop + "sh -c " + sq("/bin/echo tap " + name + " > " + net + "/ctl"), 10);
    EXPECT_NE(tap_sh.exit_code(), 0) << "tap without CAP_NET_ADMIN succeeded";
    EXPECT_TRUE(contains(tap_sh.err, "Operation not permitted")) << describe(tap_sh);
    std::string last = last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(last, "CAP_NET_ADMIN")) << "ctl's last error: " << last;
    EXPECT_TRUE(contains(last, "tap " + name)) << "ctl's last error: " << last;
    EXPECT_FALSE(link_exists(name)) << name << " was made anyway";
    EXPECT_FALSE(attached_port(net, "tap", name));

    Shell grab_sh =
        root_sh(drop + "sh -c " + sq("/bin/echo grab " + veth.a() + " > " + net + "/ctl"), 10);
    EXPECT_NE(grab_sh.exit_code(), 0) << "grab without CAP_NET_ADMIN succeeded";
    EXPECT_TRUE(contains(grab_sh.err, "Operation not permitted")) << describe(grab_sh);
    last = last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(last, "CAP_NET_ADMIN")) << "ctl's last error: " << last;
    EXPECT_FALSE(attached_port(net, "grab", veth.a())) << ctl_text(net);

    // The same commands from this (capable) process work.
    EXPECT_EQ(tap(net, name), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(link_exists(name));
    EXPECT_EQ(grab(net, veth.a()), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(attached_port(net, "grab", veth.a())) << ctl_text(net);
}

TEST_F(NetdevPermTest, AUserWhoMayWriteCtlGetsEPERMForTapGrabAndScope) {
    std::string net = make_net("lan");
    ASSERT_EQ(chmod((net + "/ctl").c_str(), 0646), 0) << std::strerror(errno);
    VethPair veth(ifname("vA"), ifname("vB"));
    ASSERT_TRUE(veth.ok()) << veth.error();
    const std::string name = ifname("tx0");
    const std::string ctl_path = net + "/ctl";

    // nobody may manage the network (an ordinary command works) ...
    ASSERT_EQ(write_ctl_as_nobody(ctl_path, "mtu 2000\n"), 0) << ctl_text(net);

    // ... but not make or grab interfaces.
    EXPECT_EQ(write_ctl_as_nobody(ctl_path, "tap " + name + "\n"), EPERM);
    std::string last = last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(last, "CAP_NET_ADMIN")) << "ctl's last error: " << last;
    EXPECT_FALSE(link_exists(name)) << name << " was made anyway";

    EXPECT_EQ(write_ctl_as_nobody(ctl_path, "grab " + veth.a() + "\n"), EPERM);
    last = last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(last, "CAP_NET_ADMIN")) << "ctl's last error: " << last;
    EXPECT_TRUE(contains(last, "grab " + veth.a())) << "ctl's last error: " << last;
    EXPECT_FALSE(attached_port(net, "grab", veth.a())) << ctl_text(net);

    // Nor join the network to other hosts' networks of that name (it would
    // read what their users send).
    EXPECT_EQ(write_ctl_as_nobody(ctl_path, "scope cluster\n"), EPERM);
    last = last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(last, "scope needs CAP_NET_ADMIN")) << "ctl's last error: " << last;

    // untap/ungrab of what root attached are refused as well.
    ASSERT_EQ(tap(net, name), 0) << last_error_line(ctl_text(net));
    EXPECT_EQ(write_ctl_as_nobody(ctl_path, "untap " + name + "\n"), EPERM);
    EXPECT_TRUE(link_exists(name)) << "nobody removed root's TAP";
}

}  // namespace
}  // namespace ipnfs_it
