// Every log line starts with the same logfmt fields (bus/log.hpp).
#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "bus/log.hpp"

namespace {

class LogFieldsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        previous_ = spdlog::default_logger();
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out_);
        auto logger = std::make_shared<spdlog::logger>("test", sink);
        logger->set_pattern("%l %v");
        logger->set_level(spdlog::level::info);
        spdlog::set_default_logger(logger);
    }
    void TearDown() override { spdlog::set_default_logger(previous_); }

    std::string lines() const { return out_.str(); }

  private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LogFieldsTest, NetworkPortAndEventComeFirstInThatOrder) {
    ipnfs::bus::log::info({"lan", 3, "tap-attach"}, "tap {} attached", "tap0");
    EXPECT_EQ(lines(), "info network=lan port=3 event=tap-attach: tap tap0 attached\n");
}

TEST_F(LogFieldsTest, TheUserWhoDidItComesBeforeTheEvent) {
    ipnfs::bus::log::info(ipnfs::bus::log::Fields{"lan", 3, "port-open"}.by(1000), "opened");
    ipnfs::bus::log::info(ipnfs::bus::log::Fields{"uring-park-refused"}.by(0), "refused");
    EXPECT_EQ(lines(),
              "info network=lan port=3 uid=1000 event=port-open: opened\n"
              "info uid=0 event=uring-park-refused: refused\n");
}

TEST_F(LogFieldsTest, FieldsThatDoNotApplyAreLeftOut) {
    ipnfs::bus::log::warn({"mount"}, "mounted");
    ipnfs::bus::log::info({"lan", "network-create"}, "created");
    EXPECT_EQ(lines(),
              "warning event=mount: mounted\n"
              "info network=lan event=network-create: created\n");
}

TEST_F(LogFieldsTest, ValuesWithSpacesQuotesOrControlsAreQuoted) {
    ipnfs::bus::log::info({"my \"net\"=x", "e"}, "t");
    ipnfs::bus::log::info({"a\nb\\c", "e"}, "t");
    EXPECT_EQ(lines(),
              "info network=\"my \\\"net\\\"=x\" event=e: t\n"
              "info network=\"a\\x0ab\\\\c\" event=e: t\n");
}

TEST_F(LogFieldsTest, BelowTheLevelNothingIsFormatted) {
    ipnfs::bus::log::debug({"lan", "port-open"}, "hidden");
    EXPECT_EQ(lines(), "");
}

}  // namespace
