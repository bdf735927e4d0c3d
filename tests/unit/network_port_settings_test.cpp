// Who set a port's settings: a holder's (IPNFS_IOC_PORT_CTL,
// IPNFS_IOC_SET_EVENTS) go with the port's last close, a manager's ctl
// lines stay, and ctl says which is which.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using Texts = std::vector<std::string>;

constexpr std::string_view kMark = "  # set by its holder: reset at its last close\n";

class PortSettings : public HubNetworkTest {
  protected:
    void SetUp() override {
        HubNetworkTest::SetUp();
        control_ok("policy group");
    }
    bool shows(std::string_view line) const {
        return net_->describe().find(std::string(line)) != std::string::npos;
    }
    static constexpr bus::PortGrant kReads{.reads = true};
    static constexpr bus::PortGrant kWrites{.writes = true};
};

TEST_F(PortSettings, AHoldersSettingsAreMarkedAndGoWithItsLastClose) {
    Connection held = duplex(3);
    ASSERT_TRUE(IsOk(net_->control_port(3, "member 7", kReads)));
    ASSERT_TRUE(IsOk(net_->set_events(3, true)));
    ASSERT_TRUE(IsOk(net_->control_port(3, "dest anycast 7", kWrites)));
    EXPECT_TRUE(shows("\nevents 3 on" + std::string(kMark))) << net_->describe();
    EXPECT_TRUE(shows("\nmember 3 7" + std::string(kMark))) << net_->describe();
    EXPECT_TRUE(shows("\ndest 3 anycast 7" + std::string(kMark))) << net_->describe();
    net_->disconnect(held);
    for (std::string_view gone : {"events 3", "member 3", "dest 3"})
        EXPECT_FALSE(shows(gone)) << net_->describe();
    Connection next = reader(3);
    EXPECT_EQ(drain(next), Texts{}) << "the next opener inherited events";
}

TEST_F(PortSettings, AManagersLineOnAPortWhoseHolderChangedOneStays) {
    Connection held = duplex(3);
    ASSERT_TRUE(IsOk(net_->control_port(3, "member 7", kReads)));
    control_ok("dropwhenfull 3 on");
    EXPECT_TRUE(shows("\ndropwhenfull 3 on\n")) << net_->describe();
    net_->disconnect(held);
    EXPECT_TRUE(shows("\ndropwhenfull 3 on\n")) << net_->describe();
    EXPECT_FALSE(shows("member 3")) << net_->describe();
}

TEST_F(PortSettings, AManagersLineOnAConnectedPortNoHolderChangedStays) {
    Connection held = duplex(3);
    control_ok("loopback 3 on");
    net_->disconnect(held);
    EXPECT_TRUE(shows("\nloopback 3 on\n")) << net_->describe();
}

TEST_F(PortSettings, AConfigurationAHolderOverridesIsShownAndComesBack) {
    control_ok("member 3 9");
    Connection held = duplex(3);
    ASSERT_TRUE(IsOk(net_->control_port(3, "member 7", kReads)));
    EXPECT_TRUE(shows("\nmember 3 7" + std::string(kMark))) << net_->describe();
    EXPECT_TRUE(shows("\n# member 3 9  (configuration: back at the port's last close)\n"))
        << net_->describe();
    net_->disconnect(held);
    EXPECT_TRUE(shows("\nmember 3 9\n")) << net_->describe();
    EXPECT_FALSE(shows("member 3 7")) << net_->describe();
}

TEST_F(PortSettings, AManagerMayMakeAHoldersSettingLast) {
    Connection held = duplex(3);
    ASSERT_TRUE(IsOk(net_->control_port(3, "member 7", kReads)));
    control_ok("member 3 7");
    EXPECT_TRUE(shows("\nmember 3 7\n")) << net_->describe();
    net_->disconnect(held);
    EXPECT_TRUE(shows("\nmember 3 7\n")) << net_->describe();
}

TEST_F(PortSettings, WhatCtlShowsReadsBackMarksAndAll) {
    Connection held = duplex(3);
    ASSERT_TRUE(IsOk(net_->control_port(3, "member 7", kReads)));
    control_ok("member 4 9");
    std::string text = net_->describe();
    remake({});
    control_ok(text);
    EXPECT_TRUE(shows("\nmember 3 7\nmember 4 9\n")) << net_->describe();
    (void)held;
}

}  // namespace
}  // namespace ipnfs::test
