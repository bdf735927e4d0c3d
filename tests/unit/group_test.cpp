// The group policy on its own: who it names for each kind of address.
#include "policies/group.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>

#include "group_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::PortId;

// ---- unicast ----

TEST_F(GroupTest, UnicastReachesOnlyThatPort) {
    make(8, {0, 2, 5});
    EXPECT_EQ(send(0, unicast(5)), (PortSet{5}));
    EXPECT_EQ(send(7, unicast(2)), (PortSet{2})) << "a sender that does not receive may send";
}

TEST_F(GroupTest, UnicastToOneselfIsDelivered) {
    make(4, {1, 2});
    EXPECT_EQ(send(1, unicast(1)), (PortSet{1}));
}

TEST_F(GroupTest, UnicastToAPortThatDoesNotReceiveIsRefusedAsUnreachable) {
    make(8, {0, 1});
    detach(1);
    for (PortId to : {1u, 3u, 8u, 70000u}) {
        bus::Status s = refusal(0, unicast(to));
        EXPECT_TRUE(FailsWith(s, std::errc::host_unreachable)) << to;
        EXPECT_EQ(s.reason, "port " + std::to_string(to) + " does not receive");
    }
}

// ---- anycast ----

TEST_F(GroupTest, AnycastTakesTurnsFairlyAmongHolders) {
    make(8, {0, 1, 2, 3, 4});
    run_ok("member 1 7\nmember 3 7\nmember 4 7\nmember 2 8");
    std::map<PortId, int> got;
    for (int i = 0; i < 300; ++i) ++got[one(0, anycast(7))];
    EXPECT_EQ(got, (std::map<PortId, int>{{1, 100}, {3, 100}, {4, 100}}));
}

TEST_F(GroupTest, AnycastNeverPicksTheSameHolderTwiceInARowAmongEquals) {
    make(4, {1, 2});
    run_ok("member 1 7\nmember 2 7");
    PortId last = one(0, anycast(7));
    for (int i = 0; i < 10; ++i) {
        PortId next = one(0, anycast(7));
        EXPECT_NE(next, last) << "send " << i;
        last = next;
    }
}

TEST_F(GroupTest, AnycastToAnInstanceNobodyHoldsIsRefusedAsUnreachable) {
    make(8, {0, 1, 2});
    run_ok("member 1 7\nmember 5 9");
    bus::Status s = refusal(0, anycast(8));
    EXPECT_TRUE(FailsWith(s, std::errc::host_unreachable));
    EXPECT_EQ(s.reason, "no port holds instance 8");
    EXPECT_TRUE(FailsWith(refusal(0, anycast(9)), std::errc::host_unreachable))
        << "port 5 holds 9 but does not receive";
    detach(1);
    EXPECT_TRUE(FailsWith(refusal(0, anycast(7)), std::errc::host_unreachable));
}

TEST_F(GroupTest, AnycastPicksTheLeastQueuedHolder) {
    FakeLoad load;
    load_ = &load;
    make(8, {1, 2, 3});
    run_ok("member 1 7\nmember 2 7\nmember 3 7");
    load.set(1, 3);
    load.set(2, 1);
    load.set(3, 2);
    EXPECT_EQ(one(0, anycast(7)), 2u);
    EXPECT_EQ(one(0, anycast(7)), 2u) << "the load, not the turn, decides first";
    load.set(2, 3);
    EXPECT_EQ(one(0, anycast(7)), 3u);
}

TEST_F(GroupTest, AnycastEquallyLoadedHoldersTakeTurns) {
    FakeLoad load;
    load_ = &load;
    make(8, {1, 2, 3});
    run_ok("member 1 7\nmember 2 7\nmember 3 7");
    load.set(1, 2);
    load.set(2, 2);
    load.set(3, 3);
    std::map<PortId, int> got;
    for (int i = 0; i < 10; ++i) ++got[one(0, anycast(7))];
    EXPECT_EQ(got, (std::map<PortId, int>{{1, 5}, {2, 5}}));
}

TEST_F(GroupTest, AnycastSkipsAHolderWithAFullQueueWhileOthersHaveRoom) {
    FakeLoad load;
    load_ = &load;
    make(8, {1, 2, 3});
    run_ok("member 1 7\nmember 2 7\nmember 3 7");
    load.set(1, 3);
    load.fill(2);  // one more than the others, and no room
    load.set(3, 3);
    std::map<PortId, int> got;
    for (int i = 0; i < 60; ++i) ++got[one(0, anycast(7))];
    EXPECT_EQ(got, (std::map<PortId, int>{{1, 30}, {3, 30}}));
}

TEST_F(GroupTest, AnycastWhenEveryHolderIsFullStillPicksOneInTurn) {
    FakeLoad load;
    load_ = &load;
    make(8, {1, 2, 3});
    run_ok("member 1 7\nmember 2 7\nmember 3 7");
    for (PortId p : {1u, 2u, 3u}) load.fill(p);
    std::map<PortId, int> got;
    for (int i = 0; i < 30; ++i) ++got[one(0, anycast(7))];
    EXPECT_EQ(got, (std::map<PortId, int>{{1, 10}, {2, 10}, {3, 10}}));
    load.set(3, 5);  // over its capacity, as a drop-when-full port may be
    for (int i = 0; i < 10; ++i) EXPECT_NE(one(0, anycast(7)), 3u) << "the fullest was picked";
}

TEST_F(GroupTest, AnycastTheSenderIsACandidateLikeAnyHolder) {
    make(4, {0, 1});
    run_ok("member 0 7\nmember 1 7");
    PortSet got;
    for (int i = 0; i < 4; ++i) got.insert(one(0, anycast(7)));
    EXPECT_EQ(got, (PortSet{0, 1}));
    detach(1);
    EXPECT_EQ(one(0, anycast(7)), 0u) << "the only holder is the sender itself";
}

TEST_F(GroupTest, AnycastRetriedChoosesAgainByLoad) {
    FakeLoad load;
    load_ = &load;
    make(4, {1, 2});
    run_ok("member 1 7\nmember 2 7");
    load.fill(1);
    load.fill(2);
    send(0, anycast(7), false);  // every holder is full: the send waits
    load.set(2, 3);              // room appeared at 2
    EXPECT_EQ(send(0, anycast(7), false), (PortSet{2}));
    EXPECT_EQ(send(0, anycast(7)), (PortSet{2}));
}

// ---- multicast and broadcast ----

TEST_F(GroupTest, MulticastReachesEveryHolderInTheRange) {
    make(16, {1, 2, 3, 4, 5, 6, 7, 8});
    run_ok("member 1 1\nmember 2 2\nmember 3 3\nmember 4 5\nmember 5 5\nmember 6 9\nmember 11 4");
    EXPECT_EQ(send(0, multicast(2, 5)), (PortSet{2, 3, 4, 5})) << "11 holds 4 but is detached";
    EXPECT_EQ(send(0, multicast(5, 5)), (PortSet{4, 5}));
    EXPECT_EQ(send(0, multicast(0, 0xffffffff)), (PortSet{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(send(0, multicast(9, 9)), (PortSet{6}));
}

TEST_F(GroupTest, MulticastThatNobodyHoldsGoesNowhereWithoutAnError) {
    make(8, {1, 2});
    run_ok("member 1 1\nmember 2 9");
    EXPECT_TRUE(send(0, multicast(2, 8)).empty());
    EXPECT_TRUE(IsOk(route_.refused));
    EXPECT_TRUE(send(0, multicast(5, 3)).empty()) << "an inverted range holds nothing";
    EXPECT_TRUE(IsOk(route_.refused));
}

TEST_F(GroupTest, BroadcastReachesEveryAttachedPortButTheSender) {
    make(8, {0, 2, 3, 6});
    run_ok("member 2 5");
    EXPECT_EQ(send(2, kBroadcastTo), (PortSet{0, 3, 6}));
    EXPECT_EQ(send(7, kBroadcastTo), (PortSet{0, 2, 3, 6}));
    detach(3);
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{2, 6}));
}

TEST_F(GroupTest, LoopbackOnMakesTheSenderGetItsOwnMulticastAndBroadcast) {
    make(8, {0, 1, 2});
    run_ok("member 0 7\nmember 1 7");
    EXPECT_EQ(send(0, multicast(7, 7)), (PortSet{1}));
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{1, 2}));
    run_ok("loopback 0 on");
    EXPECT_EQ(send(0, multicast(7, 7)), (PortSet{0, 1}));
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{0, 1, 2}));
    EXPECT_EQ(send(1, kBroadcastTo), (PortSet{0, 2})) << "loopback is per port";
    run_ok("loopback 0 off");
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{1, 2}));
}

// ---- the sender's default destination ----

TEST_F(GroupTest, AMessageWithoutAnAddressGoesToItsSendersDest) {
    make(8, {0, 1, 2, 3, 4});
    run_ok("member 3 7\nmember 4 8");
    EXPECT_EQ(send(0, kStandardTo), (PortSet{1, 2, 3, 4})) << "the default is broadcast";
    run_ok("dest 0 port 2\ndest 1 anycast 8\ndest 2 multicast 7-8\ndest 3 broadcast");
    EXPECT_EQ(send(0, kStandardTo), (PortSet{2}));
    EXPECT_EQ(send(1, kStandardTo), (PortSet{4}));
    EXPECT_EQ(send(2, kStandardTo), (PortSet{3, 4}));
    EXPECT_EQ(send(3, kStandardTo), (PortSet{0, 1, 2, 4}));
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{1, 2, 3, 4})) << "an address overrides dest";
    run_ok("dest 0 port 6");
    EXPECT_TRUE(FailsWith(refusal(0, kStandardTo), std::errc::host_unreachable));
}

// ---- membership over time ----

TEST_F(GroupTest, MemberNoneGivesUpTheInstance) {
    make(8, {1, 2});
    run_ok("member 1 7\nmember 2 7\nmember 1 none");
    for (int i = 0; i < 4; ++i) EXPECT_EQ(one(0, anycast(7)), 2u);
    EXPECT_EQ(send(0, multicast(0, 100)), (PortSet{2}));
    run_ok("member 2 none");
    EXPECT_TRUE(FailsWith(refusal(0, anycast(7)), std::errc::host_unreachable));
}

TEST_F(GroupTest, ChangingTheInstanceOfAnAttachedPortMovesIt) {
    make(8, {1, 2});
    run_ok("member 1 7\nmember 2 7\nmember 1 8");
    EXPECT_EQ(send(0, multicast(7, 7)), (PortSet{2}));
    EXPECT_EQ(send(0, multicast(8, 8)), (PortSet{1}));
}

TEST_F(GroupTest, SettingsSurviveDetachAndAttach) {
    make(8, {0, 1, 2});
    run_ok("member 1 7\nloopback 1 on\ndest 1 anycast 7");
    detach(1);
    EXPECT_TRUE(FailsWith(refusal(0, anycast(7)), std::errc::host_unreachable));
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{2}));
    run_ok("member 4 7");  // set while detached
    attach(1);
    attach(4);
    EXPECT_EQ(send(1, kStandardTo).size(), 1u);
    EXPECT_EQ(send(1, multicast(7, 7)), (PortSet{1, 4}));
}

TEST_F(GroupTest, ShrinkingForgetsTheSettingsOfRemovedPorts) {
    make(8, {0, 6});
    run_ok("member 6 7\nloopback 6 on\ndest 6 port 1\nmember 1 7\ndest 2 port 7");
    detach(6);
    group_.on_ports(4);
    EXPECT_EQ(described(), "member 1 7\ndest 2 port 7\n");
    EXPECT_TRUE(FailsWith(run("member 6 7"), std::errc::invalid_argument));
    group_.on_ports(8);
    attach(6);
    EXPECT_EQ(described(), "member 1 7\ndest 2 port 7\n") << "port 6 came back with settings";
    EXPECT_TRUE(FailsWith(refusal(0, anycast(7)), std::errc::host_unreachable));
    EXPECT_EQ(send(2, kStandardTo), PortSet{}) << "dest port 7: refused, it does not receive";
}

TEST_F(GroupTest, GrowingKeepsAttachedPortsAndTheirInstances) {
    make(4, {1, 3});
    run_ok("member 3 7");
    group_.on_ports(64);
    attach(40);
    run_ok("member 40 7");
    EXPECT_EQ(send(0, multicast(7, 7)), (PortSet{3, 40}));
    EXPECT_EQ(send(0, kBroadcastTo), (PortSet{1, 3, 40}));
}

// ---- against a model ----

// What the group should name, worked out the slow way.
struct Model {
    std::map<PortId, std::optional<std::uint32_t>> instance;
    std::map<PortId, bool> loopback;
    PortSet attached;

    [[nodiscard]] bool holds(PortId p, std::uint32_t lower, std::uint32_t upper) const {
        auto it = instance.find(p);
        return it != instance.end() && it->second && *it->second >= lower && *it->second <= upper;
    }
    [[nodiscard]] PortSet fan_out(PortId from, std::uint32_t lower, std::uint32_t upper,
                                  bool any) const {
        PortSet out;
        for (PortId p : attached) {
            bool self = p == from && !(loopback.contains(p) && loopback.at(p));
            if (!self && (any || holds(p, lower, upper))) out.insert(p);
        }
        return out;
    }
    [[nodiscard]] PortSet holders(std::uint32_t i) const {
        PortSet out;
        for (PortId p : attached) {
            if (holds(p, i, i)) out.insert(p);
        }
        return out;
    }
};

TEST_F(GroupTest, RandomSettingsAndMembershipMatchAModel) {
    PortId count = 32;
    make(count, {});
    Model model;
    std::mt19937 rng(20240611);
    auto pick = [&](std::uint32_t n) {
        return std::uniform_int_distribution<std::uint32_t>(0, n)(rng);
    };
    for (int op = 0; op < 20000; ++op) {
        PortId p = pick(count - 1);
        std::uint32_t i = pick(9);
        switch (pick(99) < 2 ? 9 : pick(8)) {
            case 0:
            case 1:
                if (model.attached.erase(p) != 0) {
                    detach(p);
                } else {
                    attach(p);
                    model.attached.insert(p);
                }
                break;
            case 2:
                run_ok("member " + std::to_string(p) + " " + std::to_string(i));
                model.instance[p] = i;
                break;
            case 3:
                run_ok("member " + std::to_string(p) + " none");
                model.instance[p] = std::nullopt;
                break;
            case 4:
                model.loopback[p] = !model.loopback[p];
                run_ok("loopback " + std::to_string(p) + (model.loopback[p] ? " on" : " off"));
                break;
            case 5: {
                PortSet want = model.holders(i);
                PortSet got = send(p, anycast(i));
                if (want.empty()) {
                    ASSERT_TRUE(FailsWith(route_.refused, std::errc::host_unreachable)) << op;
                } else {
                    ASSERT_EQ(got.size(), 1u) << op;
                    ASSERT_TRUE(want.contains(*got.begin())) << op;
                }
                break;
            }
            case 6: {
                std::uint32_t upper = i + pick(3);
                ASSERT_EQ(send(p, multicast(i, upper)), model.fan_out(p, i, upper, false)) << op;
                break;
            }
            case 7:
                ASSERT_EQ(send(p, kBroadcastTo), model.fan_out(p, 0, 0, true)) << op;
                break;
            case 8: {
                PortId to = pick(count);
                PortSet got = send(p, unicast(to));
                ASSERT_EQ(got, model.attached.contains(to) ? PortSet{to} : PortSet{}) << op;
                break;
            }
            default: {
                // Resize; the network detaches ports before taking them away.
                PortId next = 8 + pick(56);
                for (PortId q = next; q < count; ++q) {
                    if (model.attached.erase(q) != 0) detach(q);
                    model.instance.erase(q);
                    model.loopback.erase(q);
                }
                group_.on_ports(next);
                count = next;
            }
        }
    }
}

}  // namespace
}  // namespace ipnfs::test
