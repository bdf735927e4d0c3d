// Privilege follows the opener of a file, as the kernel's f_cred does: a
// user who may write his own network's ctl cannot borrow a setuid program's
// root (its stderr is his ctl descriptor, its first line his argv[0]), a
// descriptor root opened gains nothing in an unprivileged writer, a cable
// reaches only networks its writer could open himself, and a port's holder
// changes only what its descriptor grants (issue 16, findings 1 and 3).
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <ipnfs.h>
#include "netns.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

class OpenerCredsTest : public NetdevTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other"};
    }
    [[nodiscard]] std::vector<std::string> tools() const override {
        return {"setpriv", "timeout", "useradd", "userdel", "fusermount3", "umount", "su"};
    }

    // A network that nobody manages: its directory (and so its ctl) is his.
    std::string nobodys_net(const std::string& name) {
        std::string net = make_net(name);
        EXPECT_EQ(chown(net.c_str(), kNobody, kNogroup), 0) << std::strerror(errno);
        return net;
    }
};

// As nobody: opens `ctl` for writing as stdout and stderr, then execs the
// setuid-root `program` with `line` as its argv[0], which it prints first in
// its error message, as root.  The program's exit code, or 200+ if the child
// could not set this up.
int setuid_program_writes(const std::string& ctl, const std::string& program,
                          const std::string& line, const std::vector<std::string>& args) {
    std::vector<std::string> argv_s{line + "\n"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    argv.reserve(argv_s.size() + 1);
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    return as_user(kNobody, kNogroup, [&] {
        int fd = open(ctl.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return 201;
        if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0) return 202;
        execv(program.c_str(), argv.data());
        return 203;
    });
}

TEST_F(OpenerCredsTest, SetuidProgramsWritingANetAdminLineToAnInheritedCtlGainNothing) {
    const std::string net = nobodys_net("mine");
    const std::string secret = make_net("secret", 0700);
    VethPair veth(ifname("vA"), ifname("vB"));
    ASSERT_TRUE(veth.ok()) << veth.error();
    const std::string ctl = net + "/ctl";
    ASSERT_EQ(as_user(kNobody, kNogroup, [&] { return access(ctl.c_str(), W_OK) == 0 ? 0 : 1; }), 0)
        << "nobody should manage his own network";

    struct Attack {
        std::string program;
        std::vector<std::string> args;
        std::string line;
    };
    const std::string tap_name = ifname("evil");
    const std::vector<Attack> attacks = {
        {"/usr/bin/fusermount3", {}, "tap " + tap_name},
        {"/usr/bin/umount", {"/nonexistent-ipnfs-test"}, "grab " + veth.a()},
        {"/usr/bin/su", {"no-such-user-ipnfs-test"}, "cable secret"},
    };
    for (const Attack& a : attacks) {
        SCOPED_TRACE(a.program + " with argv[0] '" + a.line + "'");
        int code = setuid_program_writes(ctl, a.program, a.line, a.args);
        ASSERT_GT(code, 0) << "the program should have failed";
        ASSERT_LT(code, 200) << "the attack could not be set up: " << code;
        // The program goes on writing the rest of its message, so ctl's
        // last error may be a later line: the log has each.
        const std::string verb = a.line.substr(0, a.line.find(' '));
        EXPECT_TRUE(eventually(
            [&] { return contains(mount_.log(), a.line + ": " + verb + " needs CAP_NET_ADMIN"); },
            2s))
            << mount_.log();
    }
    EXPECT_FALSE(link_exists(tap_name)) << "a setuid program's root made " << tap_name;
    const std::string text = ctl_text(net);
    EXPECT_FALSE(attached_port(net, "grab", veth.a())) << text;
    EXPECT_FALSE(contains(text, "\ncable secret")) << text;
    EXPECT_EQ(stats(secret).total("connected"), 0U);
}

TEST_F(OpenerCredsTest, ADescriptorRootOpenedGainsNothingInAnUnprivilegedWriter) {
    const std::string net = make_net("lan");
    const std::string name = ifname("hand");
    Fd fd = open_fd(net + "/ctl", O_WRONLY);
    ASSERT_TRUE(fd.ok());
    const std::string line = "tap " + name + "\n";
    // Inherited across fork and the drop to nobody, as a daemon that
    // opens and then drops privilege would keep it.
    int err = as_user(kNobody, kNogroup,
                      [&] { return ::write(fd.get(), line.data(), line.size()) >= 0 ? 0 : errno; });
    EXPECT_EQ(err, EPERM);
    EXPECT_FALSE(link_exists(name)) << "nobody made " << name << " through root's descriptor";
    // The same descriptor in root's hands still works.
    ASSERT_EQ(::write(fd.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()))
        << last_error_line(ctl_text(net));
    EXPECT_TRUE(link_exists(name));
}

TEST_F(OpenerCredsTest, ACableReachesOnlyANetworkItsWriterCouldOpenHimself) {
    TestUser user;
    ASSERT_TRUE(user.ok()) << user.error();
    const std::string net = make_net("mine");
    ASSERT_EQ(chown(net.c_str(), user.uid(), user.gid()), 0) << std::strerror(errno);
    const std::string secret = make_net("secret", 0700);
    const std::string open_net = make_net("open");
    ASSERT_EQ(chmod(open_net.c_str(), 0777), 0);
    // The user holds CAP_NET_ADMIN (ambient, in his own uid): the capability
    // lets him make cables, not read root's networks.
    auto as_admin_user = [&](const std::string& line) {
        return root_sh("setpriv --reuid=" + std::to_string(user.uid()) +
                           " --regid=" + std::to_string(user.gid()) +
                           " --clear-groups --inh-caps=+net_admin --ambient-caps=+net_admin "
                           "sh -c " +
                           sq("/bin/echo \"" + line + "\" > " + net + "/ctl"),
                       10);
    };
    Shell refused = as_admin_user("cable secret");
    EXPECT_NE(refused.exit_code(), 0) << "a cable into a 0700 network of root's";
    EXPECT_TRUE(contains(refused.err, "Permission denied")) << describe(refused);
    std::string last = last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(last, "secret/clone")) << "ctl's last error: " << last;
    EXPECT_EQ(stats(secret).total("connected"), 0U);
    Shell refused_port = as_admin_user("cable secret 0 3");
    EXPECT_NE(refused_port.exit_code(), 0);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "secret/port3")) << ctl_text(net);

    Shell allowed = as_admin_user("cable open");
    EXPECT_EQ(allowed.exit_code(), 0) << describe(allowed) << last_error_line(ctl_text(net));
    EXPECT_TRUE(contains(ctl_text(net), "cable open")) << ctl_text(net);

    // Root may (CAP_DAC_OVERRIDE), from a network of its own.
    const std::string roots = make_net("roots");
    EXPECT_EQ(ctl(roots, "cable secret\n"), 0) << last_error_line(ctl_text(roots));
}

// One IPNFS_IOC_PORT_CTL from a child as nobody on `port` opened with
// `flags`: 0 or the errno (200+ if the child could not get there).
int port_ctl_as_nobody(const std::string& port, int flags, const std::string& line) {
    return as_user(kNobody, kNogroup, [&] {
        int fd = open(port.c_str(), flags | O_CLOEXEC);
        if (fd < 0) return 201;
        ipnfs_port_ctl req{};
        std::memcpy(req.line, line.data(), std::min(line.size(), sizeof req.line - 1));
        int err = ioctl(fd, IPNFS_IOC_PORT_CTL, &req) == 0 ? 0 : errno;
        close(fd);
        return err;
    });
}

TEST_F(OpenerCredsTest, ASenderCannotMakeAReaderLoseMessagesOrChangeWhatItReceives) {
    const std::string net = make_net("ll");
    ASSERT_EQ(chmod(net.c_str(), 0777), 0);
    ASSERT_EQ(chmod((net + "/ctl").c_str(), 0644), 0);  // root manages, nobody uses
    ASSERT_EQ(ctl(net, "lossless on\nqueue 4\n"), 0) << last_error_line(ctl_text(net));
    Fd reader = open_fd(net + "/port1", O_RDONLY);
    ASSERT_TRUE(reader.ok());
    const std::string port1 = net + "/port1";

    EXPECT_EQ(port_ctl_as_nobody(port1, O_WRONLY, "dropwhenfull on"), EPERM);
    EXPECT_EQ(port_ctl_as_nobody(port1, O_RDONLY, "dropwhenfull on"), EPERM)
        << "dropwhenfull needs manage rights, not just the port";
    EXPECT_EQ(port_ctl_as_nobody(port1, O_WRONLY, "events on"), EPERM);
    EXPECT_EQ(port_ctl_as_nobody(port1, O_WRONLY, "loopback on"), EPERM);
    std::string text = ctl_text(net);
    EXPECT_FALSE(contains(text, "dropwhenfull 1 on")) << text;
    EXPECT_FALSE(contains(text, "events 1 on")) << text;

    // Nothing of the reader's is lost: 12 messages through a queue of 4.
    Fd writer = open_fd(net + "/port2", O_WRONLY);
    ASSERT_TRUE(writer.ok());
    std::thread sender([&] {
        for (int i = 0; i < 12; ++i) write_msg(writer.get(), "m" + std::to_string(i), 5000);
    });
    std::vector<std::string> got;
    for (int i = 0; i < 12; ++i) {
        Io io = read_one(reader.get(), 5000);
        if (io.n <= 0) break;
        got.push_back(io.data);
    }
    sender.join();
    ASSERT_EQ(got.size(), 12U);
    for (int i = 0; i < 12; ++i) EXPECT_EQ(got[i], "m" + std::to_string(i));

    // What the descriptor does grant still works: a reader's own events,
    // and root, who may write ctl, sets dropwhenfull from a write-only one.
    EXPECT_EQ(port_ctl_as_nobody(port1, O_RDONLY, "events on"), 0);
    EXPECT_TRUE(contains(ctl_text(net), "events 1 on")) << ctl_text(net);
    Fd manager = open_fd(port1, O_WRONLY);
    ipnfs_port_ctl req{};
    std::strcpy(req.line, "dropwhenfull on");
    EXPECT_EQ(ioctl(manager.get(), IPNFS_IOC_PORT_CTL, &req), 0) << std::strerror(errno);
    EXPECT_TRUE(contains(ctl_text(net), "dropwhenfull 1 on")) << ctl_text(net);
}

TEST_F(OpenerCredsTest, AGroupMembersSettingsNeedTheMatchingDescriptor) {
    const std::string net = make_net("grp");
    ASSERT_EQ(chmod(net.c_str(), 0777), 0);
    ASSERT_EQ(chmod((net + "/ctl").c_str(), 0644), 0);
    ASSERT_EQ(ctl(net, "policy group\n"), 0) << last_error_line(ctl_text(net));
    const std::string port3 = net + "/port3";
    // Root keeps port 3 open: a holder's settings last while it has a descriptor.
    Fd held = open_fd(port3, O_RDONLY);
    ASSERT_TRUE(held.ok());
    // Membership decides what the port receives; dest, where its sends go.
    EXPECT_EQ(port_ctl_as_nobody(port3, O_WRONLY, "member 7"), EPERM);
    EXPECT_EQ(port_ctl_as_nobody(port3, O_RDONLY, "dest anycast 7"), EPERM);
    EXPECT_FALSE(contains(ctl_text(net), "member 3 7")) << ctl_text(net);
    EXPECT_EQ(port_ctl_as_nobody(port3, O_RDONLY, "member 7"), 0);
    EXPECT_EQ(port_ctl_as_nobody(port3, O_WRONLY, "dest anycast 7"), 0);
    EXPECT_TRUE(contains(ctl_text(net), "member 3 7")) << ctl_text(net);
}

TEST_F(OpenerCredsTest, WhatAHolderSetEndsWithThePortsLastDescriptor) {
    const std::string net = make_net("grp");
    ASSERT_EQ(chmod(net.c_str(), 0777), 0);
    ASSERT_EQ(chmod((net + "/ctl").c_str(), 0644), 0);
    ASSERT_EQ(ctl(net, "policy group\nmember 1 7\nevents 1 on\n"), 0)
        << last_error_line(ctl_text(net));
    // nobody sends from port 0 to port 5, whose reader he is, and leaves.
    ASSERT_EQ(port_ctl_as_nobody(net + "/port0", O_WRONLY, "dest port 5"), 0);
    ASSERT_EQ(port_ctl_as_nobody(net + "/port0", O_RDONLY, "loopback on"), 0);
    std::string text = ctl_text(net);
    EXPECT_FALSE(contains(text, "dest 0")) << "the holder's dest outlived him:\n" << text;
    EXPECT_FALSE(contains(text, "loopback 0")) << text;
    // The next user of port 0 sends where the network's defaults say.
    Fd reader = open_fd(net + "/port1", O_RDONLY);
    Fd writer = open_fd(net + "/port0", O_WRONLY);
    ASSERT_TRUE(reader.ok() && writer.ok());
    ASSERT_TRUE(write_msg(writer.get(), "for the group").n > 0);
    Io got;
    for (int i = 0; i < 8; ++i) {  // events first (join, counts), then the message
        got = read_one(reader.get(), 2000);
        if (got.n <= 0 || (!contains(got.data, "join") && !contains(got.data, "counts"))) break;
    }
    EXPECT_EQ(got.data, "for the group");
    // What the manager set in ctl stays.
    text = ctl_text(net);
    EXPECT_TRUE(contains(text, "member 1 7")) << text;
    EXPECT_TRUE(contains(text, "events 1 on")) << text;
}

}  // namespace
}  // namespace ipnfs_it
