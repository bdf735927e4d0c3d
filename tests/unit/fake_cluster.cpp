#include "fake_cluster.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "bus/thread_safety.hpp"

namespace ipnfs::test {

using cluster::Departure;
using cluster::Left;
using cluster::Member;

namespace {

struct Delivery {
    Member from;
    std::vector<std::byte> bytes;
};

struct Change {
    std::vector<Member> members;
    std::vector<Departure> left;
    std::vector<Member> joined;
};

using Item = std::variant<Delivery, Change>;

// One joined group, as the cluster keeps it.
struct Slot {
    std::string group;
    Member member;
    int fd = -1;               // the Group's eventfd; the slot is erased before it closes
    std::vector<Member> view;  // the members it last saw, in join order
    std::deque<Item> inbox;    // what its next dispatch() delivers
    bool dead = false;
    bus::Status why;  // dead: what dispatch() answers
};

void signal(int fd) {
    const std::uint64_t one = 1;
    // The counter cannot overflow from a test's writes; nothing to handle.
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
}

void drain(int fd) {
    std::uint64_t count = 0;
    [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
}

// Slots are reached through FakeClusterState::slots: under its lock.
void push(Slot& s, Item item) {
    s.inbox.push_back(std::move(item));
    signal(s.fd);
}

void kill_slot(Slot& s, bus::Status why) {
    s.dead = true;
    s.why = std::move(why);
    s.inbox.clear();
    signal(s.fd);
}

bool contains(const std::vector<Member>& members, Member m) {
    return std::find(members.begin(), members.end(), m) != members.end();
}

}  // namespace

class FakeClusterState {
  public:
    explicit FakeClusterState(std::size_t max_message) : max_message_(max_message) {}

    // The cluster's one lock: it guards everything below, every member's
    // inbox included, so that one send() reaches every inbox at the same
    // point of their sequences.  Held only for list and queue work, never
    // across a listener call.
    Mutex mu;

    // Every group joined on any node, by join order: members are listed in
    // that order everywhere, so every member sees the same list.
    std::map<std::uint64_t, Slot> slots GUARDED_BY(mu);
    std::uint64_t next_slot GUARDED_BY(mu) = 1;
    // The side of the cluster each node is on; nodes not here are on side 0.
    std::map<std::uint32_t, int> sides GUARDED_BY(mu);
    std::set<std::uint32_t> busy GUARDED_BY(mu);
    std::set<std::uint32_t> down GUARDED_BY(mu);
    // Quorum: nodes without it, nodes without a quorum service, and every
    // watch by id: its node, its eventfd and the changes it has not
    // dispatched yet.
    struct Watch {
        std::uint32_t node = 0;
        int fd = -1;
        std::vector<bool> news;
    };
    std::set<std::uint32_t> not_quorate GUARDED_BY(mu);
    std::set<std::uint32_t> no_quorum_service GUARDED_BY(mu);
    std::map<std::uint64_t, Watch> watches GUARDED_BY(mu);
    std::uint64_t next_watch GUARDED_BY(mu) = 1;

    [[nodiscard]] std::size_t max_message() const REQUIRES(mu) { return max_message_; }
    void set_max_message(std::size_t bytes) REQUIRES(mu) { max_message_ = bytes; }

    [[nodiscard]] int side_of(std::uint32_t node) const REQUIRES(mu) {
        auto it = sides.find(node);
        return it == sides.end() ? 0 : it->second;
    }

    // Brings every live member's view up to date with who is alive on its
    // side, telling it what changed: one Change, at the same point of every
    // member's sequence.  Members that went away left for `why`.  A member
    // that just joined sees itself join, as in CPG.
    void reconcile(Left why) REQUIRES(mu) {
        for (auto& [id, s] : slots) {
            if (s.dead) continue;
            std::vector<Member> now;
            for (const auto& [other_id, o] : slots) {
                if (!o.dead && o.group == s.group &&
                    side_of(o.member.node) == side_of(s.member.node)) {
                    now.push_back(o.member);
                }
            }
            Change c;
            c.members = now;
            for (Member m : s.view) {
                if (!contains(now, m)) c.left.push_back({m, why});
            }
            if (s.view.empty()) {
                c.joined.push_back(s.member);
            } else {
                for (Member m : now) {
                    if (!contains(s.view, m)) c.joined.push_back(m);
                }
            }
            if (c.left.empty() && c.joined.empty()) continue;
            s.view = std::move(now);
            push(s, std::move(c));
        }
    }

  private:
    std::size_t max_message_ GUARDED_BY(mu);
};

namespace {

class FakeGroup final : public cluster::Group {
  public:
    FakeGroup(std::shared_ptr<FakeClusterState> state, std::uint64_t slot, int fd, Member self,
              cluster::GroupListener& listener)
        : state_(std::move(state)), slot_(slot), fd_(fd), self_(self), listener_(listener) {}

    ~FakeGroup() override {
        {
            MutexLock lock(state_->mu);
            state_->slots.erase(slot_);
            state_->reconcile(Left::left);
        }
        ::close(fd_);
    }

    FakeGroup(const FakeGroup&) = delete;
    FakeGroup& operator=(const FakeGroup&) = delete;

    [[nodiscard]] int fd() const override { return fd_; }

    bus::Status dispatch() override {
        std::deque<Item> items;
        {
            MutexLock lock(state_->mu);
            Slot& s = state_->slots.at(slot_);
            drain(fd_);
            if (s.dead) {
                signal(fd_);  // stays readable: the group is dead for good
                return s.why;
            }
            items.swap(s.inbox);
        }
        // Unlocked: a listener may send.
        for (const Item& item : items) {
            if (const auto* d = std::get_if<Delivery>(&item)) {
                listener_.delivered(d->from, d->bytes);
            } else {
                const auto& c = std::get<Change>(item);
                listener_.membership(c.members, c.left, c.joined);
            }
        }
        return bus::Status::success();
    }

    cluster::SendResult send(std::span<const std::span<const std::byte>> parts) override {
        std::vector<std::byte> bytes;
        for (auto part : parts) bytes.insert(bytes.end(), part.begin(), part.end());
        MutexLock lock(state_->mu);
        Slot& s = state_->slots.at(slot_);
        if (s.dead) return cluster::SendResult::failed;
        if (state_->busy.contains(self_.node)) return cluster::SendResult::try_again;
        if (bytes.size() > state_->max_message()) {
            kill_slot(s, bus::Status::error(std::errc::message_size,
                                            fmt::format("a message of {} bytes, over the engine's "
                                                        "max_message() of {}",
                                                        bytes.size(), state_->max_message())));
            state_->reconcile(Left::process);
            return cluster::SendResult::failed;
        }
        const int side = state_->side_of(self_.node);
        for (auto& [id, t] : state_->slots) {
            if (!t.dead && t.group == s.group && state_->side_of(t.member.node) == side) {
                push(t, Delivery{self_, bytes});
            }
        }
        return cluster::SendResult::sent;
    }

    [[nodiscard]] Member self() const override { return self_; }

  private:
    std::shared_ptr<FakeClusterState> state_;
    const std::uint64_t slot_;
    const int fd_;
    const Member self_;
    cluster::GroupListener& listener_;
};

class FakeQuorumWatch final : public cluster::QuorumWatch {
  public:
    FakeQuorumWatch(std::shared_ptr<FakeClusterState> state, std::uint64_t id, int fd,
                    cluster::QuorumListener& listener)
        : state_(std::move(state)), id_(id), fd_(fd), listener_(listener) {}
    ~FakeQuorumWatch() override {
        {
            MutexLock lock(state_->mu);
            state_->watches.erase(id_);
        }
        ::close(fd_);
    }
    FakeQuorumWatch(const FakeQuorumWatch&) = delete;
    FakeQuorumWatch& operator=(const FakeQuorumWatch&) = delete;

    [[nodiscard]] int fd() const override { return fd_; }

    bus::Status dispatch() override {
        std::vector<bool> news;
        {
            MutexLock lock(state_->mu);
            drain(fd_);
            news.swap(state_->watches.at(id_).news);
        }
        for (bool quorate : news) listener_.quorum(quorate);  // unlocked, as in Group
        return bus::Status::success();
    }

  private:
    std::shared_ptr<FakeClusterState> state_;
    const std::uint64_t id_;
    const int fd_;
    cluster::QuorumListener& listener_;
};

class FakeEngine final : public cluster::Engine {
  public:
    FakeEngine(std::shared_ptr<FakeClusterState> state, Member self)
        : state_(std::move(state)), self_(self) {}

    cluster::Joined join(std::string_view name, cluster::GroupListener& listener) override {
        if (name.empty() || name.size() > kMaxGroupName) {
            return {bus::Status::error(std::errc::invalid_argument,
                                       fmt::format("a group name of {} bytes, not 1 to {}",
                                                   name.size(), kMaxGroupName)),
                    nullptr};
        }
        const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            return {bus::Status::error(std::errc{errno}, std::strerror(errno)), nullptr};
        }
        MutexLock lock(state_->mu);
        if (state_->down.contains(self_.node)) {
            ::close(fd);
            return {bus::Status::error(
                        std::errc::connection_refused,
                        fmt::format("corosync does not run on node {} (the fake cluster killed it)",
                                    self_.node)),
                    nullptr};
        }
        for (const auto& [id, s] : state_->slots) {
            if (!s.dead && s.group == name && s.member == self_) {
                ::close(fd);
                return {
                    bus::Status::error(std::errc::file_exists,
                                       fmt::format("this process is already in group {}", name)),
                    nullptr};
            }
        }
        const std::uint64_t id = state_->next_slot++;
        Slot& s = state_->slots[id];
        s.group = std::string(name);
        s.member = self_;
        s.fd = fd;
        state_->reconcile(Left::left);
        return {bus::Status::success(),
                std::make_unique<FakeGroup>(state_, id, fd, self_, listener)};
    }

    cluster::Watching watch_quorum(cluster::QuorumListener& listener) override {
        const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            return {bus::Status::error(std::errc{errno}, std::strerror(errno)), nullptr, false};
        }
        MutexLock lock(state_->mu);
        if (state_->down.contains(self_.node) || state_->no_quorum_service.contains(self_.node)) {
            ::close(fd);
            return {bus::Status::error(std::errc::not_supported,
                                       fmt::format("node {} has no votequorum (the fake cluster "
                                                   "says so)",
                                                   self_.node)),
                    nullptr, false};
        }
        const std::uint64_t id = state_->next_watch++;
        state_->watches[id] = {self_.node, fd, {}};
        return {bus::Status::success(), std::make_unique<FakeQuorumWatch>(state_, id, fd, listener),
                !state_->not_quorate.contains(self_.node)};
    }

    [[nodiscard]] std::size_t max_message() const override {
        MutexLock lock(state_->mu);
        return state_->max_message();
    }

  private:
    std::shared_ptr<FakeClusterState> state_;
    const Member self_;
};

}  // namespace

FakeCluster::FakeCluster(std::size_t max_message)
    : state_(std::make_shared<FakeClusterState>(max_message)) {}

FakeCluster::~FakeCluster() = default;

std::unique_ptr<cluster::Engine> FakeCluster::engine(std::uint32_t node, std::uint32_t pid) {
    return std::make_unique<FakeEngine>(state_, Member{node, pid});
}

void FakeCluster::set_busy(std::uint32_t node, bool busy) {
    MutexLock lock(state_->mu);
    if (busy) {
        state_->busy.insert(node);
    } else {
        state_->busy.erase(node);
    }
}

void FakeCluster::kill(std::uint32_t node) {
    MutexLock lock(state_->mu);
    state_->down.insert(node);
    for (auto& [id, s] : state_->slots) {
        if (s.member.node == node && !s.dead) {
            kill_slot(s, bus::Status::error(std::errc::connection_reset,
                                            fmt::format("corosync on node {} stopped (the fake "
                                                        "cluster killed it)",
                                                        node)));
        }
    }
    state_->reconcile(Left::down);
}

void FakeCluster::restart(std::uint32_t node) {
    MutexLock lock(state_->mu);
    state_->down.erase(node);
}

void FakeCluster::split(const std::vector<std::vector<std::uint32_t>>& sides) {
    MutexLock lock(state_->mu);
    state_->sides.clear();
    for (std::size_t i = 0; i < sides.size(); ++i) {
        for (std::uint32_t node : sides[i]) state_->sides[node] = static_cast<int>(i) + 1;
    }
    state_->reconcile(Left::down);
}

void FakeCluster::heal() {
    MutexLock lock(state_->mu);
    state_->sides.clear();
    state_->reconcile(Left::down);
}

void FakeCluster::set_max_message(std::size_t bytes) {
    MutexLock lock(state_->mu);
    state_->set_max_message(bytes);
}

void FakeCluster::set_quorate(std::uint32_t node, bool quorate) {
    MutexLock lock(state_->mu);
    if (quorate == !state_->not_quorate.contains(node)) return;  // votequorum tells changes
    if (quorate) {
        state_->not_quorate.erase(node);
    } else {
        state_->not_quorate.insert(node);
    }
    for (auto& [id, w] : state_->watches) {
        if (w.node != node) continue;
        w.news.push_back(quorate);
        signal(w.fd);
    }
}

void FakeCluster::set_quorum_service(std::uint32_t node, bool present) {
    MutexLock lock(state_->mu);
    if (present) {
        state_->no_quorum_service.erase(node);
    } else {
        state_->no_quorum_service.insert(node);
    }
}

}  // namespace ipnfs::test
