// The daemon's log: every line starts with logfmt fields (network, port,
// uid, event), so journalctl -g and grep can pick out one network, user or
// event.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

using LogTest = IpnfsTest;

// The messages of the daemon's log lines ("[time] [ipnfs] [level] MESSAGE").
std::vector<std::string> messages(const std::string& log) {
    static const std::regex line(R"(^\[[^\]]*\] \[ipnfs\] \[[a-z]+\] (.*)$)");
    std::vector<std::string> out;
    std::istringstream in(log);
    for (std::string l; std::getline(in, l);) {
        std::smatch m;
        if (std::regex_match(l, m, line)) out.push_back(m[1]);
    }
    return out;
}

bool has_line_starting(const std::vector<std::string>& lines, const std::string& prefix) {
    return std::ranges::any_of(lines, [&](const std::string& l) { return l.starts_with(prefix); });
}

TEST_F(LogTest, EveryLineStartsWithNetworkPortAndEventFields) {
    std::string net = make_net("lan");
    {
        Fd port = open_fd(net + "/port3", O_RDWR);
        EXPECT_EQ(ctl(net, "nosuchverb"), EINVAL);
    }
    make_net("with\"quote");
    ASSERT_EQ(rmdir(p("with\"quote").c_str()), 0);
    ASSERT_EQ(rmdir(net.c_str()), 0);

    std::vector<std::string> lines;
    ASSERT_TRUE(eventually(
        [&] {
            lines = messages(mount_.log());
            return has_line_starting(lines, "network=lan uid=0 event=network-remove: ");
        },
        std::chrono::seconds(3)))
        << mount_.log();
    EXPECT_TRUE(has_line_starting(lines, "event=mount: mounted none on ")) << mount_.log();
    EXPECT_TRUE(has_line_starting(lines, "network=lan uid=0 event=network-create: created"));
    EXPECT_TRUE(has_line_starting(lines, "network=lan port=3 uid=0 event=port-open: "));
    EXPECT_TRUE(
        has_line_starting(lines, "network=lan uid=0 event=ctl-error: nosuchverb: unknown command"))
        << mount_.log();
    EXPECT_TRUE(has_line_starting(lines, "network=lan port=3 uid=0 event=port-close: "));
    EXPECT_TRUE(has_line_starting(lines, "network=\"with\\\"quote\" uid=0 event=network-create: "));
    static const std::regex fields(
        R"(^(network=("([^"\\]|\\.)*"|\S+) )?(port=[0-9]+ )?(uid=[0-9]+ )?)"
        R"(event=[a-z]+(-[a-z]+)*: .*)");
    for (const std::string& l : lines) EXPECT_TRUE(std::regex_match(l, fields)) << l;
}

class LogUserTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }
};

// What another user did carries their uid as a field, so an operator picks
// out one user's lines (grep 'uid=1001 ', journalctl IPNFS_UID=1001).
TEST_F(LogUserTest, WhatAUserDidCarriesTheirUid) {
    TestUser user;
    ASSERT_TRUE(user.ok()) << user.error();
    ASSERT_EQ(chmod(p("").c_str(), 0777), 0);  // anyone may make networks
    const std::string net = p("theirs");
    int rc = as_user(user.uid(), user.gid(), [&] {
        if (::mkdir(net.c_str(), 0755) != 0) return 1;
        int fd = ::open((net + "/ctl").c_str(), O_WRONLY);
        if (fd < 0) return 2;
        bool refused = ::write(fd, "nosuchverb", 10) < 0 && errno == EINVAL;
        ::close(fd);
        if (!refused) return 3;
        if (::mkdir(p("a b").c_str(), 0755) == 0 || errno != EINVAL) return 4;  // a blank
        return ::rmdir(net.c_str()) == 0 ? 0 : 5;
    });
    ASSERT_EQ(rc, 0);
    const std::string uid = "uid=" + std::to_string(user.uid()) + " ";
    std::vector<std::string> lines;
    ASSERT_TRUE(eventually(
        [&] {
            lines = messages(mount_.log());
            return has_line_starting(lines, "network=theirs " + uid + "event=network-remove: ");
        },
        std::chrono::seconds(3)))
        << mount_.log();
    EXPECT_TRUE(
        has_line_starting(lines, "network=theirs " + uid + "event=network-create: created"));
    EXPECT_TRUE(has_line_starting(
        lines, "network=theirs " + uid + "event=ctl-error: nosuchverb: unknown command"));
    EXPECT_TRUE(has_line_starting(
        lines, "network=\"a b\" " + uid + "event=network-create-error: a network name has no "))
        << mount_.log();
}

}  // namespace
}  // namespace ipnfs_it
