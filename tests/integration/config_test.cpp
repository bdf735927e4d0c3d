// Declarative networks: `-o config=FILE` makes the file's networks at mount
// (directories, ctl settings, TAPs, VDE endpoints, cables, file modes); an
// error stops the mount with the file's line and leaves nothing behind; and
// `ipnfs --dump` writes the mounted state back in the same format.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "ether.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

bool has_line(const std::string& text, const std::string& line) {
    std::vector<std::string> lines = lines_of(text);
    return std::ranges::find(lines, line) != lines.end();
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return 07777 + 1;
    return st.st_mode & 07777;
}

// A group other than the test's own, by name, for `group NAME` lines.
std::string other_group() {
    for (const char* name : {"daemon", "bin", "sys", "adm"}) {
        if (group* g = getgrnam(name); g != nullptr && g->gr_gid != getgid()) return name;
    }
    return "";
}

// Each test writes config files into a scratch directory and mounts (or
// fails to mount) daemons of its own.  Root and ip(8) are needed for TAPs;
// no interface may be left behind.
class ConfigTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ::signal(SIGPIPE, SIG_IGN);
        std::string why = fuse_problem();
        if (why.empty()) why = netns_problem({"timeout"});
        if (!why.empty()) {
            IPNFS_SKIP_OR_FAIL(why);
        }
        char tmpl[] = "/tmp/ipnfs-it-config.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
        scratch_ = tmpl;
    }
    void TearDown() override {
        watchdog_.reset();
        for (Mount* m : {&first_, &second_}) {
            if (HasFailure() && m->pid() > 0) std::cerr << m->log();
            m->cleanup();
        }
        if (!tap_.empty() && link_exists(tap_)) {
            ADD_FAILURE() << "TAP " << tap_ << " is still there after the daemons ended";
            root_sh("ip link del " + sq(tap_));
        }
        std::error_code ec;
        if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
    }

    std::string write_config(const std::string& name, const std::string& text) {
        std::string path = scratch_ + "/" + name;
        std::ofstream(path) << text;
        return path;
    }

    // Mounts `m` with config=path; fails the test if it does not mount.
    void mount_with(Mount& m, const std::string& path) {
        std::string why;
        ASSERT_TRUE(m.start({"config=" + path, "vde_dir=" + scratch_}, why)) << why;
        watchdog_ = std::make_unique<Watchdog>(m, 45s);
    }

    // A switch with a TAP, a VDE endpoint, a file of its own mode and a
    // cable to a lossless hub with mode 0770 and a group.
    std::string full_config() {
        tap_ = ifname("cf");
        group_ = other_group();
        return "# two networks joined by a cable\n"
               "network lan\n"
               "mode 0750\n"
               "policy switch\n"
               "ports 8\n"
               "mtu 1514\n"
               "tap " +
               tap_ +
               " 0\n"
               "vde " +
               scratch_ +
               "/lan.vde\n"
               "cable wan 1 0\n"
               "mode port3 0600\n"
               "\n"
               "network wan\n"
               "mode 0770\n" +
               (group_.empty() ? "" : "group " + group_ + "\n") +
               "lossless on\n"
               "events 2 on\n";
    }

    std::string scratch_;
    std::string tap_;
    std::string group_;
    Mount first_;
    Mount second_;
    std::unique_ptr<Watchdog> watchdog_;
};

TEST_F(ConfigTest, MountMakesTheFilesNetworks) {
    std::string file = write_config("networks.conf", full_config());
    ASSERT_NO_FATAL_FAILURE(mount_with(first_, file));
    std::string lan = first_.path("lan");
    std::string wan = first_.path("wan");

    EXPECT_EQ(list_dir(first_.dir()), (std::vector<std::string>{"ipnfs.prom", "lan", "wan"}));
    EXPECT_EQ(mode_of(lan), 0750U);
    EXPECT_EQ(mode_of(lan + "/port3"), 0600U);  // its own
    EXPECT_EQ(mode_of(lan + "/port2"), 0640U);  // from the directory
    EXPECT_EQ(mode_of(wan), 0770U);
    if (!group_.empty()) {
        struct stat st {};
        ASSERT_EQ(stat(wan.c_str(), &st), 0);
        EXPECT_EQ(st.st_gid, getgrnam(group_.c_str())->gr_gid);
    }

    std::string lan_ctl = slurp(lan + "/ctl");
    for (const std::string& line :
         {std::string("policy switch"), std::string("ports 8"), "tap " + tap_ + " 0",
          "vde " + scratch_ + "/lan.vde", std::string("cable wan 1 0")}) {
        EXPECT_TRUE(has_line(lan_ctl, line)) << "no '" << line << "' in\n" << lan_ctl;
    }
    EXPECT_TRUE(has_line(slurp(wan + "/ctl"), "lossless on"));
    EXPECT_TRUE(has_line(slurp(wan + "/ctl"), "events 2 on"));
    Stats wan_stats = parse_stats(slurp(wan + "/stats"));
    EXPECT_EQ(wan_stats.totals["lossless"], "on");
    EXPECT_EQ(wan_stats.totals["connected"], "1");  // the cable's end

    Shell link = root_sh("ip link show " + sq(tap_));
    EXPECT_EQ(link.exit_code(), 0) << describe(link);
    struct stat sock {};
    EXPECT_EQ(stat((scratch_ + "/lan.vde/ctl").c_str(), &sock), 0) << std::strerror(errno);
    EXPECT_TRUE(S_ISSOCK(sock.st_mode));

    // A broadcast from wan's port 5 crosses the cable into lan, whose switch
    // floods it to lan's port 4.
    Fd reader = open_fd(lan + "/port4", O_RDONLY);
    Fd writer = open_fd(wan + "/port5", O_RDWR);
    ASSERT_TRUE(reader.ok() && writer.ok());
    Frame frame{kBroadcast, *parse_mac("02:00:00:00:0c:01"), std::nullopt, 0x88b5, "via cable"};
    std::string bytes = build_frame(frame);
    ASSERT_EQ(write_msg(writer.get(), bytes).n, static_cast<ssize_t>(bytes.size()));
    Io got = read_one(reader.get(), 5000);
    ASSERT_EQ(got.n, static_cast<ssize_t>(bytes.size())) << std::strerror(got.err);
    EXPECT_EQ(got.data, bytes);
}

struct BadConfig {
    const char* what;
    std::string text;    // TAP and VDE: where the test's TAP name and VDE path go
    std::size_t line;    // where the error is
    const char* reason;  // a part of what stderr says
};

std::string filled_in(std::string text, const std::string& tap, const std::string& vde) {
    for (std::size_t at = text.find("TAP"); at != std::string::npos; at = text.find("TAP")) {
        text.replace(at, 3, tap);
    }
    if (std::size_t at = text.find("VDE"); at != std::string::npos) text.replace(at, 3, vde);
    return text;
}

TEST_F(ConfigTest, AnErrorStopsTheMountWithItsLineAndLeavesNothing) {
    const std::vector<BadConfig> cases = {
        {"unknown ctl verb", "network lan\npolicy switch\ntap TAP 0\nvde VDE\nfrobnicate 3\n", 5,
         "frobnicate 3: unknown command 'frobnicate'"},
        {"bad policy", "network wan\nnetwork lan\ntap TAP\n# next\npolicy nosuch\n", 5,
         "policy nosuch: "},
        {"second network of the same name", "network lan\ntap TAP 1\nnetwork wan\nnetwork lan\n", 4,
         "network lan exists"},
        {"cable to a missing network", "network lan\ntap TAP 1\ncable nowhere 2 2\n", 3,
         "cable nowhere 2 2: "},
    };
    tap_ = ifname("ce");
    for (const BadConfig& c : cases) {
        SCOPED_TRACE(c.what);
        std::string vde = scratch_ + "/bad.vde";
        std::string file = write_config("bad.conf", filled_in(c.text, tap_, vde));
        Mount m;
        std::string why;
        ASSERT_FALSE(m.start({"config=" + file, "vde_dir=" + scratch_}, why))
            << "mounted with a bad config";
        std::optional<int> status = m.wait_exit(5s);
        ASSERT_TRUE(status.has_value());
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << "wait status " << *status;
        std::string expected = "ipnfs: " + file + ":" + std::to_string(c.line) + ": ";
        EXPECT_NE(why.find(expected), std::string::npos) << "no '" << expected << "' in " << why;
        EXPECT_NE(why.find(c.reason), std::string::npos) << "no '" << c.reason << "' in " << why;
        EXPECT_FALSE(m.mounted());
        EXPECT_FALSE(link_exists(tap_)) << "the TAP outlived the failed mount";
        EXPECT_FALSE(std::filesystem::exists(vde)) << "the VDE endpoint outlived the failed mount";
        m.cleanup();
    }
}

TEST_F(ConfigTest, DumpMountedWithReadsBackTheSame) {
    std::string file = write_config("networks.conf", full_config());
    ASSERT_NO_FATAL_FAILURE(mount_with(first_, file));
    // A change made after the mount is part of the state too.
    ASSERT_EQ(chmod(first_.path("wan/port6").c_str(), 0604), 0);
    ASSERT_EQ(write_file(first_.path("wan/ctl"), "pool 99"), 0);

    Shell dump = run_argv({IPNFS_BINARY, "--dump", first_.dir()});
    ASSERT_EQ(dump.exit_code(), 0) << dump.err;
    EXPECT_EQ(dump.out.rfind("network lan\nmode 0750\n", 0), 0U) << dump.out;
    for (const std::string& line :
         {"tap " + tap_ + " 0", std::string("cable wan 1 0"), std::string("mode port3 0600"),
          std::string("mode port6 0604"), std::string("pool 99"), std::string("lossless on")}) {
        EXPECT_TRUE(has_line(dump.out, line)) << "no '" << line << "' in\n" << dump.out;
    }
    EXPECT_FALSE(has_line(dump.out, "mode port2 0640")) << "a file like its directory is listed";
    EXPECT_EQ(dump.out.find("# "), std::string::npos) << "ctl's comments are in the dump";
    first_.stop();
    ASSERT_TRUE(eventually([&] { return !link_exists(tap_); }, 3s)) << "the TAP outlived its mount";

    std::string again = write_config("dumped.conf", dump.out);
    ASSERT_NO_FATAL_FAILURE(mount_with(second_, again));
    Shell second = run_argv({IPNFS_BINARY, "--dump", second_.dir()});
    ASSERT_EQ(second.exit_code(), 0) << second.err;
    EXPECT_EQ(second.out, dump.out);
}

TEST_F(ConfigTest, DumpOfAnotherDirectoryFails) {
    Shell sh = run_argv({IPNFS_BINARY, "--dump", scratch_});
    EXPECT_EQ(sh.exit_code(), 1);
    EXPECT_EQ(sh.out, "");
    EXPECT_NE(sh.err.find(scratch_ + ": not an ipnfs mount"), std::string::npos) << sh.err;
    sh = run_argv({IPNFS_BINARY, "--dump", scratch_ + "/missing"});
    EXPECT_EQ(sh.exit_code(), 1);
    EXPECT_NE(sh.err.find("No such file or directory"), std::string::npos) << sh.err;
}

TEST_F(ConfigTest, UnreadableConfigStopsTheMount) {
    Shell sh =
        run_argv({IPNFS_BINARY, "none", scratch_, "-f", "-o", "config=" + scratch_ + "/none"}, 5);
    EXPECT_EQ(sh.exit_code(), 2);
    EXPECT_NE(sh.err.find("config=" + scratch_ + "/none: not a readable file"), std::string::npos)
        << sh.err;
}

// Without -f the daemon forks before the config is applied, so the engine
// thread that a cable starts lives in the process that stays; the command
// still answers with the mount's outcome.
TEST_F(ConfigTest, DaemonizedMountCarriesMessagesThroughTheCable) {
    std::string file = write_config("cable.conf", "network a\nnetwork b\nmtu 1514\ncable a 0 0\n");
    AdoptedMount m;
    Shell sh = run_argv(
        {IPNFS_BINARY, "none", m.dir(), "-o", "config=" + file + ",log_file=" + m.log_file()}, 10);
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    ASSERT_TRUE(m.mounted());
    {
        Fd reader = open_fd(m.dir() + "/a/port1", O_RDONLY);
        Fd writer = open_fd(m.dir() + "/b/port1", O_WRONLY);
        ASSERT_TRUE(reader.ok() && writer.ok());
        ASSERT_EQ(write_msg(writer.get(), "hello over the cable").n, 20);
        Io got = read_one(reader.get(), 5000);
        EXPECT_EQ(got.data, "hello over the cable") << std::strerror(got.err) << m.log();
    }
    auto status = m.unmount_and_wait(5s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;

    std::string bad = write_config("bad.conf", "network a\nmtu 0\n");
    AdoptedMount n;
    sh = run_argv({IPNFS_BINARY, "none", n.dir(), "-o", "config=" + bad}, 10);
    EXPECT_EQ(sh.exit_code(), 2);
    EXPECT_NE(sh.err.find(bad + ":2: mtu 0: "), std::string::npos) << sh.err;
    EXPECT_FALSE(n.mounted());
}

}  // namespace
}  // namespace ipnfs_it
