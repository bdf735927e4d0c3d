// Lines a client can cause at will are limited per second (bus/log.hpp's
// Limiter), and what was held back is counted, never lost.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bus/log.hpp"

namespace {

using ipnfs::bus::log::Limiter;
using namespace std::chrono_literals;

std::uint64_t reported(const std::vector<Limiter::Report>& reports, const std::string& network,
                       const std::string& event) {
    std::uint64_t n = 0;
    for (const auto& r : reports) {
        if (r.network == network && r.event == event) n += r.suppressed;
    }
    return n;
}

TEST(LogLimitTest, PerKeyBurstThenCountedUntilTheNextWindow) {
    Limiter limiter;
    Limiter::Clock::time_point t0{};
    std::vector<Limiter::Report> reports;
    unsigned admitted = 0;
    for (int i = 0; i < 1000; ++i)
        admitted += limiter.admit({"lan", "ctl-error"}, t0, reports) ? 1 : 0;
    EXPECT_EQ(admitted, Limiter::kPerKey);
    EXPECT_TRUE(reports.empty());
    // The next window's first line carries the count.
    ASSERT_TRUE(limiter.admit({"lan", "ctl-error"}, t0 + Limiter::kWindow, reports));
    EXPECT_EQ(reported(reports, "lan", "ctl-error"), 1000U - Limiter::kPerKey);
    reports.clear();
    ASSERT_TRUE(limiter.admit({"lan", "ctl-error"}, t0 + Limiter::kWindow, reports));
    EXPECT_TRUE(reports.empty()) << "a count is reported once";
}

TEST(LogLimitTest, NetworksAndEventsHaveTheirOwnBurstsWithinTheEventBudget) {
    Limiter limiter;
    Limiter::Clock::time_point t0{};
    std::vector<Limiter::Report> reports;
    for (unsigned i = 0; i < Limiter::kPerKey; ++i) {
        ASSERT_TRUE(limiter.admit({"a", "ctl-error"}, t0, reports));
    }
    EXPECT_FALSE(limiter.admit({"a", "ctl-error"}, t0, reports));
    EXPECT_TRUE(limiter.admit({"b", "ctl-error"}, t0, reports)) << "another network";
    EXPECT_TRUE(limiter.admit({"a", "port-ctl-error"}, t0, reports)) << "another event";
    // Many networks share the event's budget.
    unsigned admitted = 0;
    for (int net = 0; net < 100; ++net) {
        for (unsigned i = 0; i < Limiter::kPerKey; ++i) {
            admitted += limiter.admit({"n" + std::to_string(net), "mkdir"}, t0, reports) ? 1 : 0;
        }
    }
    EXPECT_EQ(admitted, Limiter::kPerEvent);
}

TEST(LogLimitTest, KeysAreBoundedAndSweptKeysReportTheirCounts) {
    Limiter limiter;
    Limiter::Clock::time_point t0{};
    std::vector<Limiter::Report> reports;
    // One suppressed line on network "held".
    for (unsigned i = 0; i <= Limiter::kPerKey; ++i)
        limiter.admit({"held", "ctl-error"}, t0, reports);
    // A flood of new names a second later: old keys are swept (and report).
    auto t1 = t0 + Limiter::kWindow;
    for (std::size_t i = 0; i < 10 * Limiter::kMaxKeys; ++i) {
        limiter.admit({"x" + std::to_string(i), "network-create"}, t1, reports);
    }
    EXPECT_EQ(reported(reports, "held", "ctl-error"), 1U);
    // Past the key limit, new names share the event's network-less key.
    std::uint64_t total = 0;
    auto t2 = t1 + Limiter::kWindow;
    limiter.admit({"y", "network-create"}, t2, reports);
    for (const auto& r : reports) {
        if (r.event == "network-create") total += r.suppressed;
    }
    EXPECT_EQ(total, 10 * Limiter::kMaxKeys - Limiter::kPerEvent);
}

}  // namespace
