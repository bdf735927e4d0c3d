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

// The shipped examples, byte for byte as `cmake --install` put them, on a
// system just booted: /run a fresh tmpfs without /run/ipnfs, which the
// example's `vde /run/ipnfs/lan.vde` needs.  The fstab example's lines are
// mounted with mount -T as they stand, but for the mount point (a temp dir)
// and the config path (the installed example instead of
// /etc/ipnfs/networks.conf).  All of it in a mount and network namespace of
// its own, so the host's /run, tap0 and /etc are never touched.
TEST_F(Mount8Test, ShippedExamplesMountAsShippedOnAFreshRun) {
    const std::string examples = IPNFS_EXAMPLES_DIR;
    for (const char* name : {"fstab.example", "networks.conf.example", "mnt-ipn.mount"}) {
        Shell cmp = run_argv({"cmp", examples + "/" + name,
                              std::string(IPNFS_SOURCE_DIR) + "/mount-helper/" + name});
        if (cmp.exit_code() != 0) {
            IPNFS_SKIP_OR_FAIL(examples + "/" + name +
                               " is missing or not this tree's (cmake --install the build first)");
        }
    }
    const std::string script = R"sh(set -u
ex=$1
mount -t tmpfs tmpfs /run
[ -e /run/ipnfs ] && echo "/run/ipnfs exists before the mount"
mnt=$(mktemp -d /tmp/ipnfs-examples.XXXXXX)
daemons() {
    for p in /proc/[0-9]*; do
        { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -- " $mnt " && echo "${p#/proc/}"
    done
}
# umount, then wait up to 5 s for the daemon to exit.
unmount() {
    pids=$(daemons)
    umount "$mnt" 2>/dev/null || return 1
    for i in $(seq 50); do
        alive=""; for p in $pids; do [ -d "/proc/$p" ] && alive="$alive $p"; done
        [ -z "$alive" ] && return 0
        sleep 0.1
    done
    echo "the daemon did not exit after umount"; kill -9 $alive
}
trap 'unmount; rmdir "$mnt"; rm -f "$mnt.fstab"' EXIT
n=0
grep -E '^(# )?none ' "$ex/fstab.example" | sed 's/^# //' | while read -r line; do
    n=$((n + 1))
    echo "$line" | sed "s| /mnt/ipn | $mnt |; s|=/etc/ipnfs/networks.conf,|=$ex/networks.conf.example,|" > "$mnt.fstab"
    if ! mount -T "$mnt.fstab" "$mnt"; then echo "line $n: mount failed: $line"; continue; fi
    findmnt -n -o FSTYPE "$mnt" | sed "s/^/line $n: /"
    case $line in
    *config=*)
        echo "line $n: networks $(find "$mnt" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort | tr '\n' ' ')"
        [ -S /run/ipnfs/lan.vde/ctl ] && echo "line $n: vde endpoint"
        ip -o link show tap0 > /dev/null && echo "line $n: tap0"
        grep -q '^cable wan 1 0$' "$mnt/lan/ctl" && echo "line $n: cable"
        ;;
    esac
    unmount || echo "line $n: umount failed"
done
)sh";
    Shell sh = run_argv({"unshare", "--mount", "--net", "--fork", "--propagation", "private", "sh",
                         "-c", script, "sh", examples},
                        40);
    EXPECT_EQ(sh.exit_code(), 0) << sh.out << sh.err;
    EXPECT_EQ(sh.out,
              "line 1: fuse.ipnfs\n"
              "line 2: fuse.ipnfs\n"
              "line 2: networks lan wan \n"
              "line 2: vde endpoint\n"
              "line 2: tap0\n"
              "line 2: cable\n")
        << sh.err;

    Shell unit = run_shell("command -v systemd-analyze >/dev/null && systemd-analyze verify " +
                               sq(examples + "/mnt-ipn.mount") + " || echo no-systemd",
                           30);
    if (unit.out.find("no-systemd") == std::string::npos) {
        EXPECT_EQ(unit.exit_code(), 0) << unit.out << unit.err;
        EXPECT_EQ(unit.err, "") << "systemd-analyze verify has a complaint";
    }
    std::string text = read_whole(examples + "/mnt-ipn.mount");
    EXPECT_NE(text.find("\nWhere=/mnt/ipn\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\nType=fuse.ipnfs\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace ipnfs_it
