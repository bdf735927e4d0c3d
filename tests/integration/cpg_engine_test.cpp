// cluster/cpg_engine.cpp on three real corosyncs (tools/cluster-hosts.sh):
// one thread per host enters that host's network namespace, so the libcpg
// connection it makes reaches that host's corosync, and joins one group
// through make_cpg_engine().  Every member sees every message, its own
// included, in one order; membership() says who joined and who left and
// why; join() says plainly when no corosync runs.
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster/engine.hpp"
#include "cluster_hosts.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

using ipnfs::cluster::Departure;
using ipnfs::cluster::Group;
using ipnfs::cluster::Joined;
using ipnfs::cluster::Left;
using ipnfs::cluster::Member;
using ipnfs::cluster::SendResult;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kHosts = 3;
constexpr char kGroup[] = "ipnfs-cpg-engine-test";
// A kill -9'd host is reported after about 3.6 s with token: 1000
// (docs/cluster.md); twice that, for a loaded CI machine.
constexpr auto kLeaveBound = 8s;

std::string member_text(Member m) {
    return std::to_string(m.node) + ":" + std::to_string(m.pid);
}

// What one member's listener saw, in the order it saw it.  Written only by
// its host's thread; read by the test after that thread ended.
class Recorder : public ipnfs::cluster::GroupListener {
  public:
    explicit Recorder(std::atomic<int>& full) : full_(full) {}

    void delivered(Member from, std::span<const std::byte> bytes) override {
        std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        if (text.size() > 64) text = "big " + std::to_string(text.size()) + " " + text.substr(0, 8);
        messages.push_back(member_text(from) + " " + text);
    }
    void membership(std::span<const Member> members, std::span<const Departure> left,
                    std::span<const Member> joined) override {
        views.emplace_back(members.begin(), members.end());
        for (const auto& d : left) {
            departures.push_back(d);
            departed_at.push_back(SteadyClock::now());
            departed_in.push_back(views.size() - 1);
        }
        joins.emplace_back(joined.begin(), joined.end());
        if (!counted_ && members.size() == kHosts) {
            counted_ = true;
            ++full_;
        }
    }
    [[nodiscard]] bool saw_node_leave(std::uint32_t node) const {
        return std::ranges::any_of(departures,
                                   [node](const Departure& d) { return d.member.node == node; });
    }

    std::vector<std::string> messages;       // "NODE:PID PAYLOAD"
    std::vector<std::vector<Member>> views;  // each membership()'s members
    std::vector<std::vector<Member>> joins;  // and its joined
    std::vector<Departure> departures;
    std::vector<SteadyClock::time_point> departed_at;
    std::vector<std::size_t> departed_in;  // the views index of each departure

  private:
    std::atomic<int>& full_;  // members that have seen all kHosts
    bool counted_ = false;
};

// One member: on its own thread, in host `host`'s namespace, joins the group
// and dispatches until `step` says it is done (or the deadline passes).
class HostMember {
  public:
    using Step = std::function<bool(Group&, Recorder&)>;  // false: done
    HostMember(const ClusterHosts& hosts, int host, std::atomic<int>& full, Step step)
        : recorder(full),
          thread_([this, &hosts, host, step = std::move(step)] { run(hosts, host, step); }) {}
    ~HostMember() { join(); }
    HostMember(const HostMember&) = delete;
    HostMember& operator=(const HostMember&) = delete;
    void join() {
        if (thread_.joinable()) thread_.join();
    }

    Recorder recorder;
    std::string error;                // why it did not finish, "" if it did
    ipnfs::bus::Status dispatch_end;  // dispatch()'s error, if it had one
    Member self;
    bool eexist_on_second_join = false;

  private:
    void run(const ClusterHosts& hosts, int host, const Step& step) {
        if (std::string why = hosts.enter_thread(host); !why.empty()) {
            error = why;
            return;
        }
        auto engine = ipnfs::cluster::make_cpg_engine();
        Joined joined = engine->join(kGroup, recorder);
        if (!joined.status.ok()) {
            error = "join: " + joined.status.reason;
            return;
        }
        self = joined.group->self();
        Recorder other(other_full_);
        Joined again = engine->join(kGroup, other);
        eexist_on_second_join = again.status.code == std::errc::file_exists && !again.group;
        auto deadline = SteadyClock::now() + 25s;
        while (SteadyClock::now() < deadline) {
            pollfd p{joined.group->fd(), POLLIN, 0};
            poll(&p, 1, 20);
            if (ipnfs::bus::Status st = joined.group->dispatch(); !st.ok()) {
                dispatch_end = st;
                return;
            }
            if (!step(*joined.group, recorder)) return;
        }
        error = "host " + std::to_string(host) + " timed out with " +
                std::to_string(recorder.messages.size()) + " messages and " +
                std::to_string(recorder.views.size()) + " membership changes";
    }

    std::atomic<int> other_full_{0};
    std::thread thread_;
};

SendResult send_text(Group& group, const std::string& text) {
    std::span<const std::byte> part(reinterpret_cast<const std::byte*>(text.data()), text.size());
    return group.send(std::span<const std::span<const std::byte>>(&part, 1));
}

class CpgEngineTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (std::string why = ClusterHosts::problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
        ASSERT_EQ(hosts_.start(kHosts), "");
    }
    ClusterHosts hosts_;
};

TEST_F(CpgEngineTest, ThreeHostsDeliverEveryMessageInOneOrder) {
    constexpr int kEach = 300;
    const std::size_t big = ipnfs::cluster::make_cpg_engine()->max_message();
    constexpr std::size_t kParts = 100;
    // And one message of max_message() bytes, one of kParts parts.
    constexpr std::size_t kTotal = kHosts * kEach + 2;
    std::atomic<int> full{0};
    std::vector<std::unique_ptr<HostMember>> members;
    for (int h = 1; h <= kHosts; ++h) {
        members.push_back(std::make_unique<HostMember>(
            hosts_, h, full,
            [h, &full, big, sent = 0, big_sent = false](Group& g, Recorder& r) mutable {
                // Every host sends once all three are in, as fast as CPG takes it.
                while (full.load() == kHosts && sent < kEach) {
                    if (send_text(g, "h" + std::to_string(h) + "-" + std::to_string(sent)) !=
                        SendResult::sent) {
                        break;
                    }
                    ++sent;
                }
                if (h == 1 && sent == kEach && !big_sent) {
                    big_sent = send_text(g, std::string(big, 'x')) == SendResult::sent;
                }
                // More parts than libcpg takes as iovecs: one message still.
                if (h == 2 && sent == kEach && !big_sent) {
                    std::string text = "parts" + std::string(kParts - 5, '.');
                    std::vector<std::span<const std::byte>> parts;
                    for (const char& c : text) {
                        parts.emplace_back(reinterpret_cast<const std::byte*>(&c), 1);
                    }
                    big_sent = g.send(parts) == SendResult::sent;
                }
                return r.messages.size() < kTotal;
            }));
    }
    for (auto& m : members) m->join();

    for (int h = 1; h <= kHosts; ++h) {
        const HostMember& m = *members[h - 1];
        ASSERT_EQ(m.error, "") << "host " << h;
        EXPECT_EQ(m.self.node, static_cast<std::uint32_t>(h));
        EXPECT_EQ(m.self.pid, static_cast<std::uint32_t>(getpid()));
        EXPECT_TRUE(m.eexist_on_second_join) << "host " << h << ": a second join of the group";
        // The first membership() has this member among the joined; one has
        // all three hosts (later ones may not: a host that is done leaves).
        ASSERT_FALSE(m.recorder.views.empty());
        EXPECT_TRUE(std::ranges::find(m.recorder.joins.front(), m.self) !=
                    m.recorder.joins.front().end());
        EXPECT_TRUE(std::ranges::any_of(m.recorder.views,
                                        [](const auto& view) {
                                            std::set<std::uint32_t> nodes;
                                            for (const auto& mb : view) nodes.insert(mb.node);
                                            return nodes == std::set<std::uint32_t>{1, 2, 3};
                                        }))
            << "host " << h;
        // A member that is done destroys its group: the others that still
        // listen see it leave, not fail.
        for (const auto& d : m.recorder.departures) {
            EXPECT_EQ(d.why, Left::left) << "host " << h << " saw " << member_text(d.member);
        }
        ASSERT_EQ(m.recorder.messages.size(), kTotal) << "host " << h;
        // Per sender, its own order; its own messages delivered to it too.
        std::vector<int> next(kHosts + 1, 0);
        for (const auto& line : m.recorder.messages) {
            auto space = line.find(' ');
            std::string payload = line.substr(space + 1);
            if (payload.starts_with("big ")) continue;
            int sender = payload[1] - '0';
            EXPECT_EQ(payload, "h" + std::to_string(sender) + "-" + std::to_string(next[sender]))
                << "host " << h;
            EXPECT_EQ(line.substr(0, line.find(':')), std::to_string(sender));
            ++next[sender];
        }
        EXPECT_EQ(next, (std::vector<int>{0, kEach, kEach, kEach})) << "host " << h;
        EXPECT_EQ(std::ranges::count(m.recorder.messages, member_text(members[1]->self) + " big " +
                                                              std::to_string(kParts) + " parts..."),
                  1)
            << "host " << h;
        EXPECT_EQ(std::ranges::count(m.recorder.messages, member_text(members[0]->self) + " big " +
                                                              std::to_string(big) + " xxxxxxxx"),
                  1)
            << "host " << h;
    }
    // One agreed order: the same log at every host.
    EXPECT_EQ(members[0]->recorder.messages, members[1]->recorder.messages);
    EXPECT_EQ(members[0]->recorder.messages, members[2]->recorder.messages);
}

TEST_F(CpgEngineTest, KilledHostLeavesTheOthersGroupsWithinTheBound) {
    std::atomic<int> full{0};
    std::atomic<bool> killed{false};
    std::vector<std::unique_ptr<HostMember>> members;
    for (int h = 1; h <= kHosts; ++h) {
        members.push_back(std::make_unique<HostMember>(
            hosts_, h, full,
            [&killed](Group&, Recorder& r) { return !(killed.load() && r.saw_node_leave(3)); }));
    }
    auto deadline = SteadyClock::now() + 15s;
    while (full.load() < kHosts && SteadyClock::now() < deadline) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(full.load(), kHosts) << "the three members never saw each other";
    auto t0 = SteadyClock::now();
    killed = true;
    ASSERT_EQ(hosts_.kill(3), "");
    for (auto& m : members) m->join();

    // Host 3's member finds its corosync gone.
    EXPECT_EQ(members[2]->dispatch_end.code, std::errc::connection_refused)
        << members[2]->dispatch_end.reason << members[2]->error;
    EXPECT_TRUE(contains(members[2]->dispatch_end.reason, "corosync"))
        << members[2]->dispatch_end.reason;
    for (int h = 1; h <= 2; ++h) {
        const Recorder& r = members[h - 1]->recorder;
        ASSERT_EQ(members[h - 1]->error, "") << "host " << h;
        ASSERT_TRUE(r.saw_node_leave(3)) << "host " << h;
        std::size_t i = 0;
        while (r.departures[i].member.node != 3) ++i;
        EXPECT_EQ(r.departures[i].member, members[2]->self);
        EXPECT_EQ(r.departures[i].why, Left::down) << "host " << h;
        auto after = std::chrono::duration<double>(r.departed_at[i] - t0).count();
        EXPECT_LT(after, std::chrono::duration<double>(kLeaveBound).count()) << "host " << h;
        std::cout << "host " << h << " saw host 3 leave " << after << " s after kill -9\n";
        std::set<std::uint32_t> nodes;
        for (const auto& mb : r.views[r.departed_in[i]]) nodes.insert(mb.node);
        EXPECT_EQ(nodes, (std::set<std::uint32_t>{1, 2})) << "host " << h;
    }
}

TEST(CpgEngineAbsentTest, JoinWithoutCorosyncSaysSo) {
    if (std::string why = ClusterHosts::problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    NetNs empty;
    ASSERT_TRUE(empty.ok()) << empty.error();
    ipnfs::bus::Status status;
    bool group = true;
    std::string entered;
    std::thread([&] {
        entered = enter_netns_thread(empty.name());
        if (!entered.empty()) return;
        std::atomic<int> full{0};
        Recorder recorder(full);
        Joined joined = ipnfs::cluster::make_cpg_engine()->join(kGroup, recorder);
        status = joined.status;
        group = joined.group != nullptr;
    }).join();
    ASSERT_EQ(entered, "");
    EXPECT_EQ(status.code, std::errc::connection_refused) << status.reason;
    EXPECT_FALSE(group);
    EXPECT_TRUE(contains(status.reason, "corosync is not running")) << status.reason;
    EXPECT_TRUE(contains(status.reason, "CS_ERR_LIBRARY")) << status.reason;
}

}  // namespace
}  // namespace ipnfs_it
