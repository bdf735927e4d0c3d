// ctl: Network::control() runs command lines, describe() shows them back.
#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::PortId;
using Texts = std::vector<std::string>;

// A policy that delivers nothing, so a catalog can offer a second name.
class QuietPolicy final : public bus::Policy {
  public:
    [[nodiscard]] std::string_view name() const override { return "quiet"; }
    void on_ports(PortId /*count*/) override {}
    void on_attach(PortId /*port*/) override {}
    void on_detach(PortId /*port*/) override {}
    void route(PortId /*from*/, std::span<const std::byte> /*payload*/,
               bus::Route& /*out*/) override {}
    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& /*out*/) const override {}

  private:
    bus::CommandTable commands_;
};

// The real catalog plus "quiet".
class TwoPolicyCatalog final : public bus::PolicyCatalog {
  public:
    [[nodiscard]] bus::MadePolicy make(std::string_view name) const override {
        if (name != "quiet") return builtin_.make(name);
        return {bus::Status::success(), std::make_unique<QuietPolicy>()};
    }
    [[nodiscard]] std::string names() const override { return builtin_.names() + ", quiet"; }

  private:
    policies::Catalog builtin_;
};

class NetworkCtl : public HubNetworkTest {
  protected:
    // The settings block at the top of describe(): everything before help.
    [[nodiscard]] std::string settings() const {
        std::string d = net_->describe();
        return d.substr(0, d.find('#'));
    }
    [[nodiscard]] bool described(std::string_view needle) const {
        return net_->describe().find(needle) != std::string::npos;
    }
    bus::Status control(std::string_view text) { return net_->control(text); }
};

TEST_F(NetworkCtl, DescribeStartsWithTheCurrentSettings) {
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 1514\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n");
}

TEST_F(NetworkCtl, DescribeListsPortFlagsAfterTheSettingsAndPolicyLinesLast) {
    ASSERT_TRUE(
        IsOk(control("ports 10\nlossless on\npool 5\nevents 4 on\ndropwhenfull 3 on\n"
                     "dropwhenfull 4 on\nloopback 2 on")));
    EXPECT_EQ(settings(),
              "policy hub\nports 10\nmtu 1514\nqueue 64\nlossless on\npool 5\nholdtime 5000\n"
              "dropwhenfull 3 on\ndropwhenfull 4 on\nevents 4 on\nloopback 2 on\n");
    ASSERT_TRUE(IsOk(control("dropwhenfull 3 off\nevents 4 off")));
    EXPECT_EQ(settings(),
              "policy hub\nports 10\nmtu 1514\nqueue 64\nlossless on\npool 5\nholdtime 5000\n"
              "dropwhenfull 4 on\nloopback 2 on\n");
}

TEST_F(NetworkCtl, DescribeShowsHelpForEveryVerbAndThePolicies) {
    std::string d = net_->describe();
    for (const auto* verb :
         {"#   policy NAME", "#   mtu BYTES", "#   queue MESSAGES", "#   ports COUNT",
          "#   lossless on|off", "#   pool MESSAGES", "#   dropwhenfull PORT on|off",
          "#   events PORT on|off", "#   loopback PORT on|off"}) {
        EXPECT_NE(d.find(verb), std::string::npos) << verb << " missing from:\n" << d;
    }
    EXPECT_NE(d.find("Policies: group, hub, switch."), std::string::npos) << d;
}

TEST_F(NetworkCtl, MtuTakesWholeNumbersFromOneTo65535) {
    EXPECT_TRUE(IsOk(control("mtu 1")));
    EXPECT_TRUE(IsOk(control("mtu 65535")));
    EXPECT_TRUE(IsOk(control("mtu 9000")));
    for (const auto* bad : {"mtu 0", "mtu 65536", "mtu -1", "mtu 1.5", "mtu lots", "mtu 9000x"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 9000\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n");
}

TEST_F(NetworkCtl, MtuCanChangeWhilePortsAreConnectedAndAppliesToTheNextSend) {
    Connection w = writer(0);
    Connection r = reader(1);
    ASSERT_TRUE(IsOk(control("mtu 4")));
    EXPECT_TRUE(FailsWith(net_->send(w, bytes("12345")), std::errc::message_size));
    ASSERT_TRUE(IsOk(control("mtu 5")));
    EXPECT_TRUE(IsOk(net_->send(w, bytes("12345"))));
    EXPECT_EQ(drain(r), Texts{"12345"});
}

TEST_F(NetworkCtl, QueueTakesWholeNumbersFromOneTo65536WhileNothingIsConnected) {
    EXPECT_TRUE(IsOk(control("queue 1")));
    EXPECT_TRUE(IsOk(control("queue 65536")));
    for (const auto* bad : {"queue 0", "queue 65537", "queue x", "queue -3"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_TRUE(IsOk(control("queue 2")));
    Connection w = writer(0);
    Connection r = reader(1);
    for (const auto* m : {"a", "b", "c"}) send(w, m);
    EXPECT_EQ(drain(r), (Texts{"a", "b"})) << "a new reader's queue has the new size";
}

TEST_F(NetworkCtl, QueueIsBusyWhileAnyPortIsConnected) {
    Connection w = writer(7);  // a writer alone is enough
    bus::Status s = control("queue 8");
    EXPECT_TRUE(FailsWith(s, std::errc::device_or_resource_busy));
    EXPECT_NE(s.reason.find("connected"), std::string::npos) << s.reason;
    EXPECT_TRUE(FailsWith(control("queue 0"), std::errc::invalid_argument))
        << "a bad value is reported as such even while busy";
    net_->disconnect(w);
    EXPECT_TRUE(IsOk(control("queue 8")));
}

TEST_F(NetworkCtl, PolicyHubIsAcceptedWhileNothingIsConnected) {
    EXPECT_TRUE(IsOk(control("policy hub")));
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 1514\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n");
}

TEST_F(NetworkCtl, UnknownPolicyIsInvalidArgumentNamingTheKnownOnes) {
    bus::Status s = control("policy nonesuch");
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_NE(s.reason.find("nonesuch"), std::string::npos) << s.reason;
    EXPECT_NE(s.reason.find("hub"), std::string::npos) << s.reason;
}

TEST_F(NetworkCtl, PolicyIsBusyWhileAnyPortIsConnected) {
    TwoPolicyCatalog two;
    std::shared_ptr<bus::Network> net;
    ASSERT_TRUE(IsOk(bus::Network::create("net1", {}, two, "hub", net)));
    Connection r;
    ASSERT_TRUE(IsOk(net->connect(3, true, false, r)));
    bus::Status s = net->control("policy quiet");
    EXPECT_TRUE(FailsWith(s, std::errc::device_or_resource_busy));
    EXPECT_NE(s.reason.find("connected"), std::string::npos) << s.reason;
    EXPECT_NE(net->describe().find("policy hub\n"), std::string::npos) << "a refused change stuck";
    net->disconnect(r);
    EXPECT_TRUE(IsOk(net->control("policy quiet")));
    EXPECT_EQ(net->describe().rfind("policy quiet\n", 0), 0u) << net->describe();
}

TEST_F(NetworkCtl, SettingAValueItAlreadyHasSucceedsWhilePortsAreConnected) {
    Connection w = writer(0);
    Connection r = reader(1);
    const std::string before = settings();
    EXPECT_TRUE(IsOk(control("policy hub")));
    EXPECT_TRUE(IsOk(control("queue 64")));
    EXPECT_TRUE(IsOk(control("lossless off")));
    EXPECT_TRUE(IsOk(control(before))) << "the settings block written back while connected";
    EXPECT_EQ(settings(), before);
    send(w, "still works");
    EXPECT_EQ(drain(r), Texts{"still works"});
}

TEST_F(NetworkCtl, ChangingQueueOrLosslessWhileConnectedIsBusy) {
    ASSERT_TRUE(IsOk(control("lossless on\nqueue 8")));
    Connection w = writer(0);
    EXPECT_TRUE(IsOk(control("lossless on")));
    EXPECT_TRUE(IsOk(control("queue 8")));
    bus::Status s = control("lossless off");
    EXPECT_TRUE(FailsWith(s, std::errc::device_or_resource_busy));
    EXPECT_NE(s.reason.find("connected"), std::string::npos) << s.reason;
    EXPECT_TRUE(FailsWith(control("queue 9"), std::errc::device_or_resource_busy));
    EXPECT_TRUE(FailsWith(control("lossless maybe"), std::errc::invalid_argument))
        << "a bad value is reported as such even while busy";
    EXPECT_TRUE(described("\nlossless on\n"));
    EXPECT_TRUE(described("\nqueue 8\n"));
    net_->disconnect(w);
    EXPECT_TRUE(IsOk(control("lossless off\nqueue 9")));
    EXPECT_TRUE(described("\nlossless off\n"));
}

TEST_F(NetworkCtl, PoolAndMtuMayChangeWhilePortsAreConnected) {
    ASSERT_TRUE(IsOk(control("lossless on")));
    Connection w = writer(0);
    Connection r = reader(1);
    EXPECT_TRUE(IsOk(control("pool 7\nmtu 100")));
    EXPECT_TRUE(described("\npool 7\n"));
    EXPECT_TRUE(described("\nmtu 100\n"));
    EXPECT_EQ(stats().totals["pool"], "7");
    send(w, "m");
    EXPECT_EQ(drain(r), Texts{"m"});
}

TEST_F(NetworkCtl, PoolTakesWholeNumbersFromOneTo1048576) {
    EXPECT_TRUE(IsOk(control("pool 1")));
    EXPECT_TRUE(IsOk(control("pool 1048576")));
    for (const auto* bad : {"pool 0", "pool 1048577", "pool x", "pool -1"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_TRUE(described("\npool 1048576\n"));
}

TEST_F(NetworkCtl, LosslessTakesOnOrOff) {
    for (const auto* bad : {"lossless yes", "lossless ON", "lossless 1", "lossless"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_TRUE(IsOk(control("lossless on")));
    EXPECT_TRUE(described("\nlossless on\n"));
    EXPECT_EQ(stats().totals["lossless"], "on");
}

TEST_F(NetworkCtl, PortFlagsRejectBadPortsAndValues) {
    for (const auto* bad : {"dropwhenfull 32 on", "dropwhenfull x on", "dropwhenfull 1 yes",
                            "events 32 on", "events 1 On", "events 1"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_FALSE(described("\ndropwhenfull "));
    EXPECT_FALSE(described("\nevents "));
}

TEST_F(NetworkCtl, NewPolicyRoutesForTheCurrentPortCount) {
    ASSERT_TRUE(IsOk(control("ports 4")));
    ASSERT_TRUE(IsOk(control("policy hub")));
    EXPECT_TRUE(IsOk(control("loopback 3 on")));
    EXPECT_TRUE(FailsWith(control("loopback 4 on"), std::errc::invalid_argument));
    Connection a = duplex(0);
    Connection b = reader(3);
    send(a, "m");
    EXPECT_EQ(drain(b), Texts{"m"});
}

TEST_F(NetworkCtl, PortsGrowAndShrinkTheNetwork) {
    ASSERT_TRUE(IsOk(control("ports 4")));
    EXPECT_EQ(net_->port_count(), 4u);
    Connection c;
    EXPECT_TRUE(FailsWith(net_->connect(4, true, false, c), std::errc::no_such_file_or_directory));
    ASSERT_TRUE(IsOk(control("ports 100")));
    EXPECT_EQ(net_->port_count(), 100u);
    EXPECT_TRUE(IsOk(net_->connect(99, true, false, c)));
    EXPECT_TRUE(IsOk(control("ports 65536")));
    EXPECT_EQ(net_->port_count(), 65536u);
    for (const auto* bad : {"ports 0", "ports 65537", "ports many"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_EQ(net_->port_count(), 65536u);
}

TEST_F(NetworkCtl, PortsCannotShrinkBelowAConnectedPort) {
    writer(5);
    bus::Status s = control("ports 5");
    EXPECT_TRUE(FailsWith(s, std::errc::device_or_resource_busy));
    EXPECT_NE(s.reason.find("port 5"), std::string::npos) << s.reason;
    EXPECT_EQ(net_->port_count(), 32u) << "a refused shrink changed the count";
    EXPECT_TRUE(IsOk(control("ports 6")));
    EXPECT_EQ(net_->port_count(), 6u);
}

TEST_F(NetworkCtl, ConnectionsKeepWorkingWhenThePortCountChanges) {
    Connection a = duplex(0);
    Connection b = reader(1);
    ASSERT_TRUE(IsOk(control("ports 2")));
    send(a, "small");
    ASSERT_TRUE(IsOk(control("ports 5000")));
    send(a, "large");
    Connection c = reader(4999);
    send(a, "all");
    EXPECT_EQ(drain(b), (Texts{"small", "large", "all"}));
    EXPECT_EQ(drain(c), Texts{"all"});
}

TEST_F(NetworkCtl, LoopbackMakesTheSenderReceiveItsOwnMessages) {
    Connection a = duplex(0);
    Connection b = reader(1);
    ASSERT_TRUE(IsOk(control("loopback 0 on")));
    EXPECT_TRUE(described("\nloopback 0 on\n"));
    send(a, "echo");
    EXPECT_EQ(drain(a), Texts{"echo"});
    EXPECT_EQ(drain(b), Texts{"echo"});
    ASSERT_TRUE(IsOk(control("loopback 0 off")));
    EXPECT_FALSE(described("loopback 0 on"));
    send(a, "quiet");
    EXPECT_EQ(drain(a), Texts{});
}

TEST_F(NetworkCtl, LoopbackRejectsBadPortsAndValues) {
    for (const auto* bad :
         {"loopback 32 on", "loopback x on", "loopback 1 maybe", "loopback 1 On"}) {
        EXPECT_TRUE(FailsWith(control(bad), std::errc::invalid_argument)) << bad;
    }
    EXPECT_FALSE(described("\nloopback "));
}

TEST_F(NetworkCtl, UnknownVerbIsInvalidArgumentWithAReadableReason) {
    bus::Status s = control("frobnicate 3");
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_NE(s.reason.find("frobnicate"), std::string::npos) << s.reason;
    EXPECT_NE(s.reason.find("unknown command"), std::string::npos) << s.reason;
}

TEST_F(NetworkCtl, WrongArgumentCountIsInvalidArgumentShowingUsage) {
    struct Case {
        const char* line;
        const char* usage;
    };
    for (Case c : {Case{"mtu", "usage: mtu BYTES"}, Case{"mtu 1 2", "usage: mtu BYTES"},
                   Case{"queue", "usage: queue MESSAGES"}, Case{"ports 1 2", "usage: ports COUNT"},
                   Case{"policy", "usage: policy NAME"},
                   Case{"loopback 1", "usage: loopback PORT on|off"}}) {
        bus::Status s = control(c.line);
        EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument)) << c.line;
        EXPECT_NE(s.reason.find(c.usage), std::string::npos) << c.line << ": " << s.reason;
    }
}

TEST_F(NetworkCtl, ReasonStartsWithTheLineThatFailed) {
    bus::Status s = control("mtu   0");
    EXPECT_EQ(s.reason, "mtu 0: mtu must be a whole number from 1 to 65535, not '0'");
}

TEST_F(NetworkCtl, CommentsAndBlankLinesAreIgnored) {
    EXPECT_TRUE(IsOk(control("# a comment\n\n   \n\t# indented\n#mtu 1\nmtu 900\n\n")));
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 900\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n");
    EXPECT_TRUE(IsOk(control("")));
    EXPECT_TRUE(IsOk(control("\n")));
}

TEST_F(NetworkCtl, WindowsLineEndingsAreAccepted) {
    EXPECT_TRUE(IsOk(control("mtu 1000\r\nqueue 10\r\n")));
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 1000\nqueue 10\nlossless off\npool 1024\nholdtime 5000\n");
}

TEST_F(NetworkCtl, LastLineNeedsNoNewline) {
    EXPECT_TRUE(IsOk(control("mtu 800\nmtu 700")));
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 700\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n");
}

TEST_F(NetworkCtl, SeveralLinesApplyInOrder) {
    EXPECT_TRUE(IsOk(control("ports 8\nloopback 7 on\nmtu 100\nmtu 200\n")));
    EXPECT_EQ(settings(),
              "policy hub\nports 8\nmtu 200\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n"
              "loopback 7 on\n");
}

TEST_F(NetworkCtl, LinesStopAtTheFirstErrorKeepingThoseBefore) {
    bus::Status s = control("mtu 300\nbogus line\nmtu 400\n");
    EXPECT_TRUE(FailsWith(s, std::errc::invalid_argument));
    EXPECT_EQ(s.reason.rfind("bogus line: ", 0), 0u) << s.reason;
    EXPECT_EQ(settings(),
              "policy hub\nports 32\nmtu 300\nqueue 64\nlossless off\npool 1024\nholdtime 5000\n");
}

TEST_F(NetworkCtl, LastErrorIsShownUntilTheNextSuccessfulControl) {
    EXPECT_FALSE(described("# last error"));
    ASSERT_FALSE(control("mtu 0").ok());
    EXPECT_TRUE(
        described("# last error: mtu 0: mtu must be a whole number from 1 to 65535, not '0'\n"))
        << net_->describe();
    ASSERT_FALSE(control("frob").ok());
    EXPECT_TRUE(described("# last error: frob: unknown command 'frob'")) << net_->describe();
    EXPECT_FALSE(described("mtu must be")) << "an older error is still shown";
    ASSERT_TRUE(IsOk(control("mtu 1400")));
    EXPECT_FALSE(described("# last error")) << net_->describe();
}

TEST_F(NetworkCtl, DescribeWrittenBackChangesNothing) {
    ASSERT_TRUE(
        IsOk(control("ports 10\nmtu 1400\nqueue 16\nlossless on\npool 9\n"
                     "dropwhenfull 2 on\nevents 5 on\nloopback 3 on\nloopback 9 on")));
    const std::string before = net_->describe();
    EXPECT_TRUE(IsOk(control(before)));
    EXPECT_EQ(net_->describe(), before);
}

TEST_F(NetworkCtl, DescribeRebuildsTheSameSettingsOnAnotherNetwork) {
    ASSERT_TRUE(
        IsOk(control("ports 10\nmtu 1400\nqueue 16\nlossless on\npool 9\n"
                     "dropwhenfull 2 on\nevents 5 on\nloopback 3 on\nloopback 9 on")));
    const std::string saved = net_->describe();
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("net1", {}, catalog_, "hub", other)));
    EXPECT_TRUE(IsOk(other->control(saved)));
    EXPECT_EQ(other->describe(), saved);
}

TEST_F(NetworkCtl, DescribeWithAnErrorShownCanBeWrittenBackToo) {
    ASSERT_FALSE(control("mtu 0").ok());
    const std::string with_error = net_->describe();
    EXPECT_TRUE(IsOk(control(with_error)));
    EXPECT_FALSE(described("# last error"));
}

}  // namespace
}  // namespace ipnfs::test
