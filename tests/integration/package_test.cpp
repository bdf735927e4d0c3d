// The .deb that `cpack -G DEB` makes (the ipnfs_deb ctest fixture) installs
// and mounts on a fresh Debian 12: a minbase bookworm tree, debootstrapped
// once and kept as a tarball in /var/cache/ipnfs-tests, unpacked per run in
// a private mount namespace, so none of its mounts can outlive the test.
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_io.hpp"

namespace ipnfs_it {
namespace {

const std::string kCache = "/var/cache/ipnfs-tests";

// What the package must install, and a purge must take away: the programs,
// the man page of each, the Debian files, the systemd unit.
constexpr const char* kPackageFiles[] = {
    "/usr/bin/ipnfs",
    "/usr/bin/ipnfs-cable",
    "/usr/bin/ipnfs-top",
    "/sbin/mount.fuse.ipnfs",
    "/usr/include/ipnfs.h",
    "/usr/include/ipnfs_policy.h",
    "/usr/lib/ipnfs/policies/topic.so",
    "/usr/share/man/man8/ipnfs.8.gz",
    "/usr/share/man/man8/mount.fuse.ipnfs.8.gz",
    "/usr/share/man/man5/ipnfs.5.gz",
    "/usr/share/man/man1/ipnfs-cable.1.gz",
    "/usr/share/man/man1/ipnfs-top.1.gz",
    "/usr/share/doc/ipnfs/copyright",
    "/usr/share/doc/ipnfs/changelog.gz",
    "/usr/share/doc/ipnfs/examples/mnt-ipn.mount",
    "/usr/share/lintian/overrides/ipnfs",
    "/usr/lib/python3/dist-packages/ipnfs/__init__.py",
    "/usr/lib/python3/dist-packages/ipnfs/py.typed",
    "/usr/lib/systemd/system/ipnfs.service",
};

// A word for sh, whatever it holds.
std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// The one .deb of this version in the fixture's directory, or "".
std::string find_deb() {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(IPNFS_DEB_DIR, ec)) {
        std::string name = entry.path().filename().string();
        if (name.starts_with("ipnfs_" IPNFS_VERSION "_") && name.ends_with(".deb")) {
            return entry.path().string();
        }
    }
    return "";
}

// Makes the cached tarball if there is none (a few minutes: debootstrap
// downloads some 40 MB); a lock keeps two runs from making it at once.
Shell ensure_bootstrap_tarball() {
    const std::string script = R"sh(set -eu
cache=)sh" + quote(kCache) + R"sh(
mkdir -p "$cache/apt/partial"
exec 9>"$cache/lock"
flock -w 900 9
tarball="$cache/bookworm-minbase.tar"
[ -f "$tarball" ] && exit 0
if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is not installed (tools/deps.sh)" >&2
    exit 1
fi
work=$(mktemp -d "$cache/bootstrap.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
if ! debootstrap --variant=minbase bookworm "$work/root" http://deb.debian.org/debian >"$work/log" 2>&1; then
    tail -20 "$work/log" >&2
    exit 1
fi
tar -C "$work/root" -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
)sh";
    return run_shell(script, 900);
}

// Whether a mount of this namespace is at or below `dir`.
bool mounted_below(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string field;
        for (int i = 0; i < 4; ++i) fields >> field;  // id, parent, device, root
        std::string point;
        fields >> point;
        if (point == dir || point.starts_with(dir + "/")) return true;
    }
    return false;
}

// The processes whose root directory is `root`: what ran in the chroot.
std::vector<pid_t> processes_in(const std::string& root) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code link_ec;
        auto target = std::filesystem::read_symlink(entry.path() / "root", link_ec);
        if (!link_ec && target == root) out.push_back(std::stoi(name));
    }
    return out;
}

std::string comm_of(pid_t pid) {
    std::string comm = read_whole("/proc/" + std::to_string(pid) + "/comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    return comm;
}

// A fresh Debian 12 tree in a temporary directory, with /dev, /proc and the
// shared apt archive cache mounted in a mount namespace of its own.  The
// test process adopts what the chroot leaves running (the daemon, once it
// has daemonized) and ends it on the way out.
class Chroot {
  public:
    Chroot() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
    ~Chroot() {
        cleanup();
        prctl(PR_SET_CHILD_SUBREAPER, 0);
    }
    Chroot(const Chroot&) = delete;
    Chroot& operator=(const Chroot&) = delete;

    bool start(const std::string& deb, std::string& why) {
        char tmpl[] = "/var/tmp/ipnfs-deb-test.XXXXXX";
        if (mkdtemp(tmpl) == nullptr) {
            why = std::string("mkdtemp: ") + std::strerror(errno);
            return false;
        }
        root_ = tmpl;
        Shell untar = run_argv({"tar", "-C", root_, "-xf", kCache + "/bookworm-minbase.tar"}, 120);
        if (untar.exit_code() != 0) {
            why = "unpacking the cached tree: " + untar.err;
            return false;
        }
        holder_ = fork();
        if (holder_ == 0) {
            setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGKILL);  // the namespace dies with the test
            execlp("unshare", "unshare", "--mount", "--propagation", "private", "sleep", "3600",
                   static_cast<char*>(nullptr));
            _exit(127);
        }
        if (holder_ < 0 || !eventually([&] { return comm_of(holder_) == "sleep"; }, 10s)) {
            why = "no mount namespace (unshare --mount)";
            return false;
        }
        const std::string r = quote(root_);
        Shell setup = in_namespace(
            "set -e\n"
            "mount --rbind /dev " +
            r +
            "/dev\n"
            "mount -t proc proc " +
            r +
            "/proc\n"
            "mount --bind " +
            quote(kCache + "/apt") + " " + r +
            "/var/cache/apt/archives\n"
            "cp /etc/resolv.conf " +
            r +
            "/etc/resolv.conf\n"
            "cp " +
            quote(deb) + " " + r + "/tmp/\n");
        if (setup.exit_code() != 0) {
            why = "setting up the chroot: " + setup.err;
            return false;
        }
        return true;
    }

    // sh -c SCRIPT inside the chroot, with a plain root environment.
    Shell run(const std::string& script, double timeout_s = 30) {
        return run_argv(inside(script), timeout_s);
    }

    // apt-get install of `packages` from the tree's own lists, then of the
    // .deb; the shared archive cache keeps later runs off the network, and a
    // lock, as apt refuses to share its archive directory.
    Shell install_deb_after(const std::string& packages) {
        return run(
            "cd /tmp && flock -w 300 /var/cache/apt/archives/.ipnfs-test-lock "
            "sh -c 'apt-get install -y -q -o Dpkg::Use-Pty=0 " +
                packages + " && apt-get install -y -q -o Dpkg::Use-Pty=0 ./ipnfs_*.deb'",
            600);
    }

    // The same, started in the background: the child's pid, for wait_child.
    pid_t spawn(const std::string& script) {
        std::vector<std::string> args = inside(script);
        pid_t pid = fork();
        if (pid == 0) {
            setpgid(0, 0);
            std::vector<char*> argv;
            argv.reserve(args.size() + 1);
            for (std::string& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execvp(argv[0], argv.data());
            _exit(127);
        }
        return pid;
    }

    [[nodiscard]] const std::string& root() const { return root_; }

    // The chroot's processes are ended, its mounts (and the namespace)
    // gone, then the tree is deleted; never while anything is mounted in it.
    void cleanup() {
        if (root_.empty()) return;
        for (pid_t pid : processes_in(root_)) kill(pid, SIGKILL);
        if (holder_ > 0) {
            // Best effort: what is left mounted is checked below, before deleting.
            (void)in_namespace("umount -R " + quote(root_ + "/mnt/ipn") + " 2>/dev/null; " +
                               "umount -R " + quote(root_ + "/var/cache/apt/archives") + " " +
                               quote(root_ + "/proc") + " " + quote(root_ + "/dev"));
            kill(holder_, SIGKILL);
            waitpid(holder_, nullptr, 0);
            holder_ = -1;
        }
        // Reap what the chroot left to us (the daemon, adopted).
        eventually([&] { return processes_in(root_).empty(); }, 5s);
        while (waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        if (mounted_below(root_)) {
            ADD_FAILURE() << "something is still mounted under " << root_ << "; left in place";
        } else {
            run_argv({"rm", "-rf", "--one-file-system", root_}, 120);
        }
        root_.clear();
    }

  private:
    [[nodiscard]] std::vector<std::string> in_namespace_argv(const std::string& script) const {
        return {"nsenter", "-t", std::to_string(holder_), "-m", "--", "/bin/sh", "-c", script};
    }
    [[nodiscard]] Shell in_namespace(const std::string& script, double timeout_s = 30) const {
        return run_argv(in_namespace_argv(script), timeout_s);
    }
    [[nodiscard]] std::vector<std::string> inside(const std::string& script) const {
        return in_namespace_argv("exec chroot " + quote(root_) +
                                 " /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "
                                 "LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive /bin/sh -c " +
                                 quote(script));
    }

    std::string root_;
    pid_t holder_ = -1;
};

TEST(PackageTest, DebInstallsAndMountsOnAFreshDebian12) {
    if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    const std::string deb = find_deb();
    ASSERT_FALSE(deb.empty()) << "no ipnfs_" IPNFS_VERSION "_*.deb in " IPNFS_DEB_DIR
                              << " (the ipnfs_deb fixture runs cpack -G DEB)";
    auto t0 = Clock::now();
    Shell boot = ensure_bootstrap_tarball();
    ASSERT_EQ(boot.exit_code(), 0) << "debootstrap: " << boot.out << boot.err;
    std::cerr << "bookworm tree ready after " << seconds_since(t0) << " s\n";

    Chroot chroot;
    std::string why;
    ASSERT_TRUE(chroot.start(deb, why)) << why;

    // python3 first, so the package's postinst byte-compiles its Python
    // module as Debian's do.
    Shell install = chroot.install_deb_after("python3");
    ASSERT_EQ(install.exit_code(), 0) << install.out << install.err;
    Shell files = chroot.run("dpkg -L ipnfs");
    for (const char* path : kPackageFiles) {
        EXPECT_NE(files.out.find(std::string(path) + "\n"), std::string::npos)
            << path << " is not in the package:\n"
            << files.out;
    }
    // Installed, not enabled: nothing but the admin mounts over /mnt/ipn.
    // (update-state records the unit's state in a .dsh-also file; an
    // enable would link it into a .wants directory.)
    Shell enabled = chroot.run(
        "find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled "
        "-path '*.wants/ipnfs.service' 2>/dev/null; "
        "deb-systemd-helper --quiet is-enabled ipnfs.service && echo is-enabled");
    EXPECT_EQ(enabled.out, "") << "the install enabled the service";
    Shell conffiles = chroot.run("dpkg-query -W -f='${Conffiles}' ipnfs");
    EXPECT_EQ(conffiles.exit_code(), 0) << conffiles.err;
    EXPECT_EQ(conffiles.out, "") << "conffiles a purge would have to remove";

    Shell mount = chroot.run("mkdir -p /mnt/ipn && mount -t fuse.ipnfs none /mnt/ipn", 20);
    ASSERT_EQ(mount.exit_code(), 0) << mount.out << mount.err;
    Shell mounts = chroot.run("grep ' /mnt/ipn ' /proc/self/mounts");
    ASSERT_NE(mounts.out.find("fuse.ipnfs"), std::string::npos) << mounts.out;
    pid_t daemon = -1;
    for (pid_t pid : processes_in(chroot.root())) {
        if (comm_of(pid) == "ipnfs") daemon = pid;
    }
    EXPECT_GT(daemon, 0) << "no ipnfs daemon runs in the chroot";

    // A message from one shell command to a reader, as the README shows.
    ASSERT_EQ(chroot.run("mkdir /mnt/ipn/chat").exit_code(), 0);
    pid_t reader = chroot.spawn(
        "exec timeout 20 dd if=/mnt/ipn/chat/port1 bs=65536 count=1 status=none > /tmp/got");
    ASSERT_GT(reader, 0);
    EXPECT_TRUE(eventually(
        [&] { return chroot.run("grep -qx 'connected 1' /mnt/ipn/chat/stats").exit_code() == 0; },
        10s))
        << "the reader never connected: " << chroot.run("cat /mnt/ipn/chat/stats").out;
    Shell send = chroot.run("echo hi > /mnt/ipn/chat/port2");
    EXPECT_EQ(send.exit_code(), 0) << send.err;
    EXPECT_EQ(exit_code_of(wait_child(reader, 10s)), 0);
    EXPECT_EQ(read_whole(chroot.root() + "/tmp/got"), "hi\n");

    // The Python module, shipped as source and compiled by the postinst,
    // imported by Debian's python3 from its own path, on the mount.
    EXPECT_EQ(files.out.find(".pyc"), std::string::npos) << "byte-compiled files shipped";
    Shell compiled = chroot.run("ls /usr/lib/python3/dist-packages/ipnfs/__pycache__");
    EXPECT_NE(compiled.out.find("port.cpython-"), std::string::npos)
        << "the postinst did not byte-compile the module: " << compiled.out << compiled.err;
    Shell py = chroot.run(
        "cd / && python3 -c 'import ipnfs\n"
        "with ipnfs.Port(\"/mnt/ipn/chat\", 1, write=False) as rx, "
        "ipnfs.Port(\"/mnt/ipn/chat\") as tx:\n"
        "    tx.send(b\"hi\")\n"
        "    r = rx.recv()\n"
        "    print(ipnfs.__file__, r.kind.name, r.port, r.payload)'");
    EXPECT_EQ(py.exit_code(), 0) << py.err;
    EXPECT_EQ(py.out, "/usr/lib/python3/dist-packages/ipnfs/__init__.py DATA 0 b'hi'\n");

    Shell man = chroot.run(
        "if command -v man >/dev/null; then man -w ipnfs && man -w 5 ipnfs && man -w ipnfs-cable "
        "&& man -w mount.fuse.ipnfs; "
        "else gzip -t /usr/share/man/man8/ipnfs.8.gz /usr/share/man/man5/ipnfs.5.gz "
        "/usr/share/man/man1/ipnfs-cable.1.gz /usr/share/man/man8/mount.fuse.ipnfs.8.gz; fi");
    EXPECT_EQ(man.exit_code(), 0) << man.out << man.err;
    Shell cable = chroot.run("ipnfs-cable --help");
    EXPECT_EQ(cable.exit_code(), 0) << cable.err;
    EXPECT_NE(cable.out.find("Usage: ipnfs-cable"), std::string::npos) << cable.out;

    Shell umount = chroot.run("umount /mnt/ipn", 20);
    EXPECT_EQ(umount.exit_code(), 0) << umount.out << umount.err;
    if (daemon > 0) {
        auto status = wait_child(daemon, 5s);
        EXPECT_EQ(exit_code_of(status), 0) << "the daemon did not exit cleanly after umount";
    }

    // A purge leaves nothing of the package: not its files, not its
    // maintainer scripts' state, not the directory the daemon made.
    Shell purge = chroot.run(
        "flock -w 300 /var/cache/apt/archives/.ipnfs-test-lock "
        "apt-get purge -y -q -o Dpkg::Use-Pty=0 ipnfs",
        300);
    ASSERT_EQ(purge.exit_code(), 0) << purge.out << purge.err;
    Shell status = chroot.run("dpkg-query -W -f='${db:Status-Abbrev}' ipnfs 2>&1");
    EXPECT_TRUE(status.exit_code() != 0 || status.out.starts_with("un") ||
                status.out.starts_with("pn"))
        << "dpkg still knows ipnfs: " << status.out;
    Shell owned = chroot.run("dpkg -S ipnfs 2>/dev/null");
    EXPECT_EQ(owned.out, "") << "dpkg still lists files of ipnfs";
    for (const char* path : kPackageFiles) {
        EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(chroot.root() + path)))
            << path << " is left after the purge";
    }
    Shell left = chroot.run(
        "ls -d /usr/share/doc/ipnfs /usr/lib/ipnfs /run/ipnfs /etc/ipnfs "
        "/etc/systemd/system/ipnfs.service /var/lib/dpkg/info/ipnfs.* "
        "/var/lib/systemd/deb-systemd-helper-enabled/ipnfs.service* "
        "/var/lib/systemd/deb-systemd-helper-masked/ipnfs.service 2>/dev/null");
    EXPECT_EQ(left.out, "") << "left after the purge";
    std::cerr << "whole test " << seconds_since(t0) << " s\n";
}

// What runs at boot in the container of the service test: it starts
// ipnfs.service as an admin would, uses the mount, reads the journal by
// field, stops the service, writes what it saw to /ipnfs-check.out and
// powers the container off.
constexpr const char* kServiceCheck = R"sh(#!/bin/sh
exec > /ipnfs-check.out 2>&1
systemctl start ipnfs.service; echo "start=$?"
for i in $(seq 100); do mountpoint -q /mnt/ipn && break; sleep 0.1; done
echo "mounted=$(mountpoint -q /mnt/ipn && echo yes || echo no)"
echo "active=$(systemctl is-active ipnfs.service)"
echo "runtime=$(stat -c '%U %a' /run/ipnfs)"
mkdir /mnt/ipn/lan
timeout 10 dd bs=65536 count=1 status=none < /mnt/ipn/lan/port1 > /tmp/got &
for i in $(seq 100); do grep -qx 'connected 1' /mnt/ipn/lan/stats && break; sleep 0.1; done
echo hi > /mnt/ipn/lan/port2; wait; echo "got=$(cat /tmp/got)"
echo nosuchverb > /mnt/ipn/lan/ctl 2>/dev/null || echo "ctl=refused"
for i in $(seq 50); do
  journalctl -q -u ipnfs.service IPNFS_EVENT=ctl-error -o cat | grep -q . && break; sleep 0.1
done
journalctl -q -u ipnfs.service IPNFS_NETWORK=lan -o export | grep -a '^IPNFS_\|^MESSAGE=' |
  sed 's/^/journal /'
systemctl stop ipnfs.service
echo "stopped=$(mountpoint -q /mnt/ipn && echo mounted || echo unmounted)"
echo "runtime_after=$(test -e /run/ipnfs && echo left || echo gone)"
echo done
systemctl poweroff
)sh";

constexpr const char* kServiceCheckUnit = R"(# the service test's check, at boot
[Unit]
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/bin/ipnfs-check
)";

bool write_file_mode(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    return out.good() && chmod(path.c_str(), mode) == 0;
}

// ipnfs.service as systemd runs it: the package and systemd in a fresh
// Debian 12 tree booted with systemd-nspawn (systemd as PID 1, journald),
// the unit started, its RuntimeDirectory made and removed, the daemon's log
// in the journal with fields of its own (found by the journal stream
// systemd connects, no log= option), the mount usable, and gone when the
// service stops.
TEST(PackageTest, TheServiceMountsUnderSystemdAndLogsToTheJournal) {
    if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    if (run_argv({"sh", "-c", "command -v systemd-nspawn"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL(
            "systemd-nspawn is not installed (tools/deps.sh --test: systemd-container)");
    }
    const std::string deb = find_deb();
    ASSERT_FALSE(deb.empty()) << "no ipnfs_" IPNFS_VERSION "_*.deb in " IPNFS_DEB_DIR;
    auto t0 = Clock::now();
    Shell boot = ensure_bootstrap_tarball();
    ASSERT_EQ(boot.exit_code(), 0) << "debootstrap: " << boot.out << boot.err;
    Chroot chroot;
    std::string why;
    ASSERT_TRUE(chroot.start(deb, why)) << why;
    Shell install = chroot.install_deb_after("systemd systemd-sysv python3");
    ASSERT_EQ(install.exit_code(), 0) << install.out << install.err;
    const std::string& root = chroot.root();
    ASSERT_TRUE(write_file_mode(root + "/usr/local/bin/ipnfs-check", kServiceCheck, 0755));
    ASSERT_TRUE(
        write_file_mode(root + "/etc/systemd/system/ipnfs-check.service", kServiceCheckUnit, 0644));
    std::error_code ec;
    std::filesystem::create_directories(root + "/etc/systemd/system/multi-user.target.wants", ec);
    std::filesystem::create_symlink("/etc/systemd/system/ipnfs-check.service",
                                    root +
                                        "/etc/systemd/system/multi-user.target.wants/"
                                        "ipnfs-check.service",
                                    ec);
    ASSERT_FALSE(ec) << ec.message();

    // No systemd runs on the host: no scope to register, the container in
    // the test's own cgroup; /dev/fuse passed in.  nspawn leaves its state
    // directory behind; it goes if this test made it.
    const bool had_nspawn_dir = std::filesystem::exists("/run/systemd/nspawn");
    Shell nspawn = run_argv({"systemd-nspawn", "-q", "-D", root, "-b", "--register=no",
                             "--keep-unit", "--bind=/dev/fuse"},
                            240);
    if (!had_nspawn_dir) std::filesystem::remove_all("/run/systemd/nspawn", ec);
    const std::string seen = read_whole(root + "/ipnfs-check.out");
    // The boot's console, for when the check did not finish.
    const std::string console =
        nspawn.out.size() > 4000 ? nspawn.out.substr(nspawn.out.size() - 4000) : nspawn.out;
    ASSERT_TRUE(seen.ends_with("done\n"))
        << "the check did not finish (nspawn exit " << nspawn.exit_code() << "):\n"
        << seen << console << nspawn.err;
    auto has = [&](const std::string& line) { return contains(seen, line + "\n"); };
    EXPECT_TRUE(has("start=0")) << seen;
    EXPECT_TRUE(has("mounted=yes")) << seen;
    EXPECT_TRUE(has("active=active")) << seen;
    EXPECT_TRUE(has("runtime=root 755")) << "RuntimeDirectory=ipnfs, the default vde_dir\n" << seen;
    EXPECT_TRUE(has("got=hi")) << seen;
    EXPECT_TRUE(has("ctl=refused")) << seen;
    // The journal entries of network lan, by field.
    EXPECT_TRUE(has("journal MESSAGE=network=lan uid=0 event=network-create: created")) << seen;
    EXPECT_TRUE(has("journal IPNFS_EVENT=network-create")) << seen;
    EXPECT_TRUE(has("journal IPNFS_EVENT=ctl-error")) << seen;
    EXPECT_TRUE(has("journal IPNFS_NETWORK=lan")) << seen;
    EXPECT_TRUE(has("journal IPNFS_UID=0")) << seen;
    EXPECT_TRUE(has("stopped=unmounted")) << seen;
    EXPECT_TRUE(has("runtime_after=gone")) << seen;
    std::cerr << "whole test " << seconds_since(t0) << " s\n";
}

// lintian's verdict: no error or warning, and what is overridden is
// overridden for a reason: each override in debian/ipnfs.lintian-overrides
// follows a comment saying why, is listed in docs/packaging.md, and still
// silences a tag (lintian reports unused-override otherwise).
TEST(PackageTest, LintianFindsNothingUnjustified) {
    const std::string deb = find_deb();
    ASSERT_FALSE(deb.empty()) << "no ipnfs_" IPNFS_VERSION "_*.deb in " IPNFS_DEB_DIR;
    if (run_argv({"sh", "-c", "command -v lintian"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("lintian is not installed (tools/deps.sh --test)");
    }
    Shell lint = run_argv({"lintian", "--fail-on", "error,warning", "--display-info",
                           "--show-overrides", "--tag-display-limit", "0", deb},
                          600);
    std::cerr << lint.out << lint.err;
    EXPECT_EQ(lint.exit_code(), 0) << "lintian found errors or warnings:\n" << lint.out << lint.err;
    std::istringstream lines(lint.out);
    std::string line;
    while (std::getline(lines, line)) {
        EXPECT_FALSE(line.starts_with("E: ") || line.starts_with("W: ")) << line;
        EXPECT_EQ(line.find("unused-override"), std::string::npos) << line;
        EXPECT_EQ(line.find("mismatched-override"), std::string::npos) << line;
    }

    const std::string docs = read_whole(IPNFS_SOURCE_DIR "/docs/packaging.md");
    std::istringstream overrides(read_whole(IPNFS_SOURCE_DIR "/debian/ipnfs.lintian-overrides"));
    bool justified = false;
    while (std::getline(overrides, line)) {
        if (line.starts_with("#")) {
            justified = line.size() > 2;
            continue;
        }
        if (line.empty()) {
            justified = false;
            continue;
        }
        EXPECT_TRUE(justified) << "an override without a comment saying why: " << line;
        justified = false;
        std::string tag = line.substr(0, line.find(' '));
        EXPECT_NE(docs.find("`" + tag + "`"), std::string::npos)
            << "docs/packaging.md does not list the override of " << tag;
    }
}

// ipnfs.service as installed parses and names what the package installs:
// systemd-analyze verify on the unpacked package (its ExecStart= binary
// included).
TEST(PackageTest, SystemdUnitVerifies) {
    const std::string deb = find_deb();
    ASSERT_FALSE(deb.empty()) << "no ipnfs_" IPNFS_VERSION "_*.deb in " IPNFS_DEB_DIR;
    if (run_argv({"sh", "-c", "command -v systemd-analyze"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("systemd-analyze is not installed (tools/deps.sh --test: systemd)");
    }
    char tmpl[] = "/tmp/ipnfs-deb-unit.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    const std::string dir = tmpl;
    Shell unpack = run_argv({"dpkg-deb", "-x", deb, dir}, 60);
    ASSERT_EQ(unpack.exit_code(), 0) << unpack.err;
    // The root verify looks in must hold the units ipnfs.service names
    // (local-fs.target, multi-user.target and what they pull in: the host's,
    // the package's own unit left as it is) and the ExecStartPre= program.
    const std::string units = dir + "/usr/lib/systemd/system";
    Shell complete =
        run_argv({"sh", "-c",
                  "set -e; cp -an /usr/lib/systemd/system/. \"$1\"/usr/lib/systemd/system/; "
                  "[ -e \"$1\"/bin ] || ln -s usr/bin \"$1\"/bin; "
                  "cp /usr/bin/mkdir \"$1\"/usr/bin/",
                  "sh", dir},
                 60);
    ASSERT_EQ(complete.exit_code(), 0) << complete.err;
    const std::string unit = units + "/ipnfs.service";
    const std::string text = read_whole(unit);
    EXPECT_NE(text.find("\nRuntimeDirectory=ipnfs\n"), std::string::npos) << text;
    EXPECT_NE(text.find("ExecStart=/usr/bin/ipnfs -f "), std::string::npos) << text;
    EXPECT_NE(text.find("plugins=/usr/lib/ipnfs/policies"), std::string::npos) << text;
    Shell verify = run_argv({"systemd-analyze", "verify", "--root=" + dir, unit}, 60);
    EXPECT_EQ(verify.exit_code(), 0) << verify.out << verify.err;
    EXPECT_EQ(verify.err, "") << "systemd-analyze verify complains";
    run_argv({"rm", "-rf", "--one-file-system", dir}, 60);
}

}  // namespace
}  // namespace ipnfs_it
