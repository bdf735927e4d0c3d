// What the journal sink gets besides the text: the line's fields, on the
// logging thread (bus::log::current_fields()), and journal field names made
// from their keys (daemon/journal_sink.hpp).
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "bus/log.hpp"
#include "daemon/journal_sink.hpp"

namespace {

using ipnfs::daemon::journal_field_name;

TEST(JournalFieldNameTest, KeysBecomeUppercaseUnderTheIpnfsPrefix) {
    EXPECT_EQ(journal_field_name("network"), "IPNFS_NETWORK");
    EXPECT_EQ(journal_field_name("port"), "IPNFS_PORT");
    EXPECT_EQ(journal_field_name("event"), "IPNFS_EVENT");
}

TEST(JournalFieldNameTest, AnyKeyGivesAValidName) {
    // journald takes A-Z, 0-9 and _, not a leading _, at most 64 bytes.
    for (std::string key : {std::string("a-b=c d\n"), std::string("_x"), std::string("\xc3\xbc"),
                            std::string(200, 'k'), std::string()}) {
        std::string name = journal_field_name(key);
        EXPECT_LE(name.size(), 64U) << key;
        EXPECT_NE(name.front(), '_') << key;
        for (char c : name)
            EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') << name;
    }
    EXPECT_EQ(journal_field_name("a-b=c"), "IPNFS_A_B_C");
}

// Keeps what a sink sees of each line.
struct Seen {
    std::string text;
    std::string network;
    std::optional<ipnfs::bus::PortId> port;
    std::optional<std::uint32_t> uid;
    std::string event;
    bool fields = false;
};

class FieldsSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
  public:
    std::vector<Seen> seen;

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        Seen s;
        s.text.assign(msg.payload.data(), msg.payload.size());
        if (const ipnfs::bus::log::Fields* f = ipnfs::bus::log::current_fields()) {
            s.fields = true;
            s.network = f->network;
            s.port = f->port;
            s.uid = f->uid;
            s.event = f->event;
        }
        seen.push_back(std::move(s));
    }
    void flush_() override {}
};

class CurrentFieldsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        previous_ = spdlog::default_logger();
        sink_ = std::make_shared<FieldsSink>();
        auto logger = std::make_shared<spdlog::logger>("test", sink_);
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);
    }
    void TearDown() override { spdlog::set_default_logger(previous_); }

    std::shared_ptr<FieldsSink> sink_;

  private:
    std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(CurrentFieldsTest, ASinkSeesTheLinesFieldsApartFromItsText) {
    ipnfs::bus::log::info(ipnfs::bus::log::Fields{"a=b \"c\"", 3, "port-open"}.by(1001), "opened");
    ASSERT_EQ(sink_->seen.size(), 1U);
    const Seen& s = sink_->seen[0];
    EXPECT_TRUE(s.fields);
    EXPECT_EQ(s.network, "a=b \"c\"");  // as it is, not quoted
    EXPECT_EQ(s.port, ipnfs::bus::PortId{3});
    EXPECT_EQ(s.uid, 1001U);
    EXPECT_EQ(s.event, "port-open");
    EXPECT_EQ(s.text, "network=\"a=b \\\"c\\\"\" port=3 uid=1001 event=port-open: opened");
    EXPECT_EQ(ipnfs::bus::log::current_fields(), nullptr);  // only while the line is logged
}

TEST_F(CurrentFieldsTest, LinesNotMadeByBusLogHaveNoFields) {
    spdlog::info("plain");
    ASSERT_EQ(sink_->seen.size(), 1U);
    EXPECT_FALSE(sink_->seen[0].fields);
}

TEST_F(CurrentFieldsTest, SuppressionReportsCarryTheFieldsOfTheirKind) {
    ipnfs::bus::log::write_reports(spdlog::level::info, {{"lan", "ctl-error", 42}});
    ASSERT_EQ(sink_->seen.size(), 1U);
    EXPECT_EQ(sink_->seen[0].network, "lan");
    EXPECT_EQ(sink_->seen[0].event, "ctl-error");
    EXPECT_FALSE(sink_->seen[0].port);
}

}  // namespace
