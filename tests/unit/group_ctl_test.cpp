// The group's ctl verbs, the settings it describes and its stats section.
#include <gtest/gtest.h>

#include <string>

#include "group_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::PortId;

TEST_F(GroupTest, EveryVerbIsAPortsOwnSettingForTheDescriptorItConcerns) {
    for (const bus::Command& cmd : group_.commands()) {
        // dest is where the port's sends go; the others, what it receives.
        EXPECT_EQ(cmd.holder, cmd.verb == "dest" ? bus::Holder::writer : bus::Holder::reader)
            << cmd.verb;
        EXPECT_FALSE(cmd.net_admin) << cmd.verb;
    }
    std::string help;
    bus::append_help(group_.commands(), help);
    for (const auto* form : {"member PORT INSTANCE|none", "loopback PORT on|off",
                             "dest PORT broadcast|port [N:]P|anycast I|multicast L[-U]"}) {
        EXPECT_NE(help.find(form), std::string::npos) << help;
    }
}

TEST_F(GroupTest, DestTakesEachForm) {
    make(8, {});
    run_ok(
        "dest 0 broadcast\ndest 1 port 7\ndest 2 port 65535\ndest 3 anycast 4294967295\n"
        "dest 4 multicast 5\ndest 5 multicast 5-9\ndest 6 multicast 0-4294967295\n"
        "dest 7 multicast 3-3\ndest 0 port 16777215:3");
    EXPECT_EQ(
        described(),
        "dest 0 port 16777215:3\ndest 1 port 7\ndest 2 port 65535\ndest 3 anycast 4294967295\n"
        "dest 4 multicast 5\ndest 5 multicast 5-9\ndest 6 multicast 0-4294967295\n"
        "dest 7 multicast 3\n");
}

TEST_F(GroupTest, DestRejectsMalformedForms) {
    make(8, {});
    for (const auto* line : {"dest 1 unicast 3",
                             "dest 1 port",
                             "dest 1 anycast",
                             "dest 1 multicast",
                             "dest 1 broadcast 3",
                             "dest 1 BROADCAST",
                             "dest 1 port 65536",
                             "dest 1 port -1",
                             "dest 1 anycast 4294967296",
                             "dest 1 anycast x",
                             "dest 1 multicast 9-5",
                             "dest 1 multicast 5-",
                             "dest 1 multicast -5",
                             "dest 1 multicast 1-2-3",
                             "dest 1 multicast 1,2",
                             "dest 8 broadcast",
                             "dest x broadcast",
                             "dest 1",
                             "dest 1 port 2 3",
                             "dest 1 port 16777216:2",
                             "dest 1 port 1:",
                             "dest 1 port :1"}) {
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
    }
    EXPECT_EQ(run("dest 1 unicast 3").reason,
              "dest must be 'broadcast', 'port [N:]P', 'anycast I' or 'multicast L[-U]', not "
              "'unicast 3'");
    EXPECT_EQ(run("dest 1 multicast 9-5").reason,
              "multicast must be an instance or a range LOWER-UPPER of instances from 0 to "
              "4294967295, lowest first, not '9-5'");
    EXPECT_EQ(described(), "") << "a rejected command changed a setting";
}

TEST_F(GroupTest, MemberAndLoopbackRejectBadValues) {
    make(8, {});
    for (const auto* line :
         {"member 8 1", "member 1 -1", "member 1 4294967296", "member 1 x", "member 1 None",
          "member 1", "member 1 2 3", "loopback 1 yes", "loopback 9 on", "loopback 1"}) {
        EXPECT_TRUE(FailsWith(run(line), std::errc::invalid_argument)) << line;
    }
    EXPECT_EQ(run("member 1 x").reason,
              "instance must be a whole number from 0 to 4294967295 or 'none', not 'x'");
    EXPECT_EQ(run("member 8 1").reason, "port must be a whole number from 0 to 7, not '8'");
    EXPECT_EQ(described(), "") << "a rejected command changed a setting";
}

TEST_F(GroupTest, CommandsOnANetworkWithoutPortsSaySo) {
    bus::Status s = run("member 0 1");
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_EQ(s.reason, "no port '0': the network has no ports");
}

TEST_F(GroupTest, DescribeListsNonDefaultSettingsInPortOrder) {
    make(16, {3});
    EXPECT_EQ(described(), "");
    run_ok(
        "loopback 9 on\nmember 9 0\nmember 3 7\ndest 3 anycast 7\nloopback 5 on\n"
        "loopback 5 off\nmember 4 2\nmember 4 none\ndest 6 port 1\ndest 6 broadcast");
    EXPECT_EQ(described(), "member 3 7\ndest 3 anycast 7\nmember 9 0\nloopback 9 on\n");
    std::string out = "before\n";
    group_.describe(out);
    EXPECT_EQ(out, "before\n" + described()) << "describe must append";
}

TEST_F(GroupTest, DescribedLinesRebuildTheSameSettings) {
    make(64, {1, 2});
    run_ok(
        "member 1 7\nmember 2 7\nmember 63 4294967295\ndest 1 multicast 3-9\n"
        "dest 2 port 40\ndest 5 anycast 0\ndest 6 multicast 8\nloopback 0 on\nloopback 63 on");
    std::string text = described();
    policies::Group copy;
    copy.on_ports(64);
    std::array<const bus::CommandTable*, 1> tables{&copy.commands()};
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        std::string_view line = std::string_view(text).substr(start, end - start);
        EXPECT_TRUE(IsOk(bus::dispatch(tables, line, bus::Caller{}))) << line;
        start = end + 1;
    }
    std::string again;
    copy.describe(again);
    EXPECT_EQ(again, text);
}

TEST_F(GroupTest, StatsCountEachMessageOnceByTheModeItWasSentIn) {
    make(8, {0, 1, 2});
    run_ok("member 1 7\ndest 0 anycast 7\ndest 2 port 6");
    EXPECT_EQ(stats().substr(0, stats().find('\n')),
              "group unicast 0 anycast 0 multicast 0 broadcast 0 unreachable 0");
    send(0, unicast(1), false);  // tried, not accepted (it waits): not counted
    send(0, unicast(1), false);
    send(0, unicast(1));
    send(0, anycast(7));
    send(0, kStandardTo);  // anycast, by dest
    send(1, kStandardTo);  // broadcast, by default
    send(0, kBroadcastTo);
    send(0, multicast(3, 5));  // nobody: still a multicast
    send(0, multicast(7, 7), false);
    send(0, unicast(5));
    send(2, kStandardTo);  // port 6 does not receive
    send(0, anycast(9));
    send(0, anycast(9), false);
    EXPECT_EQ(counter("unicast"), 1u);
    EXPECT_EQ(counter("anycast"), 2u);
    EXPECT_EQ(counter("multicast"), 1u);
    EXPECT_EQ(counter("broadcast"), 2u);
    EXPECT_EQ(counter("unreachable"), 3u);
}

TEST_F(GroupTest, StatsListPortsWithSettingsOneWordPerValue) {
    make(8, {1});
    run_ok(
        "member 1 7\ndest 1 multicast 2-4\nloopback 5 on\ndest 6 port 2\nmember 3 0\n"
        "member 3 none");
    std::string s = stats();
    EXPECT_EQ(s.substr(s.find('\n') + 1),
              "member 1 instance 7 dest multicast:2-4 loopback off\n"
              "member 5 instance none dest broadcast loopback on\n"
              "member 6 instance none dest port:2 loopback off\n");
}

}  // namespace
}  // namespace ipnfs::test
