// The command line: --version, --help, -o options and their errors.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

TEST(CliTest, VersionPrintsIpnfsVersion) {
    Shell sh = run_argv({IPNFS_BINARY, "--version"});
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_TRUE(std::regex_search(sh.out, std::regex("(^|\n)ipnfs version [0-9]+\\.[0-9]+")))
        << sh.out;
}

TEST(CliTest, HelpListsTheIpnfsOptions) {
    Shell sh = run_argv({IPNFS_BINARY, "--help"});
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    for (const char* opt : {"-o log_level=", "-o log_file=", "-o policy=", "-o ports=", "-o mtu=",
                            "-o queue=", "-o root_mode="}) {
        EXPECT_NE(sh.out.find(opt), std::string::npos) << "--help does not mention " << opt;
    }
}

TEST(CliTest, NoMountPointIsAUsageError) {
    Shell sh = run_argv({IPNFS_BINARY});
    EXPECT_EQ(sh.exit_code(), 2);
    EXPECT_NE(sh.err.find("mount point"), std::string::npos) << sh.err;
}

TEST(CliTest, InvalidOptionValuesExitTwoWithAMessage) {
    char tmpl[] = "/tmp/ipnfs-it-cli.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    struct Case {
        std::string option, mentions;
    };
    const std::vector<Case> cases{
        {"mtu=0", "mtu"},
        {"mtu=65536", "mtu"},
        {"ports=0", "ports"},
        {"ports=lots", "ports"},
        {"queue=0", "queue"},
        {"queue=65537", "queue"},
        {"log_level=loud", "log_level"},
        {"policy=nosuch", "nosuch"},
        {"root_mode=999", "root_mode"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.option);
        Shell sh = run_argv({IPNFS_BINARY, "none", dir, "-f", "-o", c.option}, 5);
        EXPECT_FALSE(sh.timed_out) << "it started instead of refusing the option";
        EXPECT_EQ(sh.exit_code(), 2) << sh.err;
        EXPECT_NE(sh.err.find(c.mentions), std::string::npos) << "message: " << sh.err;
        umount2(dir.c_str(), MNT_DETACH);  // in case it mounted anyway
    }
    rmdir(dir.c_str());
}

class PortsOptionTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"ports=8"}; }
};

TEST_F(PortsOptionTest, NewNetworksGetThatManyPorts) {
    std::string net = make_net("lan");
    EXPECT_EQ(list_dir(net).size(), 6u + 8u);  // ctl stats clone events capture metrics, ports
    struct stat st {};
    EXPECT_EQ(stat((net + "/port7").c_str(), &st), 0);
    EXPECT_EQ(stat((net + "/port8").c_str(), &st), -1);
    EXPECT_EQ(nth_line(ctl_text(net), 1), "ports 8");
    // Only the default: a network can still grow.
    EXPECT_EQ(ctl(net, "ports 16\n"), 0);
    EXPECT_EQ(stat((net + "/port15").c_str(), &st), 0);
}

class SettingsOptionsTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override {
        return {"mtu=9000,queue=16", "root_mode=0700"};
    }
};

TEST_F(SettingsOptionsTest, MtuQueueAndRootModeOptionsApply) {
    struct stat st {};
    ASSERT_EQ(stat(p("").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    std::string net = make_net("lan");
    auto lines = lines_of(ctl_text(net));
    ASSERT_GE(lines.size(), 4u);
    EXPECT_EQ(lines[2], "mtu 9000");
    EXPECT_EQ(lines[3], "queue 16");
}

}  // namespace
}  // namespace ipnfs_it
