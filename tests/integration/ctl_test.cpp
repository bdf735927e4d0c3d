// The ctl file: settings shown as commands, commands written, errors reported.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using CtlTest = IpnfsTest;

// The lines before the first comment.
std::vector<std::string> settings_of(const std::string& ctl_text) {
    std::vector<std::string> out;
    for (const auto& line : lines_of(ctl_text)) {
        if (line.rfind('#', 0) == 0) break;
        out.push_back(line);
    }
    return out;
}

// The settings lines of a fresh network (mount defaults), then `extra`.
std::vector<std::string> defaults_and(std::vector<std::string> extra = {}) {
    std::vector<std::string> out{"policy hub",   "ports 32",  "mtu 1514",     "queue 64",
                                 "lossless off", "pool 1024", "holdtime 5000"};
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
}

TEST_F(CtlTest, ShowsTheSettingsAsCommandsThenCommentLines) {
    std::string net = make_net("lan");
    std::string text = ctl_text(net);
    EXPECT_EQ(settings_of(text), defaults_and());
    auto lines = lines_of(text);
    ASSERT_GT(lines.size(), 6u);
    bool in_comments = false;
    for (const auto& line : lines) {
        if (line.rfind('#', 0) == 0) in_comments = true;
        if (in_comments) {
            EXPECT_EQ(line.rfind('#', 0), 0u) << "not a comment: " << line;
        }
    }
    EXPECT_TRUE(in_comments) << "no help comments";
    EXPECT_EQ(last_error_line(text), "");
    for (const char* verb : {"policy", "mtu", "queue", "ports", "lossless", "pool", "dropwhenfull",
                             "events", "loopback"}) {
        EXPECT_NE(text.find(std::string("#   ") + verb), std::string::npos)
            << "no help for " << verb;
    }
}

TEST_F(CtlTest, ReadingInSmallPiecesGivesTheSameText) {
    std::string net = make_net("lan");
    std::string whole = ctl_text(net);
    Fd fd = open_fd(net + "/ctl", O_RDONLY);
    std::string pieces;
    char buf[7];
    ssize_t n = 0;
    while ((n = read(fd.get(), buf, sizeof buf)) > 0) pieces.append(buf, n);
    EXPECT_EQ(n, 0);
    EXPECT_EQ(pieces, whole);
}

TEST_F(CtlTest, WhatCtlShowsCanBeWrittenBack) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net,
                  "mtu 3000\nqueue 16\nports 12\nloopback 5 on\nlossless on\npool 100\n"
                  "events 4 on\ndropwhenfull 2 on\n"),
              0);
    std::string text = ctl_text(net);
    // Settings, then the per-port lines, then the policy's lines.
    EXPECT_EQ(settings_of(text),
              (std::vector<std::string>{"policy hub", "ports 12", "mtu 3000", "queue 16",
                                        "lossless on", "pool 100", "holdtime 5000",
                                        "dropwhenfull 2 on", "events 4 on", "loopback 5 on"}));
    // The same text, comments included, is a valid ctl input.
    EXPECT_EQ(ctl(net, text), 0);
    EXPECT_EQ(ctl_text(net), text);
}

TEST_F(CtlTest, LoopbackLinesAppearAndDisappear) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "loopback 3 on\n"), 0);
    ASSERT_EQ(ctl(net, "loopback 7 on\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)), defaults_and({"loopback 3 on", "loopback 7 on"}));
    ASSERT_EQ(ctl(net, "loopback 3 off\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)), defaults_and({"loopback 7 on"}));
}

TEST_F(CtlTest, PortFlagLinesAppearAndDisappearBeforeThePolicyLines) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "loopback 1 on\ndropwhenfull 3 on\nevents 6 on\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)),
              defaults_and({"dropwhenfull 3 on", "events 6 on", "loopback 1 on"}));
    ASSERT_EQ(ctl(net, "dropwhenfull 3 off\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)), defaults_and({"events 6 on", "loopback 1 on"}));
    ASSERT_EQ(ctl(net, "events 6 off\nloopback 1 off\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)), defaults_and());
}

// docs/usage.md, "ctl": what a port's holder sets (IPNFS_IOC_PORT_CTL) is
// shown marked and goes with the port's last close, so the next opener
// inherits none of it; a manager's line stays, even on a port whose holder
// changed a setting, and is shown unmarked.  The marked text reads back.
TEST_F(CtlTest, AHoldersSettingsShowMarkedAndGoWithItsLastCloseAManagersStay) {
    const std::string net = make_net("grp");
    ASSERT_EQ(ctl(net, "policy group\n"), 0);
    std::vector<std::string> group = defaults_and();
    group[0] = "policy group";
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> out = group;
        out.insert(out.end(), extra.begin(), extra.end());
        return out;
    };
    const std::string mark = "  # set by its holder: reset at its last close";
    {
        Fd holder = open_fd(net + "/port3", O_RDONLY);
        ASSERT_TRUE(holder.ok());
        ASSERT_EQ(port_ctl(holder.get(), "member 7"), 0);
        ASSERT_EQ(port_ctl(holder.get(), "events on"), 0);
        ASSERT_EQ(ctl(net, "dropwhenfull 3 on\n"), 0);
        const std::string text = ctl_text(net);
        EXPECT_EQ(settings_of(text),
                  with({"dropwhenfull 3 on", "events 3 on" + mark, "member 3 7" + mark}))
            << text;
        const std::string copy = make_net("copy");
        EXPECT_EQ(ctl(copy, text), 0) << last_error_line(ctl_text(copy));
        EXPECT_EQ(settings_of(ctl_text(copy)),
                  with({"dropwhenfull 3 on", "events 3 on", "member 3 7"}));
    }
    EXPECT_EQ(settings_of(ctl_text(net)), with({"dropwhenfull 3 on"}));

    Fd next = open_fd(net + "/port3", O_RDONLY);
    Fd sender = open_fd(net + "/port0", O_WRONLY);
    ASSERT_TRUE(next.ok() && sender.ok());
    EXPECT_EQ(drain(next.get()), std::vector<std::string>{}) << "events were inherited";
    ASSERT_EQ(port_ctl(sender.get(), "dest anycast 7"), 0);
    errno = 0;
    EXPECT_EQ(write(sender.get(), "x", 1), -1) << "port 3 is still a member of 7";
    EXPECT_EQ(errno, EHOSTUNREACH);
}

TEST_F(CtlTest, LosslessAndPoolAreShownAndSet) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "lossless on\n"), 0);
    ASSERT_EQ(ctl(net, "pool 7\n"), 0);
    auto settings = settings_of(ctl_text(net));
    ASSERT_GE(settings.size(), 6u);
    EXPECT_EQ(settings[4], "lossless on");
    EXPECT_EQ(settings[5], "pool 7");
    ASSERT_EQ(ctl(net, "lossless off\npool 1048576\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)),
              (std::vector<std::string>{"policy hub", "ports 32", "mtu 1514", "queue 64",
                                        "lossless off", "pool 1048576", "holdtime 5000"}));
    Stats st = stats(net);
    EXPECT_EQ(st.totals["lossless"], "off");
    EXPECT_EQ(st.total("pool"), 1048576u);
}

TEST_F(CtlTest, MtuLimitsTheMessageSize) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port0", O_RDONLY);
    Fd w = open_fd(net + "/port1", O_WRONLY);
    EXPECT_EQ(write_msg(w.get(), std::string(1514, 'a')).n, 1514);
    EXPECT_EQ(read_one(r.get()).n, 1514);
    Io too_big = write_msg(w.get(), std::string(1515, 'a'));
    EXPECT_EQ(too_big.n, -1);
    EXPECT_EQ(too_big.err, EMSGSIZE);

    ASSERT_EQ(ctl(net, "mtu 9000\n"), 0);  // allowed while ports are open
    EXPECT_EQ(write_msg(w.get(), std::string(9000, 'b')).n, 9000);
    Io got = read_one(r.get());
    EXPECT_EQ(got.data, std::string(9000, 'b'));
    EXPECT_EQ(write_msg(w.get(), std::string(9001, 'b')).err, EMSGSIZE);

    ASSERT_EQ(ctl(net, "mtu 65535\n"), 0);
    std::string biggest(65535, 'c');
    biggest[0] = 'S';
    biggest.back() = 'E';
    EXPECT_EQ(write_msg(w.get(), biggest).n, 65535);
    got = read_one(r.get(), 2000, 70000);
    EXPECT_EQ(got.n, 65535);
    EXPECT_TRUE(got.data == biggest) << "the 65535-byte message came back altered";
    EXPECT_EQ(write_msg(w.get(), std::string(65536, 'c')).err, EMSGSIZE);
    EXPECT_EQ(write_msg(w.get(), std::string(100000, 'c')).err, EMSGSIZE);

    EXPECT_EQ(ctl(net, "mtu 65536\n"), EINVAL);
    EXPECT_EQ(ctl(net, "mtu 100\n"), 0);
    EXPECT_EQ(write_msg(w.get(), std::string(101, 'd')).err, EMSGSIZE);
    // Nothing oversized was delivered.
    EXPECT_TRUE(read_one(r.get(), 200).timed_out());
}

TEST_F(CtlTest, BadCommandsFailWithEINVALAndShowTheLastError) {
    std::string net = make_net("lan");
    const std::vector<std::string> bad{"frobnicate 1",
                                       "mtu",
                                       "mtu 0",
                                       "mtu abc",
                                       "mtu 65536",
                                       "mtu 12 13",
                                       "queue 0",
                                       "queue 65537",
                                       "queue -1",
                                       "ports 0",
                                       "ports 65537",
                                       "ports many",
                                       "policy nosuch",
                                       "loopback 32 on",
                                       "loopback 1 maybe",
                                       "loopback x on",
                                       "lossless",
                                       "lossless maybe",
                                       "lossless 1",
                                       "pool 0",
                                       "pool 1048577",
                                       "pool x",
                                       "dropwhenfull 32 on",
                                       "dropwhenfull 1 maybe",
                                       "dropwhenfull 1",
                                       "events 32 on",
                                       "events -1 on",
                                       "events 2 yes",
                                       "events 2 on off"};
    for (const auto& cmd : bad) {
        SCOPED_TRACE(cmd);
        EXPECT_EQ(ctl(net, cmd + "\n"), EINVAL);
        std::string line = last_error_line(ctl_text(net));
        std::string prefix = "# last error: " + cmd + ": ";
        EXPECT_EQ(line.rfind(prefix, 0), 0u) << "got: " << line;
        EXPECT_GT(line.size(), prefix.size()) << "no reason given";
    }
    // Nothing was changed by the failed commands.
    EXPECT_EQ(settings_of(ctl_text(net)), defaults_and());
}

TEST_F(CtlTest, ASuccessfulWriteClearsTheLastError) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "mtu 0\n"), EINVAL);
    ASSERT_NE(last_error_line(ctl_text(net)), "");
    ASSERT_EQ(ctl(net, "mtu 1500\n"), 0);
    std::string text = ctl_text(net);
    EXPECT_EQ(last_error_line(text), "");
    EXPECT_EQ(nth_line(text, 2), "mtu 1500");
}

TEST_F(CtlTest, SeveralCommandsInOneWrite) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "# a comment\n\nmtu 2000\nqueue 16\npool 50\n"), 0);
    EXPECT_EQ(settings_of(ctl_text(net)),
              (std::vector<std::string>{"policy hub", "ports 32", "mtu 2000", "queue 16",
                                        "lossless off", "pool 50", "holdtime 5000"}));
}

TEST_F(CtlTest, QueueAndLosslessCannotChangeWhileAPortIsOpen) {
    std::string net = make_net("lan");
    {
        Fd w = open_fd(net + "/port3", O_WRONLY);  // a writer alone counts as open
        EXPECT_EQ(ctl(net, "queue 8\n"), EBUSY);
        EXPECT_EQ(last_error_line(ctl_text(net)).rfind("# last error: queue 8: ", 0), 0u);
        EXPECT_EQ(ctl(net, "lossless on\n"), EBUSY);
        EXPECT_EQ(last_error_line(ctl_text(net)).rfind("# last error: lossless on: ", 0), 0u);
        EXPECT_EQ(settings_of(ctl_text(net)), defaults_and()) << "a refused change applied";
        // Unknown policies are EINVAL whether or not ports are open.
        EXPECT_EQ(ctl(net, "policy nosuch\n"), EINVAL);
    }
    EXPECT_EQ(ctl(net, "queue 8\n"), 0);
    EXPECT_EQ(ctl(net, "lossless on\n"), 0);
    EXPECT_EQ(nth_line(ctl_text(net), 3), "queue 8");
    EXPECT_EQ(nth_line(ctl_text(net), 4), "lossless on");
}

// Writing a setting with the value it already has changes nothing, so it
// succeeds even while ports are open (a saved ctl can be written back).
TEST_F(CtlTest, WritingTheCurrentValueIsANoOpEvenWhilePortsAreOpen) {
    std::string net = make_net("lan");
    Fd w = open_fd(net + "/port3", O_WRONLY);
    Fd r = open_fd(net + "/port4", O_RDONLY);
    EXPECT_EQ(ctl(net, "policy hub\n"), 0);
    EXPECT_EQ(ctl(net, "queue 64\n"), 0);
    EXPECT_EQ(ctl(net, "lossless off\n"), 0);
    EXPECT_EQ(last_error_line(ctl_text(net)), "");
    // The whole text ctl shows, written back while ports are open.
    std::string text = ctl_text(net);
    EXPECT_EQ(ctl(net, text), 0);
    EXPECT_EQ(ctl_text(net), text);
    // A real change is still refused.
    EXPECT_EQ(ctl(net, "queue 63\n"), EBUSY);
    EXPECT_EQ(ctl(net, "lossless on\n"), EBUSY);
    ASSERT_EQ(write_msg(w.get(), "still works").n, 11);
    EXPECT_EQ(read_one(r.get()).data, "still works");

    // The same on a lossless network: "lossless on" is then the no-op.
    w.reset();
    r.reset();
    // close() returns before the daemon sees the release.
    ASSERT_TRUE(eventually([&] { return stats(net).total("connected") == 0; }, 2s));
    ASSERT_EQ(ctl(net, "lossless on\nqueue 8\n"), 0);
    Fd w2 = open_fd(net + "/port3", O_WRONLY);
    EXPECT_EQ(ctl(net, "lossless on\nqueue 8\npolicy hub\n"), 0);
    EXPECT_EQ(ctl(net, "lossless off\n"), EBUSY);
}

TEST_F(CtlTest, PortsGrowAndShrinkThePortFiles) {
    std::string net = make_net("lan");
    struct stat st {};
    ASSERT_EQ(ctl(net, "ports 40\n"), 0);
    EXPECT_EQ(stat((net + "/port39").c_str(), &st), 0);
    EXPECT_EQ(list_dir(net).size(), 6u + 40u);
    EXPECT_EQ(stats(net).totals["ports"], "40");

    ASSERT_EQ(ctl(net, "ports 8\n"), 0);
    std::vector<std::string> expected{"capture", "clone", "ctl", "events", "metrics", "stats"};
    for (int i = 0; i < 8; ++i) expected.push_back("port" + std::to_string(i));
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(list_dir(net), expected);
    EXPECT_EQ(stat((net + "/port8").c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(try_open(net + "/port8", O_RDONLY), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(nth_line(ctl_text(net), 1), "ports 8");
    EXPECT_EQ(stats(net).totals["ports"], "8");
}

TEST_F(CtlTest, PortsCannotShrinkBelowAnOpenPort) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port5", O_RDONLY);
    EXPECT_EQ(ctl(net, "ports 5\n"), EBUSY);
    EXPECT_EQ(last_error_line(ctl_text(net)).rfind("# last error: ports 5: ", 0), 0u);
    struct stat st {};
    EXPECT_EQ(stat((net + "/port31").c_str(), &st), 0) << "a refused shrink removed ports";
    EXPECT_EQ(ctl(net, "ports 6\n"), 0);
    EXPECT_EQ(list_dir(net).size(), 6u + 6u);
    // The open port still works.
    Fd w = open_fd(net + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "still here").n, 10);
    EXPECT_EQ(read_one(r.get()).data, "still here");
}

}  // namespace
}  // namespace ipnfs_it
