// Messages with offload state (a kernel interface's superframes and frames
// with a checksum left to fill in) reach only readers that said they take
// them; a route with any other reader refuses them (ENOTSUP), so that their
// sender sends plain frames instead.  A plain message pays nothing for it.
#include <gtest/gtest.h>

#include <string>

#include "bus_test_support.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Limits;
using bus::Message;
using bus::Offload;

Offload offload_of(std::uint32_t wire_bytes) {
    Offload o;
    o.state[0] = std::byte{1};  // what netdev/ wrote: the bus never reads it
    o.state[9] = std::byte{0x7f};
    o.wire_bytes = wire_bytes;
    return o;
}

class NetworkOffload : public HubNetworkTest {
  protected:
    bus::SendResult send_offloaded(const Connection& from, const std::string& payload,
                                   const Offload& o) {
        return net_->send(from, bytes(payload), nullptr, {}, 0, {}, &o);
    }
};

TEST(MessageOffload, APlainMessageCarriesNoneAndCostsItsHeaderAndPayloadOnly) {
    bus::MessageRef plain = Message::make(1, bytes("frame"));
    EXPECT_EQ(plain->offload(), nullptr);
    EXPECT_EQ(plain->held_bytes(), sizeof(Message) + 5);
    EXPECT_EQ(sizeof(Message), 80u);

    Offload o = offload_of(1514);
    bus::MessageRef big = Message::make(1, bytes("frame"), bus::Kind::data, &o);
    ASSERT_NE(big->offload(), nullptr);
    EXPECT_EQ(big->offload()->state, o.state);
    EXPECT_EQ(big->offload()->wire_bytes, 1514u);
    EXPECT_EQ(text(big), "frame");
    // Charged for its state too.
    EXPECT_GE(big->held_bytes(), sizeof(Message) + 5 + sizeof(Offload));
}

TEST_F(NetworkOffload, GoesWholeToReadersThatTakeItAndNowhereElse) {
    Connection a = duplex(0), b = duplex(1);
    net_->accept_offload(a);
    net_->accept_offload(b);
    Offload o = offload_of(1000);
    std::string super(4000, 's');
    bus::SendResult r = send_offloaded(a, super, o);
    ASSERT_TRUE(IsOk(r.status));
    bus::Received got = net_->receive(b, nullptr);
    ASSERT_EQ(got.outcome, bus::Outcome::message);
    EXPECT_EQ(got.message->payload().size(), 4000u);
    ASSERT_NE(got.message->offload(), nullptr);
    EXPECT_EQ(got.message->offload()->state, o.state);

    // A port file reader joins: the same send is refused, nothing queued.
    Connection c = reader(2);
    r = send_offloaded(a, super, o);
    EXPECT_EQ(r.status.code, std::errc::not_supported) << r.status.reason;
    EXPECT_FALSE(take(b));
    EXPECT_FALSE(take(c));
    // Plain frames still go everywhere.
    send(a, "plain");
    EXPECT_EQ(take(b), "plain");
    EXPECT_EQ(take(c), "plain");
}

TEST_F(NetworkOffload, ACaptureReaderNeverSeesIt) {
    Connection a = duplex(0), b = duplex(1);
    net_->accept_offload(a);
    net_->accept_offload(b);
    Connection cap;
    ASSERT_TRUE(IsOk(net_->connect_capture(cap)));
    bus::SendResult r = send_offloaded(a, "super", offload_of(5));
    EXPECT_EQ(r.status.code, std::errc::not_supported);
    net_->disconnect(cap);
    r = send_offloaded(a, "super", offload_of(5));
    EXPECT_TRUE(IsOk(r.status));
    EXPECT_EQ(take(b), "super");
}

TEST_F(NetworkOffload, APortTakesItOnlyUntilItsLastReaderLeaves) {
    Connection a = duplex(0);
    net_->accept_offload(a);
    {
        Connection b = duplex(1);
        net_->accept_offload(b);
        net_->disconnect(b);
    }
    // The next reader of port 1 is a port file: plain frames only.
    Connection file = reader(1);
    bus::SendResult r = send_offloaded(a, "super", offload_of(5));
    EXPECT_EQ(r.status.code, std::errc::not_supported);
    EXPECT_FALSE(take(file));
}

TEST_F(NetworkOffload, TheMtuBoundsTheWireFramesAndKMaxSuperframeTheWhole) {
    Connection a = duplex(0), b = duplex(1);
    net_->accept_offload(a);
    net_->accept_offload(b);
    // Longer than the MTU, and than kMaxMtu, as a superframe of 1514-byte frames.
    std::string super(Limits::kMaxMtu + 20, 's');
    EXPECT_TRUE(IsOk(send_offloaded(a, super, offload_of(1514)).status));
    EXPECT_EQ(take(b)->size(), super.size());
    // Its wire frames would be too long.
    EXPECT_EQ(send_offloaded(a, "x", offload_of(1515)).status.code, std::errc::message_size);
    // Longer than any superframe.
    std::string huge(Limits::kMaxSuperframe + 1, 's');
    EXPECT_EQ(send_offloaded(a, huge, offload_of(1514)).status.code, std::errc::message_size);
    // A plain message is bounded by kMaxMtu as ever.
    EXPECT_EQ(net_->send(a, bytes(super)).code, std::errc::message_size);
}

TEST_F(NetworkOffload, ALosslessSendThatWaitedIsRefusedIfAPlainReaderCameMeanwhile) {
    lossless();
    Connection a = duplex(0), b = duplex(1);
    net_->accept_offload(a);
    net_->accept_offload(b);
    send_now(a, "fills b");
    RecordingSendWaiter& w = send_waiter();
    Offload o = offload_of(5);
    bus::SendResult r = net_->send(a, bytes("super"), &w, {}, 0, {}, &o);
    ASSERT_TRUE(r.parked);
    Connection file = reader(2);
    EXPECT_EQ(take(b), "fills b");  // room: the parked send is routed again
    ASSERT_EQ(w.calls(), 1);
    EXPECT_EQ(w.status().code, std::errc::not_supported);
    EXPECT_FALSE(take(b));
    EXPECT_FALSE(take(file));
}

TEST(NetworkOffloadSwitch, AFrameTheSwitchWouldTagOrUntagIsRefusedSoItGoesPlain) {
    policies::Catalog catalog;
    std::shared_ptr<bus::Network> net;
    ASSERT_TRUE(IsOk(bus::Network::create("lan", {}, catalog, "switch", net)));
    // 0 and 1: access VLAN 10; 2: trunk of 10.  All three take offload.
    ASSERT_TRUE(IsOk(net->control("vlan 0 10\nvlan 1 10\nvlan 2 none\ntrunk 2 10\n")));
    std::vector<Connection> conns(3);
    for (bus::PortId p = 0; p < 3; ++p) {
        ASSERT_TRUE(IsOk(net->connect(p, true, true, conns[p]))) << p;
        net->accept_offload(conns[p]);
    }
    Offload o = offload_of(60);
    // A broadcast reaches the trunk with a tag added: its offsets would move.
    Bytes flood = frame(kBroadcast, station(0xa));
    bus::SendResult r = net->send(conns[0], flood, nullptr, {}, 0, {}, &o);
    EXPECT_EQ(r.status.code, std::errc::not_supported) << r.status.reason;
    // Unicast to a learned access port is not rewritten: it goes whole.
    ASSERT_TRUE(IsOk(net->send(conns[1], frame(kBroadcast, station(0xb)))));
    Bytes unicast = frame(station(0xb), station(0xa));
    r = net->send(conns[0], unicast, nullptr, {}, 0, {}, &o);
    EXPECT_TRUE(IsOk(r.status));
    bool whole = false;
    for (;;) {
        bus::Received got = net->receive(conns[1], nullptr);
        if (got.outcome != bus::Outcome::message) break;
        if (got.message->offload() != nullptr) whole = true;
    }
    EXPECT_TRUE(whole) << "the unicast superframe did not reach port 1 whole";
}

}  // namespace
}  // namespace ipnfs::test
