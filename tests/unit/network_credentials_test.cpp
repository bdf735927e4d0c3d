// Sender credentials through bus::Network: what a writer's send carries
// reaches every recipient (each form of a switched frame too), a parked
// lossless send keeps them, a join carries its port's opener, and what
// nobody attested (netdev's sends and connects) says so.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "bus/message.hpp"
#include "bus_test_support.hpp"
#include "switch_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Credentials;
using bus::Kind;
using bus::MessageRef;
using bus::Outcome;

constexpr Credentials kAlice{4242, 1000, 100, true};
constexpr Credentials kRoot{7, 0, 0, true};

void expect_creds(const MessageRef& m, const Credentials& want) {
    ASSERT_NE(m, nullptr);
    Credentials got = m->credentials();
    EXPECT_EQ(got.known, want.known);
    EXPECT_EQ(got.pid, want.pid);
    EXPECT_EQ(got.uid, want.uid);
    EXPECT_EQ(got.gid, want.gid);
}

class NetworkCredentials : public HubNetworkTest {
  protected:
    MessageRef next(const Connection& conn) {
        bus::Received r = net_->receive(conn, nullptr);
        return r.outcome == Outcome::message ? r.message : nullptr;
    }
};

TEST(MessageCredentials, CostEightBytesAMessageAndAreUnknownUntilSet) {
    // 72 bytes before credentials; they fill padding but for 8 bytes.
    EXPECT_LE(sizeof(bus::Message), 80u);
    MessageRef m = bus::Message::make(3, bytes("x"));
    EXPECT_FALSE(m->credentials().known);
    m->set_credentials(kAlice);
    expect_creds(m, kAlice);
}

TEST_F(NetworkCredentials, EveryRecipientSeesTheWritersCredentialsAndTwoWritersDiffer) {
    Connection a = reader(1);
    Connection b = reader(2);
    Connection w1 = writer(3);
    Connection w2 = writer(3);  // a second descriptor of the same port
    ASSERT_TRUE(IsOk(net_->send(w1, bytes("one"), {}, kAlice)));
    ASSERT_TRUE(IsOk(net_->send(w2, bytes("two"), {}, kRoot)));
    ASSERT_TRUE(IsOk(net_->send(w2, bytes("three"))));  // as netdev sends
    for (const Connection& r : {a, b}) {
        expect_creds(next(r), kAlice);
        expect_creds(next(r), kRoot);
        expect_creds(next(r), Credentials{});
    }
}

TEST_F(NetworkCredentials, AParkedLosslessSendKeepsItsCredentials) {
    lossless();
    Connection r = reader(1);
    Connection w = writer(2);
    send_now(w, "fills the queue");
    RecordingSendWaiter& waiter = send_waiter();
    bus::SendResult sent = net_->send(w, bytes("waits"), &waiter, {}, 0, kAlice);
    ASSERT_TRUE(sent.parked);
    EXPECT_EQ(text(next(r)), "fills the queue");
    ASSERT_TRUE(waiter.wait());
    MessageRef m = next(r);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(text(m), "waits");
    expect_creds(m, kAlice);
}

TEST_F(NetworkCredentials, AJoinCarriesWhoOpenedThePortFirstAndOtherEventsNothing) {
    Connection s = reader(0);
    ASSERT_TRUE(IsOk(net_->set_events(0, true)));
    drain_all(s);
    Connection first;
    ASSERT_TRUE(IsOk(net_->connect(5, false, true, first, false, kAlice)));
    Connection second;  // the port is connected already: no join, no change
    ASSERT_TRUE(IsOk(net_->connect(5, true, false, second, false, kRoot)));
    Connection any;
    ASSERT_TRUE(IsOk(net_->connect_any(false, true, any, false, kRoot)));
    ASSERT_EQ(any.id, 1u);
    Connection kernel = writer(6);  // as netdev connects: nobody attested
    EXPECT_EQ(kernel.id, 6u);

    MessageRef join5 = next(s);
    ASSERT_EQ(join5->kind(), Kind::join);
    EXPECT_EQ(join5->from(), 5u);
    expect_creds(join5, kAlice);
    MessageRef counts = next(s);
    EXPECT_EQ(counts->kind(), Kind::counts);
    EXPECT_FALSE(counts->credentials().known);
    EXPECT_EQ(next(s)->kind(), Kind::counts);  // port 5's reader
    MessageRef join1 = next(s);
    ASSERT_EQ(join1->kind(), Kind::join);
    expect_creds(join1, kRoot);
    EXPECT_EQ(next(s)->kind(), Kind::counts);
    MessageRef join6 = next(s);
    ASSERT_EQ(join6->kind(), Kind::join);
    expect_creds(join6, Credentials{});
    drain_all(s);

    net_->disconnect(first);
    net_->disconnect(second);
    int leaves = 0;
    for (MessageRef m = next(s); m != nullptr; m = next(s)) {
        if (m->kind() != Kind::leave) continue;
        ++leaves;
        EXPECT_EQ(m->from(), 5u);
        EXPECT_FALSE(m->credentials().known) << "a leave carries nothing";
    }
    EXPECT_EQ(leaves, 1);

    // A reader that turns events on later gets the same in its snapshot.
    Connection late = reader(9);
    ASSERT_TRUE(IsOk(net_->set_events(9, true)));
    std::vector<MessageRef> joins;
    for (MessageRef m = next(late); m != nullptr; m = next(late)) {
        if (m->kind() == Kind::join) joins.push_back(m);
    }
    ASSERT_EQ(joins.size(), 3u);  // 0, 1, 6
    expect_creds(joins[0], Credentials{});
    expect_creds(joins[1], kRoot);
    expect_creds(joins[2], Credentials{});
}

TEST(NetworkSwitchCredentials, EveryFormOfASwitchedFrameCarriesItsWriter) {
    policies::Catalog catalog;
    std::shared_ptr<bus::Network> net;
    ASSERT_TRUE(IsOk(bus::Network::create("lan", {}, catalog, "switch", net)));
    ASSERT_TRUE(IsOk(net->control("vlan 0 10\nvlan 1 10\nvlan 3 none\ntrunk 3 10\n")));
    std::vector<Connection> conns(4);
    for (bus::PortId p : {0U, 1U, 3U}) ASSERT_TRUE(IsOk(net->connect(p, true, true, conns[p])));
    Bytes sent = frame(kBroadcast, station(0xa), "from port 0");
    ASSERT_TRUE(IsOk(net->send(conns[0], sent, {}, kAlice)));
    for (bus::PortId p : {1U, 3U}) {
        bus::Received r = net->receive(conns[p], nullptr);
        ASSERT_EQ(r.outcome, Outcome::message) << p;
        expect_creds(r.message, kAlice);
    }
}

}  // namespace
}  // namespace ipnfs::test
