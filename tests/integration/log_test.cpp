// The daemon's log: every line starts with logfmt fields (network, port,
// event), so journalctl -g and grep can pick out one network or event.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <sstream>
#include <string>

#include "mount_fixture.hpp"

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
            return has_line_starting(lines, "network=lan event=network-remove: ");
        },
        std::chrono::seconds(3)))
        << mount_.log();
    EXPECT_TRUE(has_line_starting(lines, "event=mount: mounted none on ")) << mount_.log();
    EXPECT_TRUE(has_line_starting(lines, "network=lan event=network-create: created by uid 0"));
    EXPECT_TRUE(has_line_starting(lines, "network=lan port=3 event=port-open: "));
    EXPECT_TRUE(
        has_line_starting(lines, "network=lan event=ctl-error: nosuchverb: unknown command"))
        << mount_.log();
    EXPECT_TRUE(has_line_starting(lines, "network=lan port=3 event=port-close: "));
    EXPECT_TRUE(has_line_starting(lines, "network=\"with\\\"quote\" event=network-create: "));
    static const std::regex fields(
        R"(^(network=("([^"\\]|\\.)*"|\S+) )?(port=[0-9]+ )?event=[a-z]+(-[a-z]+)*: .*)");
    for (const std::string& l : lines) EXPECT_TRUE(std::regex_match(l, fields)) << l;
}

}  // namespace
}  // namespace ipnfs_it
