#include "cluster/replica.hpp"

#include <algorithm>
#include <array>

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

bool Replica::publish(const bus::Message& msg) {
    MutexLock lock(mu_);
    wire::Record r = record(wire::Type::data, msg.from(), msg.credentials(), msg.payload());
    r.address = msg.address();
    r.hops = msg.hops();
    return queue(r, true);
}

bool Replica::publish_join(bus::PortId port, const bus::Credentials& opener) {
    MutexLock lock(mu_);
    return queue(record(wire::Type::join, port, opener), true);
}

void Replica::announce_join(bus::PortId port, const bus::Credentials& opener) {
    MutexLock lock(mu_);
    queue(record(wire::Type::join, port, opener), false);
}

void Replica::publish_leave(bus::PortId port) {
    MutexLock lock(mu_);
    queue(record(wire::Type::leave, port), false);
}

bool Replica::flush() {
    for (;;) {
        std::vector<std::byte> next;
        {
            MutexLock lock(mu_);
            if (outbound_.empty()) {
                if (batch_.empty()) {
                    woken_ = false;
                    return false;
                }
                close_batch();
            }
            next = std::move(outbound_.front());
            outbound_.pop_front();
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
                    peers_[from].differs = differs ? theirs : std::string();
                }
                ignored = differs;
                if (differs) {
                    bus::log::limited(spdlog::level::err, {network_.name(), "cluster-differs"},
                                      "node {} has network {} with other settings ({}; here: "
                                      "{}): its messages are not delivered here",
                                      from.node, network_.name(), theirs, settings_);
                    network_.ordered_gone(from.node, from.pid);
                }
                return;
            }
            case wire::Type::data:
                if (ignored) return;
                {
                    MutexLock lock(mu_);
                    Peer& peer = peers_[from];
                    ++peer.msgs;
                    peer.bytes += r.body.size();
                }
                network_.ordered_data(origin, r.body, r.address, r.creds, r.hops);
                return;
            case wire::Type::join:
                if (!ignored) network_.ordered_join(origin, r.creds);
                return;
            case wire::Type::leave:
                if (!ignored) network_.ordered_leave(origin);
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
    }
    for (const Departure& d : left) {
        bus::log::limited(spdlog::level::info, {network_.name(), "cluster-leave"},
                          "node {} (daemon {}) {}: its ports leave", d.member.node, d.member.pid,
                          why_left(d.why));
        network_.ordered_gone(d.member.node, d.member.pid);
    }
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

void Replica::stats(std::string& out) const {
    MutexLock lock(mu_);
    out += fmt::format(
        "cluster_group {}\ncluster_node {}\ncluster_engine {}\ncluster_batches_out {}\n"
        "cluster_try_again {}\ncluster_refused_batches {}\ncluster_outbound_bytes {}\n",
        group_name_, self_.node, dead_.empty() ? "ok" : dead_, batches_out_, try_agains_,
        refused_batches_, waiting());
    out += fmt::format("{:<6} {:>8} {:>10} {:>12} {}\n", "node", "daemon", "msgs_in", "bytes_in",
                       "settings");
    for (const auto& [m, peer] : peers_) {
        out += fmt::format("{:<6} {:>8} {:>10} {:>12} {}\n", m.node, m.pid, peer.msgs, peer.bytes,
                           peer.differs.empty() ? "same" : "differ: " + peer.differs);
    }
}

}  // namespace ipnfs::cluster
