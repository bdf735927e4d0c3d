// ctl command plumbing: word splitting, dispatch, help, argument parsers.
#include "bus/commands.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::CommandTable;
using bus::Status;
using bus::Words;

using WordList = std::vector<std::string_view>;

TEST(SplitWords, SplitsOnSpacesTabsAndCarriageReturns) {
    EXPECT_EQ(bus::split_words("  mtu\t 1500 \r"), (WordList{"mtu", "1500"}));
    EXPECT_EQ(bus::split_words("loopback 3 on"), (WordList{"loopback", "3", "on"}));
}

// ctl marks a holder's setting with a trailing comment: the line reads back.
TEST(SplitWords, AWordStartingWithAHashStartsAComment) {
    EXPECT_EQ(bus::split_words("member 3 7  # set by its holder"), (WordList{"member", "3", "7"}));
    EXPECT_TRUE(bus::split_words("# help").empty());
}

TEST(SplitWords, BlankLineHasNoWords) {
    EXPECT_TRUE(bus::split_words("").empty());
    EXPECT_TRUE(bus::split_words(" \t \r").empty());
}

// The lines of a ctl write: every '\n' ends one, so a text ending in one
// has a last empty line, and an empty text is one empty line.
WordList lines_of(std::string_view text) {
    WordList lines;
    bus::for_each_line(text, [&](std::string_view line) { lines.push_back(line); });
    return lines;
}

TEST(ForEachLine, EveryNewlineEndsALine) {
    EXPECT_EQ(lines_of("mtu 1500\nqueue 8"), (WordList{"mtu 1500", "queue 8"}));
    EXPECT_EQ(lines_of("mtu 1500\n"), (WordList{"mtu 1500", ""}));
    EXPECT_EQ(lines_of("\n\n"), (WordList{"", "", ""}));
    EXPECT_EQ(lines_of(""), (WordList{""}));
}

TEST(ForEachLine, StopsWhenTheCallbackSaysFalse) {
    WordList seen;
    bus::for_each_line("a\nstop\nb", [&](std::string_view line) {
        seen.push_back(line);
        return line != "stop";
    });
    EXPECT_EQ(seen, (WordList{"a", "stop"}));
}

// A table whose commands record what they were run with.
struct Recorder {
    std::vector<std::string> calls;
    CommandTable table;

    explicit Recorder(std::string_view tag) {
        std::string t(tag);
        table = {
            {"set", "KEY VALUE", 2, "sets a thing",
             [this, t](Words w) {
                 calls.push_back(t + ":set " + std::string(w[0]) + "=" + std::string(w[1]));
                 return Status::success();
             }},
            {"fail", "", 0, "always fails",
             [](Words) { return Status::error(std::errc::permission_denied, "no"); }},
        };
    }
};

Status run(std::span<const CommandTable* const> tables, std::string_view line,
           bus::Caller caller = {}) {
    return bus::dispatch(tables, line, caller);
}

TEST(Dispatch, RunsTheVerbWithTheWordsAfterIt) {
    Recorder r("a");
    std::array<const CommandTable*, 1> tables{&r.table};
    EXPECT_TRUE(IsOk(run(tables, "  set  colour\tblue ")));
    EXPECT_EQ(r.calls, (std::vector<std::string>{"a:set colour=blue"}));
}

TEST(Dispatch, ReturnsTheCommandsOwnStatus) {
    Recorder r("a");
    std::array<const CommandTable*, 1> tables{&r.table};
    Status s = run(tables, "fail");
    EXPECT_EQ(s.code, std::errc::permission_denied);
    EXPECT_EQ(s.reason, "no");
}

TEST(Dispatch, FirstTableWinsWhenTwoShareAVerb) {
    Recorder first("first");
    Recorder second("second");
    std::array<const CommandTable*, 2> tables{&first.table, &second.table};
    EXPECT_TRUE(IsOk(run(tables, "set k v")));
    EXPECT_EQ(first.calls.size(), 1u);
    EXPECT_TRUE(second.calls.empty());
}

TEST(Dispatch, FindsVerbsInLaterTables) {
    Recorder first("first");
    CommandTable other = {{"only", "", 0, "", [](Words) { return Status::success(); }}};
    std::array<const CommandTable*, 2> tables{&first.table, &other};
    EXPECT_TRUE(IsOk(run(tables, "only")));
}

TEST(Dispatch, UnknownVerbIsInvalidArgumentNamingIt) {
    Recorder r("a");
    std::array<const CommandTable*, 1> tables{&r.table};
    Status s = run(tables, "frobnicate 1 2");
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_NE(s.reason.find("unknown command 'frobnicate'"), std::string::npos) << s.reason;
    EXPECT_TRUE(r.calls.empty());
}

TEST(Dispatch, OptionalWordsMayFollowUpToTheirCount) {
    std::vector<std::size_t> seen;
    CommandTable table = {{"tap", "NAME [PORT]", 1, "",
                           [&](Words w) {
                               seen.push_back(w.size());
                               return Status::success();
                           },
                           1}};
    std::array<const CommandTable*, 1> tables{&table};
    EXPECT_TRUE(IsOk(run(tables, "tap t0")));
    EXPECT_TRUE(IsOk(run(tables, "tap t0 3")));
    EXPECT_TRUE(FailsWith(run(tables, "tap"), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(run(tables, "tap t0 3 4"), std::errc::invalid_argument));
    EXPECT_EQ(seen, (std::vector<std::size_t>{1, 2}));
}

TEST(Dispatch, NetAdminCommandsRefuseOtherCallersWithEperm) {
    int runs = 0;
    CommandTable table = {{"grab", "IFACE", 1, "",
                           [&](Words) {
                               ++runs;
                               return Status::success();
                           },
                           0, true}};
    std::array<const CommandTable*, 1> tables{&table};
    Status s = run(tables, "grab eth0", bus::Caller{.net_admin = false});
    EXPECT_TRUE(FailsWith(s, std::errc::operation_not_permitted));
    EXPECT_EQ(s.reason, "grab needs CAP_NET_ADMIN");
    EXPECT_EQ(runs, 0);
    EXPECT_TRUE(IsOk(run(tables, "grab eth0", bus::Caller{.net_admin = true})));
    EXPECT_EQ(runs, 1);
}

TEST(Dispatch, UsageIsCheckedBeforePrivilege) {
    CommandTable table = {
        {"grab", "IFACE", 1, "", [](Words) { return Status::success(); }, 0, true}};
    std::array<const CommandTable*, 1> tables{&table};
    EXPECT_TRUE(FailsWith(run(tables, "grab"), std::errc::invalid_argument));
}

TEST(Dispatch, VerbsAreCaseSensitive) {
    Recorder r("a");
    std::array<const CommandTable*, 1> tables{&r.table};
    EXPECT_TRUE(FailsWith(run(tables, "SET k v"), std::errc::invalid_argument));
}

TEST(Dispatch, WrongArgumentCountIsInvalidArgumentWithUsage) {
    Recorder r("a");
    std::array<const CommandTable*, 1> tables{&r.table};
    for (std::string_view line : {"set", "set k", "set k v extra", "fail now"}) {
        Status s = run(tables, line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << line;
        EXPECT_EQ(s.reason.rfind("usage: ", 0), 0u) << line << " -> " << s.reason;
    }
    EXPECT_EQ(run(tables, "set k").reason, "usage: set KEY VALUE");
    EXPECT_TRUE(r.calls.empty()) << "a command ran with the wrong argument count";
}

TEST(Dispatch, BlankLineSucceedsAndRunsNothing) {
    Recorder r("a");
    std::array<const CommandTable*, 1> tables{&r.table};
    EXPECT_TRUE(IsOk(run(tables, "   \t")));
    EXPECT_TRUE(r.calls.empty());
}

TEST(AppendHelp, WritesOneCommentLinePerVerbWithItsArgumentsAndHelp) {
    Recorder r("a");
    std::string out;
    bus::append_help(r.table, out);
    EXPECT_EQ(out.find("#   set KEY VALUE"), 0u) << out;
    EXPECT_NE(out.find("sets a thing\n"), std::string::npos) << out;
    EXPECT_NE(out.find("#   fail"), std::string::npos) << out;
    EXPECT_NE(out.find("always fails\n"), std::string::npos) << out;
    std::size_t lines = 0;
    for (char c : out) lines += c == '\n' ? 1 : 0;
    EXPECT_EQ(lines, r.table.size());
}

TEST(ParseUint, AcceptsEveryValueInItsInclusiveRange) {
    std::uint64_t v = 0;
    EXPECT_TRUE(IsOk(bus::parse_uint("1", 1, 10, "n", v)));
    EXPECT_EQ(v, 1u);
    EXPECT_TRUE(IsOk(bus::parse_uint("10", 1, 10, "n", v)));
    EXPECT_EQ(v, 10u);
    EXPECT_TRUE(IsOk(bus::parse_uint("007", 1, 10, "n", v)));
    EXPECT_EQ(v, 7u);
    EXPECT_TRUE(IsOk(bus::parse_uint("18446744073709551615", 0, UINT64_MAX, "n", v)));
    EXPECT_EQ(v, UINT64_MAX);
}

TEST(ParseUint, RejectsAnythingButAWholeNumberInRange) {
    for (std::string_view word : {"0", "11", "", "-1", "+1", "1.5", "1e3", "0x5", "5x", " 5",
                                  "five", "99999999999999999999999"}) {
        std::uint64_t v = 1234;
        Status s = bus::parse_uint(word, 1, 10, "queue", v);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << "'" << word << "'";
        EXPECT_EQ(v, 1234u) << "output changed on error for '" << word << "'";
    }
}

TEST(ParseUint, ReasonNamesTheSettingTheRangeAndTheWord) {
    std::uint64_t v = 0;
    Status s = bus::parse_uint("0", 1, 65535, "mtu", v);
    EXPECT_EQ(s.reason, "mtu must be a whole number from 1 to 65535, not '0'");
}

TEST(ParseOnOff, AcceptsOnAndOff) {
    bool b = false;
    EXPECT_TRUE(IsOk(bus::parse_on_off("on", "loopback", b)));
    EXPECT_TRUE(b);
    EXPECT_TRUE(IsOk(bus::parse_on_off("off", "loopback", b)));
    EXPECT_FALSE(b);
}

TEST(ParseOnOff, RejectsOtherWordsNamingThem) {
    for (std::string_view word : {"ON", "Off", "1", "0", "yes", "true", ""}) {
        bool b = true;
        Status s = bus::parse_on_off(word, "loopback", b);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << "'" << word << "'";
        EXPECT_TRUE(b) << "output changed on error for '" << word << "'";
    }
    bool b = false;
    EXPECT_EQ(bus::parse_on_off("yes", "loopback", b).reason,
              "loopback must be 'on' or 'off', not 'yes'");
}

}  // namespace
}  // namespace ipnfs::test
