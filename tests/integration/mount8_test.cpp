// mount(8), fstab: the installed daemon, started the way the system starts it.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "mount_fixture.hpp"
#include "test_io.hpp"

namespace ipnfs_it {
namespace {

// mount(8) runs `ipnfs` through mount.fuse3 with a fixed PATH: the binary
// under test must be the one installed in /usr/local/bin.
class Mount8Test : public ::testing::Test {
  protected:
    void SetUp() override {
        if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
        const std::string installed = "/usr/local/bin/ipnfs";
        struct stat st {};
        if (stat(installed.c_str(), &st) != 0) {
            IPNFS_SKIP_OR_FAIL(installed + " is missing (cmake --install the build first)");
        }
        Shell cmp = run_argv({"cmp", "-s", installed, IPNFS_BINARY});
        if (cmp.exit_code() != 0) {
            IPNFS_SKIP_OR_FAIL(installed + " differs from the binary under test " IPNFS_BINARY
                                           " (cmake --install the build first)");
        }
    }
};

void expect_working_mount(AdoptedMount& m, const Shell& mount_cmd) {
    ASSERT_EQ(mount_cmd.exit_code(), 0) << mount_cmd.out << mount_cmd.err;
    ASSERT_TRUE(m.mounted()) << "mount(8) succeeded but there is no fuse.ipnfs mount";
    EXPECT_EQ(mkdir((m.dir() + "/lan").c_str(), 0755), 0) << std::strerror(errno);
    Shell sh = run_shell("cat " + sq(m.dir() + "/lan/ctl"));
    EXPECT_EQ(sh.out.rfind("policy hub\n", 0), 0u) << sh.out << sh.err;
    std::ifstream mi("/proc/self/mountinfo");
    std::string line, found;
    while (std::getline(mi, line)) {
        if (line.find(" " + m.dir() + " ") != std::string::npos) found = line;
    }
    EXPECT_NE(found.find("allow_other"), std::string::npos) << found;
    auto status = m.unmount_and_wait(5s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not exit after umount";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
}

TEST_F(Mount8Test, MountTypeFuseIpnfs) {
    AdoptedMount m;
    Shell sh = run_shell(
        "mount -t fuse.ipnfs none " + sq(m.dir()) + " -o allow_other,log_file=" + m.log_file(), 15);
    expect_working_mount(m, sh);
    if (HasFailure()) std::cerr << m.log();
}

TEST_F(Mount8Test, FstabLineWithMountT) {
    AdoptedMount m;
    std::string fstab = m.dir() + ".fstab";
    {
        std::ofstream out(fstab);
        out << "# ipnfs integration test\n"
            << "none " << m.dir() << " fuse.ipnfs allow_other,log_file=" << m.log_file()
            << " 0 0\n";
    }
    Shell sh = run_shell("mount -T " + sq(fstab) + " " + sq(m.dir()), 15);
    expect_working_mount(m, sh);
    if (HasFailure()) std::cerr << m.log();
    unlink(fstab.c_str());
}

TEST_F(Mount8Test, ConfigOptionMakesTheNetworksAtMount) {
    AdoptedMount m;
    std::string config = m.dir() + ".conf";
    std::ofstream(config) << "network lan\nmode 0750\nmtu 9014\n";
    Shell sh = run_shell("mount -t fuse.ipnfs none " + sq(m.dir()) + " -o config=" + config +
                             ",log_file=" + m.log_file(),
                         15);
    ASSERT_EQ(sh.exit_code(), 0) << sh.out << sh.err;
    ASSERT_TRUE(m.mounted());
    struct stat st {};
    ASSERT_EQ(stat((m.dir() + "/lan").c_str(), &st), 0) << std::strerror(errno);
    EXPECT_EQ(st.st_mode & 07777, 0750U);
    EXPECT_NE(run_shell("cat " + sq(m.dir() + "/lan/ctl")).out.find("\nmtu 9014\n"),
              std::string::npos);
    auto status = m.unmount_and_wait(5s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not exit after umount";
    if (HasFailure()) std::cerr << m.log();
    unlink(config.c_str());
}

}  // namespace
}  // namespace ipnfs_it
