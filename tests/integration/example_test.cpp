// tools/examples/ipnfs_watch.py, the Python client of include/ipnfs.h, run
// against a real mount.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <regex>
#include <string>

#include "mount_fixture.hpp"

#ifndef IPNFS_SOURCE_DIR
#error "IPNFS_SOURCE_DIR must name the source tree"
#endif

namespace ipnfs_it {
namespace {

using ExampleTest = IpnfsTest;

const std::string kWatch = IPNFS_SOURCE_DIR "/tools/examples/ipnfs_watch.py";

TEST_F(ExampleTest, IpnfsWatchPrintsJoinsCountsAndData) {
    if (run_argv({"python3", "--version"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("python3 is not available");
    }
    struct stat st {};
    ASSERT_EQ(stat(kWatch.c_str(), &st), 0) << kWatch;
    std::string net = make_net("lan");
    Fd peer = open_fd(net + "/port5", O_RDWR);

    // The watcher takes port 0 (clone), sends one message, then prints the
    // snapshot (join 5, counts) and the message port 5 sends back.
    auto watch = std::async(std::launch::async, [&] {
        return run_argv({"python3", kWatch, net, "--send", "hi from python", "--count", "3"}, 15);
    });
    Io hi = read_one(peer.get(), 10000);
    EXPECT_EQ(hi.data, "hi from python") << "the watcher's --send did not arrive";
    ASSERT_EQ(write_msg(peer.get(), "hello\nworld").n, 11);
    Shell sh = watch.get();
    EXPECT_FALSE(sh.timed_out) << "the watcher did not exit after --count 3; output:\n" << sh.out;
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_NE(sh.err.find("clone: port 0"), std::string::npos) << sh.err;

    auto lines = lines_of(sh.out);
    ASSERT_EQ(lines.size(), 3u) << sh.out;
    std::smatch m;
    const std::regex join(R"(seq=(\d+) kind=join port=5)");
    const std::regex counts(R"(seq=(\d+) kind=counts port=\d+ receivers=2 senders=2)");
    const std::regex data(R"(seq=(\d+) kind=data port=5 len=11 data=hello\\nworld)");
    EXPECT_TRUE(std::regex_match(lines[0], m, join)) << lines[0];
    EXPECT_TRUE(std::regex_match(lines[1], m, counts)) << lines[1];
    EXPECT_TRUE(std::regex_match(lines[2], m, data)) << lines[2];
    // seq increases along the lines.
    std::uint64_t last = 0;
    for (const auto& line : lines) {
        ASSERT_TRUE(std::regex_search(line, m, std::regex(R"(^seq=(\d+) )"))) << line;
        std::uint64_t seq = std::stoull(m[1]);
        EXPECT_GT(seq, last) << line;
        last = seq;
    }
}

TEST_F(ExampleTest, IpnfsWatchShowsOtherPortsComingAndGoing) {
    if (run_argv({"python3", "--version"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("python3 is not available");
    }
    std::string net = make_net("lan");
    auto watch = std::async(std::launch::async, [&] {
        return run_argv({"python3", kWatch, net, "--port", "2", "--count", "5"}, 15);
    });
    // Ready once its ioctl turned events on for port 2 (marked as its holder's).
    bool ready =
        eventually([&] { return ctl_text(net).find("\nevents 2 on ") != std::string::npos; }, 10s);
    ASSERT_TRUE(ready) << "the watcher never turned events on";
    {
        Fd w = open_fd(net + "/port7", O_WRONLY);
        ASSERT_EQ(write_msg(w.get(), "bye").n, 3);
    }
    Shell sh = watch.get();
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    auto lines = lines_of(sh.out);
    ASSERT_EQ(lines.size(), 5u) << sh.out;
    EXPECT_TRUE(std::regex_match(
        lines[0], std::regex(R"(seq=\d+ kind=counts port=\d+ receivers=1 senders=0)")))
        << lines[0];
    EXPECT_TRUE(std::regex_match(lines[1], std::regex(R"(seq=\d+ kind=join port=7)"))) << lines[1];
    EXPECT_TRUE(std::regex_match(
        lines[2], std::regex(R"(seq=\d+ kind=counts port=\d+ receivers=1 senders=1)")))
        << lines[2];
    EXPECT_TRUE(
        std::regex_match(lines[3], std::regex(R"(seq=\d+ kind=data port=7 len=3 data=bye)")))
        << lines[3];
    EXPECT_TRUE(std::regex_match(lines[4], std::regex(R"(seq=\d+ kind=leave port=7)"))) << lines[4];
}

TEST_F(ExampleTest, IpnfsWatchWithCredsPrintsWhoOpenedAndWhoWrote) {
    if (run_argv({"python3", "--version"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("python3 is not available");
    }
    std::string net = make_net("lan");
    auto watch = std::async(std::launch::async, [&] {
        return run_argv({"python3", kWatch, net, "--port", "2", "--creds", "--count", "5"}, 15);
    });
    bool ready =
        eventually([&] { return ctl_text(net).find("\nevents 2 on ") != std::string::npos; }, 10s);
    ASSERT_TRUE(ready) << "the watcher never turned events on";
    // Its --creds ioctl may come after the writer's messages: credentials
    // travel with every message and show on the reads that follow it.
    const std::string port7 = net + "/port7";
    pid_t writer = fork_child([&] {
        int fd = open(port7.c_str(), O_WRONLY);
        return fd >= 0 && write(fd, "bye", 3) == 3 ? 0 : 1;
    });
    ASSERT_EQ(exit_code_of(wait_child(writer, 10s)), 0);
    Shell sh = watch.get();
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    auto lines = lines_of(sh.out);
    ASSERT_EQ(lines.size(), 5u) << sh.out;
    const std::string who = " uid=0 gid=0 pid=" + std::to_string(writer);
    EXPECT_TRUE(std::regex_match(lines[1], std::regex(R"(seq=\d+ kind=join port=7)" + who)))
        << lines[1];
    EXPECT_TRUE(
        std::regex_match(lines[3], std::regex(R"(seq=\d+ kind=data port=7 len=3 data=bye)" + who)))
        << lines[3];
    EXPECT_TRUE(std::regex_match(lines[4], std::regex(R"(seq=\d+ kind=leave port=7)")))
        << lines[4] << ": a leave says nothing of who";
}

}  // namespace
}  // namespace ipnfs_it
