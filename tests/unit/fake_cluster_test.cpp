// The fake engine (fake_cluster.hpp) keeps the promises of
// cluster/engine.hpp that the code on top relies on: one sequence of
// messages and membership changes for every member of a side, whoever sends
// from whichever thread, and failures, partitions and merges as CPG reports
// them.
#include <gtest/gtest.h>
#include <poll.h>

#include <barrier>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "fake_cluster.hpp"

namespace ipnfs::test {
namespace {

using cluster::Departure;
using cluster::Left;
using cluster::Member;
using cluster::SendResult;

std::string show(Member m) {
    return std::to_string(m.node) + ":" + std::to_string(m.pid);
}

std::string show(Left why) {
    switch (why) {
        case Left::left:
            return "left";
        case Left::down:
            return "down";
        case Left::process:
            return "process";
    }
    return "?";
}

// What a member was told, one line per callback: "msg 1:10 hello",
// "view 1:10 2:20 | left 3:30/down | joined 2:20".
class Log final : public cluster::GroupListener {
  public:
    void delivered(Member from, std::span<const std::byte> bytes) override {
        lines.push_back("msg " + show(from) + " " +
                        std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    }
    void membership(std::span<const Member> members, std::span<const Departure> left,
                    std::span<const Member> joined) override {
        std::string line = "view";
        for (Member m : members) line += " " + show(m);
        line += " | left";
        for (const Departure& d : left) line += " " + show(d.member) + "/" + show(d.why);
        line += " | joined";
        for (Member m : joined) line += " " + show(m);
        lines.push_back(line);
    }
    // The lines from the n-th on.
    [[nodiscard]] std::vector<std::string> from(std::size_t n) const {
        return {lines.begin() + static_cast<std::ptrdiff_t>(std::min(n, lines.size())),
                lines.end()};
    }
    std::vector<std::string> lines;
};

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

SendResult send(cluster::Group& g, std::string_view text) {
    std::span<const std::byte> part = bytes(text);
    return g.send(std::span(&part, 1));
}

// A daemon's view of one group: its engine, its group, what it was told.
struct Node {
    Node(FakeCluster& c, std::uint32_t node, std::string_view group = "net")
        : engine(c.engine(node, node * 10)) {
        cluster::Joined j = engine->join(group, log);
        EXPECT_TRUE(IsOk(j.status));
        this->group = std::move(j.group);
    }
    std::unique_ptr<cluster::Engine> engine;
    Log log;
    std::unique_ptr<cluster::Group> group;
};

// Dispatches what is there, as the daemon's loop does when fd() is readable.
bus::Status pump(Node& n) {
    if (!readable(n.group->fd())) return bus::Status::success();
    return n.group->dispatch();
}

TEST(FakeCluster, AJoinerSeesItselfJoinAndTheOthersSeeItJoin) {
    FakeCluster c;
    Node a(c, 1);
    ASSERT_TRUE(IsOk(pump(a)));
    Node b(c, 2);
    ASSERT_TRUE(IsOk(pump(a)));
    ASSERT_TRUE(IsOk(pump(b)));
    EXPECT_EQ(a.log.lines, (std::vector<std::string>{"view 1:10 | left | joined 1:10",
                                                     "view 1:10 2:20 | left | joined 2:20"}));
    EXPECT_EQ(b.log.lines, (std::vector<std::string>{"view 1:10 2:20 | left | joined 2:20"}));
    EXPECT_EQ(a.group->self(), (Member{1, 10}));
}

TEST(FakeCluster, TheFdIsReadableExactlyWhenThereIsSomethingToDispatch) {
    FakeCluster c;
    Node a(c, 1);
    EXPECT_TRUE(readable(a.group->fd()));
    ASSERT_TRUE(IsOk(a.group->dispatch()));
    EXPECT_FALSE(readable(a.group->fd()));
    ASSERT_EQ(send(*a.group, "x"), SendResult::sent);
    EXPECT_TRUE(readable(a.group->fd()));
    ASSERT_TRUE(IsOk(a.group->dispatch()));
    EXPECT_FALSE(readable(a.group->fd()));
    EXPECT_EQ(a.log.lines.back(), "msg 1:10 x");
}

TEST(FakeCluster, ThreeMembersSeeOneSequenceFromConcurrentSenders) {
    constexpr int kEach = 2000;
    constexpr int kRound = 100;
    FakeCluster c;
    std::vector<std::unique_ptr<Node>> nodes;
    for (std::uint32_t n = 1; n <= 3; ++n) nodes.push_back(std::make_unique<Node>(c, n));
    // Each member has seen its own join; the sequences are the same from
    // the last one on.
    const std::vector<std::size_t> joined_at = {2, 1, 0};
    // The threads meet every kRound sends, so that each round's sends of
    // all three overlap in time.
    std::barrier round(static_cast<std::ptrdiff_t>(nodes.size()));
    std::vector<std::thread> threads;
    threads.reserve(nodes.size());
    for (auto& node : nodes) {
        threads.emplace_back([&node, &round] {
            for (int i = 0; i < kEach; ++i) {
                if (i % kRound == 0) round.arrive_and_wait();
                EXPECT_EQ(send(*node->group,
                               std::to_string(node->group->self().node) + "-" + std::to_string(i)),
                          SendResult::sent);
                // Dispatch now and then, while the others send.
                if (i % 7 == 0) {
                    EXPECT_TRUE(IsOk(pump(*node)));
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& node : nodes) ASSERT_TRUE(IsOk(pump(*node)));

    const std::vector<std::string> first = nodes[0]->log.from(joined_at[0]);
    ASSERT_EQ(first.size(), 1U + 3 * kEach);
    EXPECT_EQ(first.front(), "view 1:10 2:20 3:30 | left | joined 3:30");
    for (std::size_t i = 1; i < nodes.size(); ++i) {
        EXPECT_EQ(nodes[i]->log.from(joined_at[i]), first) << "member " << i;
    }
    // Each sender's messages in the order it sent them.
    std::vector<int> next(4, 0);
    for (std::size_t i = 1; i < first.size(); ++i) {
        const std::string& line = first[i];  // "msg N:P N-I"
        const std::string sender = line.substr(4, 1);
        const int n = std::stoi(sender);
        EXPECT_EQ(line, fmt::format("msg {0}:{0}0 {0}-{1}", sender, next[n]++));
    }
    EXPECT_EQ(next, (std::vector<int>{0, kEach, kEach, kEach}));
}

TEST(FakeCluster, ABusyNodeSendsNothingUntilItIsNotBusy) {
    FakeCluster c;
    Node a(c, 1);
    Node b(c, 2);
    ASSERT_TRUE(IsOk(pump(a)));
    ASSERT_TRUE(IsOk(pump(b)));
    c.set_busy(1, true);
    EXPECT_EQ(send(*a.group, "early"), SendResult::try_again);
    EXPECT_EQ(send(*b.group, "from b"), SendResult::sent);
    c.set_busy(1, false);
    EXPECT_EQ(send(*a.group, "later"), SendResult::sent);
    ASSERT_TRUE(IsOk(pump(b)));
    EXPECT_EQ(b.log.from(1), (std::vector<std::string>{"msg 2:20 from b", "msg 1:10 later"}));
}

TEST(FakeCluster, AKilledNodeFailsAndTheOthersSeeItGoDownAfterItsLastMessage) {
    FakeCluster c;
    Node a(c, 1);
    Node b(c, 2);
    Node k(c, 3);
    for (Node* n : {&a, &b, &k}) ASSERT_TRUE(IsOk(pump(*n)));
    ASSERT_EQ(send(*k.group, "last words"), SendResult::sent);
    c.kill(3);
    EXPECT_TRUE(readable(k.group->fd()));
    bus::Status s = k.group->dispatch();
    EXPECT_TRUE(FailsWith(s, std::errc::connection_reset));
    EXPECT_EQ(send(*k.group, "too late"), SendResult::failed);
    EXPECT_TRUE(readable(k.group->fd())) << "a dead group stays readable";
    ASSERT_EQ(send(*a.group, "after"), SendResult::sent);
    for (Node* n : {&a, &b}) {
        ASSERT_TRUE(IsOk(pump(*n)));
        EXPECT_EQ(n->log.lines.back(), "msg 1:10 after");
        const std::vector<std::string> tail(n->log.lines.end() - 3, n->log.lines.end());
        EXPECT_EQ(tail, (std::vector<std::string>{"msg 3:30 last words",
                                                  "view 1:10 2:20 | left 3:30/down | joined",
                                                  "msg 1:10 after"}));
    }
    // Its corosync is gone: no join until it runs again.
    Log other;
    cluster::Joined j = c.engine(3, 31)->join("net", other);
    EXPECT_TRUE(FailsWith(j.status, std::errc::connection_refused));
    EXPECT_EQ(j.group, nullptr);
    c.restart(3);
    k.group.reset();
    Node back(c, 3);
    ASSERT_TRUE(IsOk(pump(a)));
    EXPECT_EQ(a.log.lines.back(), "view 1:10 2:20 3:30 | left | joined 3:30");
}

TEST(FakeCluster, ASplitKeepsEachSideToItselfAndAHealMergesThem) {
    FakeCluster c;
    Node a(c, 1);
    Node b(c, 2);
    Node z(c, 3);
    for (Node* n : {&a, &b, &z}) ASSERT_TRUE(IsOk(pump(*n)));
    const std::size_t mark_a = a.log.lines.size();
    const std::size_t mark_b = b.log.lines.size();
    const std::size_t mark_z = z.log.lines.size();
    c.split({{1, 2}, {3}});
    ASSERT_EQ(send(*a.group, "on 1-2"), SendResult::sent);
    ASSERT_EQ(send(*z.group, "on 3"), SendResult::sent);
    c.heal();
    ASSERT_EQ(send(*b.group, "merged"), SendResult::sent);
    for (Node* n : {&a, &b, &z}) ASSERT_TRUE(IsOk(pump(*n)));
    const std::vector<std::string> big_side = {
        "view 1:10 2:20 | left 3:30/down | joined", "msg 1:10 on 1-2",
        "view 1:10 2:20 3:30 | left | joined 3:30", "msg 2:20 merged"};
    EXPECT_EQ(a.log.from(mark_a), big_side);
    EXPECT_EQ(b.log.from(mark_b), big_side);
    EXPECT_EQ(z.log.from(mark_z),
              (std::vector<std::string>{
                  "view 3:30 | left 1:10/down 2:20/down | joined", "msg 3:30 on 3",
                  "view 1:10 2:20 3:30 | left | joined 1:10 2:20", "msg 2:20 merged"}));
}

TEST(FakeCluster, AJoinDuringASplitIsSeenOnlyOnItsSideUntilTheHeal) {
    FakeCluster c;
    Node a(c, 1);
    Node z(c, 3);
    c.split({{1}, {3}});
    Node b(c, 2);  // named in no list: a side of its own
    for (Node* n : {&a, &z, &b}) ASSERT_TRUE(IsOk(pump(*n)));
    EXPECT_EQ(b.log.lines, (std::vector<std::string>{"view 2:20 | left | joined 2:20"}));
    c.heal();
    for (Node* n : {&a, &z, &b}) ASSERT_TRUE(IsOk(pump(*n)));
    EXPECT_EQ(a.log.lines.back(), "view 1:10 3:30 2:20 | left | joined 3:30 2:20");
    EXPECT_EQ(b.log.lines.back(), "view 1:10 3:30 2:20 | left | joined 1:10 3:30");
}

TEST(FakeCluster, ADestroyedGroupIsSeenToLeave) {
    FakeCluster c;
    Node a(c, 1);
    auto b = std::make_unique<Node>(c, 2);
    ASSERT_TRUE(IsOk(pump(*b)));
    b.reset();
    ASSERT_TRUE(IsOk(pump(a)));
    EXPECT_EQ(a.log.lines.back(), "view 1:10 | left 2:20/left | joined");
}

TEST(FakeCluster, GroupsOfOtherNamesAreApartAndAProcessJoinsAGroupOnce) {
    FakeCluster c;
    Node a(c, 1, "jobs");
    Node b(c, 2, "other");
    ASSERT_EQ(send(*b.group, "elsewhere"), SendResult::sent);
    ASSERT_TRUE(IsOk(pump(a)));
    EXPECT_EQ(a.log.lines, (std::vector<std::string>{"view 1:10 | left | joined 1:10"}));
    Log again;
    EXPECT_TRUE(FailsWith(a.engine->join("jobs", again).status, std::errc::file_exists));
    EXPECT_TRUE(FailsWith(a.engine->join(std::string(128, 'n'), again).status,
                          std::errc::invalid_argument));
}

TEST(FakeCluster, MaxMessageIsSettableAndASendOverItFailsTheGroup) {
    FakeCluster c(100);
    Node a(c, 1);
    Node b(c, 2);
    ASSERT_TRUE(IsOk(pump(a)));
    EXPECT_EQ(a.engine->max_message(), 100U);
    EXPECT_EQ(send(*a.group, std::string(100, 'x')), SendResult::sent);
    c.set_max_message(50);
    EXPECT_EQ(a.engine->max_message(), 50U);
    EXPECT_EQ(send(*a.group, std::string(51, 'x')), SendResult::failed);
    EXPECT_TRUE(FailsWith(a.group->dispatch(), std::errc::message_size));
    ASSERT_TRUE(IsOk(pump(b)));
    EXPECT_EQ(b.log.lines.back(), "view 2:20 | left 1:10/process | joined");
}

TEST(FakeCluster, SendConcatenatesItsParts) {
    FakeCluster c;
    Node a(c, 1);
    std::span<const std::byte> parts[] = {bytes("head|"), bytes(""), bytes("body")};
    ASSERT_EQ(a.group->send(parts), SendResult::sent);
    ASSERT_TRUE(IsOk(pump(a)));
    EXPECT_EQ(a.log.lines.back(), "msg 1:10 head|body");
}

}  // namespace
}  // namespace ipnfs::test
