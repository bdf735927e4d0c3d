#include "cluster/replica.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "bus/network.hpp"
#include "cluster/service.hpp"

namespace ipnfs::cluster {

namespace {

// Large enough for the largest message in one batch, small enough that a
// batch never waits long behind another on the engine.
constexpr std::size_t kBatchBytes = 128U << 10;

const char* why_left(Left why) {
    switch (why) {
        case Left::left:
            return "left the network";
        case Left::down:
            return "failed or was cut off";
        case Left::process:
            return "daemon exited";
    }
    return "left";
}

// A record without address or body (join, leave), or a hello.
wire::Record record(wire::Type type, bus::PortId port, const bus::Credentials& creds = {},
                    std::span<const std::byte> body = {}) {
    wire::Record r;
    r.type = type;
    r.port = port;
    r.creds = creds;
    r.body = body;
    return r;
}

wire::Record join_record(bus::PortId port, const bus::Credentials& opener,
                         const bus::Presence& presence) {
    wire::Record r = record(wire::Type::join, port, opener);
    r.presence = presence;
    return r;
}

}  // namespace

Replica::Replica(Service& service, bus::Network& network, std::size_t max_message)
    : service_(service), network_(network), batch_(std::min(max_message, kBatchBytes)) {}

Replica::~Replica() {
    service_.remove(*this);
    group_.reset();  // leaves the group
}

bus::Status Replica::join(Engine& engine, std::string_view group_name) {
    group_name_ = group_name;
    settings_ = network_.shared_settings();
    lossless_ = network_.lossless();
    Joined joined = engine.join(group_name, *this);
    if (!joined.status.ok()) return joined.status;
    Member self = joined.group->self();
    if (self.node == 0 || self.node > bus::Message::kMaxNode) {
        return bus::Status::error(std::errc::not_supported,
                                  fmt::format("this host's node id {} is outside 1-{}: give it a "
                                              "smaller nodeid in corosync.conf",
                                              self.node, bus::Message::kMaxNode));
    }
    group_ = std::move(joined.group);
    self_ = self;
    return bus::Status::success();
}

bus::Status Replica::settle(std::chrono::milliseconds limit) {
    UniqueLock lock(mu_);
    auto all_heard = [this]() REQUIRES(mu_) {
        return has_membership_ &&
               std::ranges::all_of(peers_, [](const auto& p) { return p.second.heard; });
    };
    // The analysis cannot follow the predicate into wait_for: checked by hand.
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!all_heard()) {
        if (settled_.wait_until(lock.native(), deadline) == std::cv_status::timeout) break;
    }
    for (const auto& [member, peer] : peers_) {
        if (peer.differs.empty()) continue;
        return bus::Status::error(
            std::errc::file_exists,
            fmt::format("node {} has network {} with other settings ({}; here: {}): one name, "
                        "one bus; make them alike or use another name",
                        member.node, network_.name(), peer.differs, settings_));
    }
    return bus::Status::success();
}

bus::Origin Replica::self() const {
    return {self_.node, self_.pid, 0};
}

int Replica::fd() const {
    return gone_ ? -1 : group_->fd();
}

bool Replica::queue(const wire::Record& record, bool bounded) {
    std::size_t cost = wire::BatchWriter::record_bytes(record.body.size());
    if (bounded && waiting() + cost > kOutboundBytes) return false;
    if (!batch_.add(record)) {
        close_batch();
        batch_.add(record);  // one record always fits an empty batch
    }
    if (!woken_) {
        woken_ = true;
        service_.wake();
    }
    return true;
}

void Replica::close_batch() {
    auto bytes = batch_.bytes();
    outbound_.emplace_back(bytes.begin(), bytes.end());
    closed_bytes_ += bytes.size();
    batch_.clear();
}

std::size_t Replica::waiting() const {
    return closed_bytes_ + (batch_.empty() ? 0 : batch_.bytes().size());
}

bool Replica::publish(const bus::Message& msg, const bus::Origin* to) {
    MutexLock lock(mu_);
    wire::Record r = record(wire::Type::data, msg.from(), msg.credentials(), msg.payload());
    r.address = msg.address();
    r.hops = msg.hops();
    if (to != nullptr) r.target = *to;
    if (!lossless_) return queue(r, true);
    // Credit bounds it (the network asked credit() first): never dropped.
    charge(msg.payload().size());
    return queue(r, false);
}

void Replica::charge(std::size_t bytes) {
    for (auto& [member, peer] : peers_) {
        if (peer.differs.empty()) peer.in_flight += bytes + kMessageCost;
    }
}

Replica::Credit Replica::credit(std::size_t bytes) const {
    MutexLock lock(mu_);
    return credit_locked(bytes);
}

Replica::Credit Replica::credit_locked(std::size_t bytes) const {
    if (!dead_.empty()) return Credit::gone;
    // Until the group's first membership names this daemon, it does not know
    // whom it would send to; and credit keeps the engine's backlog in bound
    // too, so that a lossless message is never dropped.
    if (!peers_.contains(self_)) return Credit::wait;
    if (waiting() + wire::BatchWriter::record_bytes(bytes) > kOutboundBytes) {
        backlog_full_ = true;
        return Credit::wait;
    }
    // One message always goes to a daemon that has credited everything back,
    // whatever its size.
    std::uint64_t cost = bytes + kMessageCost;
    for (const auto& [member, peer] : peers_) {
        if (peer.differs.empty() && peer.in_flight > 0 && peer.in_flight + cost > kWindowBytes) {
            return Credit::wait;
        }
    }
    return Credit::now;
}

void Replica::consumed(const bus::Origin& origin, std::size_t bytes) {
    MutexLock lock(mu_);
    auto it = peers_.find(Member{origin.node, origin.daemon});
    if (it == peers_.end()) return;  // it left: nobody waits for this credit
    Peer& peer = it->second;
    peer.owed += bytes + kMessageCost;
    if (peer.owed < kWindowBytes / 4) return;
    auto body = wire::credit_body({origin.node, origin.daemon, peer.owed});
    peer.owed = 0;
    queue(record(wire::Type::credit, 0, {}, body), false);
}

void Replica::credited(Member from, const wire::Credit& credit) {
    if (credit.node != self_.node || credit.pid != self_.pid) return;  // another daemon's
    {
        MutexLock lock(mu_);
        auto it = peers_.find(from);
        if (it == peers_.end()) return;
        // A daemon that joined while this one's messages were on their way
        // may credit more than was counted for it.
        it->second.in_flight -= std::min(it->second.in_flight, credit.bytes);
    }
    network_.credit_arrived();
}

// A lossless network's joins and leaves take credit as a message without
// payload does: what waits for room at a slow daemon includes them (behind
// the data), so they are bounded as the data is.
bool Replica::publish_join(bus::PortId port, const bus::Credentials& opener,
                           const bus::Presence& presence) {
    MutexLock lock(mu_);
    if (!lossless_) return queue(join_record(port, opener, presence), true);
    if (credit_locked(0) != Credit::now) return false;
    charge(0);
    return queue(join_record(port, opener, presence), false);
}

void Replica::rejoin(bus::PortId port, const bus::Credentials& opener,
                     const bus::Presence& presence) {
    MutexLock lock(mu_);
    // Over the window at most by one per port, or by one per credit the
    // network asked for (bus/cluster.hpp).
    if (lossless_) charge(0);
    queue(join_record(port, opener, presence), false);
}

void Replica::publish_leave(bus::PortId port) {
    MutexLock lock(mu_);
    if (lossless_) charge(0);  // one per join, which took credit
    queue(record(wire::Type::leave, port), false);
}

bool Replica::flush() {
    for (;;) {
        std::vector<std::byte> next;
        bool all_sent = false;
        bool wake = false;
        {
            MutexLock lock(mu_);
            if (outbound_.empty() && batch_.empty()) {
                woken_ = false;
                all_sent = true;
                // Room in the engine's backlog is credit too (credit()).
                wake = std::exchange(backlog_full_, false);
            } else {
                if (outbound_.empty()) close_batch();
                next = std::move(outbound_.front());
                outbound_.pop_front();
            }
        }
        if (all_sent) {
            if (wake) network_.credit_arrived();
            return false;
        }
        std::array<std::span<const std::byte>, 1> parts{next};
        SendResult result = group_->send(parts);  // never under mu_: it is an engine call
        MutexLock lock(mu_);
        switch (result) {
            case SendResult::sent:
                closed_bytes_ -= next.size();
                ++batches_out_;
                break;
            case SendResult::try_again:
                outbound_.push_front(std::move(next));
                ++try_agains_;
                return true;
            case SendResult::failed:
                // dispatch() says why and ends the group; what waits is lost.
                outbound_.clear();
                batch_.clear();
                closed_bytes_ = 0;
                woken_ = false;
                return false;
        }
    }
}

void Replica::dispatch() {
    bus::Status s = group_->dispatch();
    if (s.ok()) return;
    gone_ = true;
    bool first = false;
    {
        MutexLock lock(mu_);
        first = dead_.empty();
        if (first) dead_ = s.reason;
    }
    if (first) {
        bus::log::limited(spdlog::level::err, {network_.name(), "cluster-engine-gone"},
                          "cluster group {}: {}", group_name_, s.reason);
        if (lossless_) network_.credit_arrived();  // sends waiting for credit fail
    }
}

void Replica::delivered(Member from, std::span<const std::byte> bytes) {
    bool ignored = false;
    {
        MutexLock lock(mu_);
        ignored = !peers_[from].differs.empty();
    }
    bus::Status s = wire::decode(bytes, [&](const wire::Record& r) {
        bus::Origin origin{from.node, from.pid, r.port};
        switch (r.type) {
            case wire::Type::hello: {
                std::string theirs(reinterpret_cast<const char*>(r.body.data()), r.body.size());
                bool differs = theirs != settings_;
                {
                    MutexLock lock(mu_);
                    Peer& peer = peers_[from];
                    peer.differs = differs ? theirs : std::string();
                    peer.heard = true;
                }
                settled_.notify_all();
                ignored = differs;
                if (differs) {
                    bus::log::limited(spdlog::level::err, {network_.name(), "cluster-differs"},
                                      "node {} has network {} with other settings ({}; here: "
                                      "{}): its messages are not delivered here",
                                      from.node, network_.name(), theirs, settings_);
                    network_.ordered_gone(from.node, from.pid);
                    // It will credit nothing back: sends wait for it no more.
                    if (lossless_) network_.credit_arrived();
                }
                return;
            }
            case wire::Type::data: {
                if (ignored) return;
                // Placed at another daemon's port: nothing here, but its credit.
                if (r.target && (r.target->node != self_.node || r.target->daemon != self_.pid)) {
                    if (lossless_) consumed(origin, r.body.size());
                    return;
                }
                {
                    MutexLock lock(mu_);
                    Peer& peer = peers_[from];
                    ++peer.msgs;
                    peer.bytes += r.body.size();
                }
                std::optional<bus::PortId> placed;
                if (r.target) placed = r.target->port;
                network_.ordered_data(origin, r.body, r.address, r.creds, r.hops, placed);
                return;
            }
            case wire::Type::join:
                if (!ignored) network_.ordered_join(origin, r.creds, r.presence);
                return;
            case wire::Type::leave:
                if (!ignored) network_.ordered_leave(origin);
                return;
            case wire::Type::credit:
                if (!ignored && lossless_) credited(from, wire::read_credit(r.body));
                return;
        }
    });
    if (!s.ok()) {
        {
            MutexLock lock(mu_);
            ++refused_batches_;
        }
        bus::log::limited(spdlog::level::err, {network_.name(), "cluster-bad-batch"},
                          "a batch from node {} was refused whole: {}", from.node, s.reason);
    }
}

void Replica::membership(std::span<const Member> members, std::span<const Departure> left,
                         std::span<const Member> joined) {
    {
        MutexLock lock(mu_);
        for (const Departure& d : left) peers_.erase(d.member);
        for (const Member& m : members) peers_.try_emplace(m);
        has_membership_ = true;
    }
    settled_.notify_all();
    for (const Departure& d : left) {
        bus::log::limited(spdlog::level::info, {network_.name(), "cluster-leave"},
                          "node {} (daemon {}) {}: its ports leave", d.member.node, d.member.pid,
                          why_left(d.why));
        network_.ordered_gone(d.member.node, d.member.pid);
    }
    // Sends that waited for a daemon that left, or for the first membership,
    // wait no more.
    if (lossless_) network_.credit_arrived();
    if (joined.empty()) return;
    for (const Member& m : joined) {
        if (m == self_) continue;
        bus::log::limited(spdlog::level::info, {network_.name(), "cluster-join"},
                          "node {} (daemon {}) joined", m.node, m.pid);
    }
    // Whoever joined learns what we are and which of our ports are there.
    {
        MutexLock lock(mu_);
        queue(record(wire::Type::hello, 0, {}, std::as_bytes(std::span(settings_))), false);
    }
    network_.announce();
}

bool Replica::quorate() const {
    MutexLock lock(mu_);
    return quorum_known_ && quorate_;
}

void Replica::set_quorum(bool known, bool quorate) {
    bool was = false;
    bool now = false;
    bool first = false;
    {
        MutexLock lock(mu_);
        was = quorum_known_ && quorate_;
        first = !quorum_known_ && known;
        quorum_known_ = known;
        quorate_ = quorate;
        now = quorum_known_ && quorate_;
    }
    if (was == now) return;
    if (!first || !now) {
        bus::log::limited(spdlog::level::info, {network_.name(), "cluster-quorum"},
                          "cluster group {}: this host's part of the cluster {}", group_name_,
                          now ? "has quorum again" : "has no quorum (corosync votequorum)");
    }
    // Parked sends of a `quorum on` network fail, pollers look again.
    if (lossless_) network_.credit_arrived();
}

void Replica::stats(std::string& out) const {
    MutexLock lock(mu_);
    out += fmt::format(
        "cluster_group {}\ncluster_node {}\ncluster_engine {}\ncluster_quorate {}\n"
        "cluster_batches_out {}\ncluster_try_again {}\ncluster_refused_batches {}\n"
        "cluster_outbound_bytes {}\n",
        group_name_, self_.node, dead_.empty() ? "ok" : dead_,
        !quorum_known_ ? "unknown"
        : quorate_     ? "yes"
                       : "no",
        batches_out_, try_agains_, refused_batches_, waiting());
    out += fmt::format("{:<6} {:>8} {:>10} {:>12} {:>10} {}\n", "node", "daemon", "msgs_in",
                       "bytes_in", "in_flight", "settings");
    for (const auto& [m, peer] : peers_) {
        out += fmt::format("{:<6} {:>8} {:>10} {:>12} {:>10} {}\n", m.node, m.pid, peer.msgs,
                           peer.bytes, peer.in_flight,
                           peer.differs.empty() ? "same" : "differ: " + peer.differs);
    }
}

}  // namespace ipnfs::cluster
