// The switch's ctl verbs, what describe() writes back, and its stats lines.
#include <gtest/gtest.h>

#include <chrono>

#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using namespace std::chrono_literals;

TEST_F(SwitchTest, ADefaultSwitchDescribesNothing) {
    make(32, {});
    EXPECT_EQ(described(), "");
}

TEST_F(SwitchTest, DescribeListsOnlyNonDefaultSettings) {
    make(8, {});
    run_ok(
        "vlan 3 10\nvlan 4 none\ntrunk 4 20,10\nmirror 5 on\nexpire 60\nmaclimit 100\n"
        "vlan 6 7\nvlan 6 1\ntrunk 7 5\ntrunk 7 none\nmirror 2 on\nmirror 2 off");
    EXPECT_EQ(described(),
              "vlan 3 10\nvlan 4 none\ntrunk 4 10,20\nmirror 5 on\nexpire 60\nmaclimit 100\n");
}

TEST_F(SwitchTest, DescribeAppendsWithoutTouchingWhatIsThere) {
    make(4, {});
    run_ok("mirror 0 on");
    std::string out = "before\n";
    sw_.describe(out);
    EXPECT_EQ(out, "before\nmirror 0 on\n");
}

TEST_F(SwitchTest, DescribedLinesRebuildTheSameSettings) {
    make(64, {});
    run_ok(
        "vlan 0 none\ntrunk 0 1,2,3,4094\nvlan 9 4094\nmirror 9 on\ntrunk 17 300,200,100,200\n"
        "vlan 63 none\nexpire 1000000\nmaclimit 1048576");
    std::string text = described();
    policies::Switch copy;
    copy.on_ports(64);
    std::array<const bus::CommandTable*, 1> tables{&copy.commands()};
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        std::string_view line = std::string_view(text).substr(start, end - start);
        ASSERT_TRUE(IsOk(bus::dispatch(tables, line, bus::Caller{}))) << line;
        start = end + 1;
    }
    std::string again;
    copy.describe(again);
    EXPECT_EQ(again, text);
    EXPECT_NE(text.find("trunk 17 100,200,300\n"), std::string::npos) << text;
}

TEST_F(SwitchTest, WritingTheDefaultsBackIsAccepted) {
    make(4, {0});
    run_ok("vlan 0 1\ntrunk 0 none\nmirror 0 off\nexpire 300\nmaclimit 4096\nflush");
    EXPECT_EQ(described(), "");
}

TEST_F(SwitchTest, PortArgumentsMustNameAPortOfTheNetwork) {
    make(8, {});
    for (const auto* line : {"vlan 8 10", "trunk 8 10", "mirror 8 on", "vlan -1 10", "vlan x 10",
                             "mirror 1.0 on", "trunk 99999999999999999999 5"}) {
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_NE(s.reason.find("port"), std::string::npos) << line << ": " << s.reason;
    }
    EXPECT_EQ(run("mirror 8 on").reason, "port must be a whole number from 0 to 7, not '8'");
    EXPECT_EQ(described(), "") << "a rejected command changed a setting";
}

TEST_F(SwitchTest, VlanTakesAnIdFrom1To4094OrNone) {
    make(4, {});
    for (const auto* bad : {"0", "4095", "-1", "ten", "10,20", "NONE", "", "1x"}) {
        std::string line = std::string("vlan 1 ") + bad;
        if (*bad == '\0') continue;  // an empty word is no word: a usage error
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_NE(s.reason.find(std::string("'") + bad + "'"), std::string::npos)
            << line << ": " << s.reason;
    }
    EXPECT_EQ(run("vlan 1 4095").reason,
              "vlan must be a VLAN id from 1 to 4094 or 'none', not '4095'");
    EXPECT_TRUE(IsOk(run("vlan 1 4094")));
    EXPECT_TRUE(IsOk(run("vlan 2 none")));
    EXPECT_EQ(described(), "vlan 1 4094\nvlan 2 none\n");
}

TEST_F(SwitchTest, TrunkTakesCommaSeparatedIdsOrNone) {
    make(4, {});
    for (const auto* bad :
         {"0", "4095", "10,", ",10", "10,,20", "10;20", "10 ,20", "none,10", "10,x", "-5"}) {
        std::string line = std::string("trunk 1 ") + bad;
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_NE(s.reason.find("trunk"), std::string::npos) << line << ": " << s.reason;
    }
    EXPECT_EQ(run("trunk 1 10,x,20").reason,
              "trunk must be VLAN ids from 1 to 4094 separated by commas, or 'none', not 'x'");
    EXPECT_EQ(run("trunk 1 10,,20").reason,
              "trunk must be VLAN ids from 1 to 4094 separated by commas, or 'none', "
              "not '10,,20'");
    EXPECT_EQ(described(), "") << "a rejected list changed the trunk";
    EXPECT_TRUE(IsOk(run("trunk 1 4094,1,1")));
    EXPECT_EQ(described(), "trunk 1 1,4094\n");
}

TEST_F(SwitchTest, MirrorTakesOnOrOff) {
    make(4, {});
    for (const auto* line : {"mirror 1 yes", "mirror 1 ON", "mirror 1 1"}) {
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_NE(s.reason.find("mirror must be 'on' or 'off'"), std::string::npos) << s.reason;
    }
}

TEST_F(SwitchTest, ExpireAndMaclimitTakeNumbersInTheirRanges) {
    make(4, {});
    for (const auto* line : {"expire 0", "expire 1000001", "expire 1s", "expire -1", "maclimit 0",
                             "maclimit 1048577", "maclimit lots"}) {
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
    }
    EXPECT_EQ(run("expire 0").reason, "expire must be a whole number from 1 to 1000000, not '0'");
    EXPECT_EQ(run("maclimit 0").reason,
              "maclimit must be a whole number from 1 to 1048576, not '0'");
    EXPECT_TRUE(IsOk(run("expire 1")));
    EXPECT_TRUE(IsOk(run("maclimit 1")));
    EXPECT_EQ(described(), "expire 1\nmaclimit 1\n");
}

TEST_F(SwitchTest, EveryVerbChecksItsArgumentCount) {
    make(4, {});
    for (const auto* line : {"vlan 1", "vlan 1 2 3", "trunk", "mirror 1", "expire", "expire 1 2",
                             "maclimit", "flush now"}) {
        bus::Status s = run(line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_EQ(s.reason.rfind("usage: ", 0), 0u) << line << ": " << s.reason;
    }
}

TEST_F(SwitchTest, HelpNamesEveryVerb) {
    std::string help;
    bus::append_help(sw_.commands(), help);
    for (const auto* form : {"vlan PORT VID|none", "trunk PORT VID[,VID...]|none",
                             "mirror PORT on|off", "expire SECONDS", "maclimit ENTRIES", "flush"}) {
        EXPECT_NE(help.find(form), std::string::npos) << form << " missing from:\n" << help;
    }
}

TEST_F(SwitchTest, StatsShowCountersEntriesAndPortCounters) {
    make(8, {0, 1, 2, 3});
    run_ok("vlan 2 10\nexpire 100\nmaclimit 50");
    send(3, frame(kBroadcast, station(0x10)));
    clock_.advance(7s);
    send(1, frame(kBroadcast, 0x02ab'cdef'0001));
    send(2, frame(kBroadcast, station(0x30)));
    send(0, frame(kBroadcast, station(0x20)));
    clock_.advance(2500ms);
    send(1, Bytes(3));
    send(1, Bytes(13));
    send(3, tagged_frame(kBroadcast, station(1), 5));
    EXPECT_EQ(stats(),
              "switch mac_entries 4 maclimit 50 expire 100 malformed 2 vlan_drops 1 table_full 0\n"
              "mac 02:00:00:00:00:20 vlan 1 port 0 age 2\n"
              "mac 02:ab:cd:ef:00:01 vlan 1 port 1 age 2\n"
              "mac 02:00:00:00:00:10 vlan 1 port 3 age 9\n"
              "mac 02:00:00:00:00:30 vlan 10 port 2 age 2\n"
              "swport 1 malformed 2 vlan_drops 0\n"
              "swport 3 malformed 0 vlan_drops 1\n");
}

TEST_F(SwitchTest, StatsSortEntriesOfOnePortByAddress) {
    make(4, {0, 1});
    for (Mac m : {station(9), station(3), station(0x100), station(1)})
        send(1, frame(kBroadcast, m));
    std::string s = stats();
    EXPECT_LT(s.find(":00:01 "), s.find(":00:03 ")) << s;
    EXPECT_LT(s.find(":00:03 "), s.find(":00:09 ")) << s;
    EXPECT_LT(s.find(":00:09 "), s.find(":01:00 ")) << s;
}

TEST_F(SwitchTest, StatsAppendWithoutTouchingWhatIsThere) {
    make(4, {});
    std::string out = "before\n";
    sw_.stats(out);
    EXPECT_EQ(out,
              "before\nswitch mac_entries 0 maclimit 4096 expire 300 malformed 0 vlan_drops 0 "
              "table_full 0\n");
}

}  // namespace
}  // namespace ipnfs::test
