// A network that spans hosts (`scope cluster`): its own ports' messages and
// membership go to the group, and everything is delivered in the order the
// group agreed, so every host's readers see one order (docs/cluster.md).
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

Status Network::set_scope(Words w) {
    bool cluster = false;
    if (w[0] == "cluster") {
        cluster = true;
    } else if (w[0] != "node") {
        return Status::error(std::errc::invalid_argument,
                             fmt::format("scope is node or cluster, not '{}'", w[0]));
    }
    auto idle = [this](std::string_view what) REQUIRES(mu_) {
        if (hung_up_)
            return Status::error(std::errc::no_such_file_or_directory, "network is removed");
        std::uint32_t connected = connected_ports();
        if (connected == 0) return Status::success();
        return Status::error(std::errc::device_or_resource_busy,
                             fmt::format("{} can change only while no port is connected ({} "
                                         "connected)",
                                         what, connected));
    };
    std::unique_ptr<Replica> gone;  // left outside mu_: leaving may wait for the engine
    if (!cluster) {
        MutexLock lock(mu_);
        if (!replica_) return Status::success();
        if (Status s = idle("scope"); !s.ok()) return s;
        gone = std::move(replica_);
        clustered_.store(false, std::memory_order_relaxed);
        members_.clear();
        return Status::success();
    }
    {
        MutexLock lock(mu_);
        if (replica_) return Status::success();
        if (Status s = idle("scope"); !s.ok()) return s;
        if (policy_->name() != "hub") {
            return Status::error(std::errc::not_supported,
                                 fmt::format("a cluster network runs the hub policy for now, not "
                                             "{} (docs/cluster.md, what is built)",
                                             policy_->name()));
        }
        if (settings_.lossless) {
            return Status::error(std::errc::not_supported,
                                 "a cluster network is lossy for now: lossless across hosts "
                                 "needs flow control between the daemons (docs/cluster.md)");
        }
        if (replicas_ == nullptr) {
            return Status::error(std::errc::not_supported,
                                 "this daemon has no cluster engine (docs/cluster.md)");
        }
    }
    MadeReplica made = replicas_->make(*this);
    if (!made.status.ok()) return made.status;
    MutexLock lock(mu_);
    // A port may have connected while the group was joined.
    if (Status s = idle("scope"); !s.ok()) {
        gone = std::move(made.replica);
        return s;
    }
    self_ = made.replica->self();
    replica_ = std::move(made.replica);
    clustered_.store(true, std::memory_order_relaxed);
    return Status::success();
}

Status Network::cluster_allows(std::string_view what) const {
    if (!replica_) return Status::success();
    return Status::error(std::errc::not_supported,
                         fmt::format("{} cannot change on a cluster network: write 'scope node' "
                                     "first (docs/cluster.md)",
                                     what));
}

Status Network::publish(const Connection& conn, const MessageRef& msg) {
    if (msg->offload() != nullptr) {
        // The sending device cuts it into wire frames (see send()).
        return Status::error(std::errc::not_supported,
                             "a cluster network carries plain frames, not superframes");
    }
    if (!replica_->publish(*msg)) {
        ++cluster_drops_;
        conn.port->counters.drops.fetch_add(1, std::memory_order_relaxed);
    }
    return Status::success();
}

void Network::ordered_data(const Origin& origin, std::span<const std::byte> payload,
                           const Address& address, const Credentials& sender, std::uint8_t hops) {
    MessageRef msg = Message::make(origin.port, payload);
    msg->set_address(address);
    msg->set_hops(hops);
    msg->set_credentials(sender);
    msg->set_node(origin.node);
    thread_local AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        // A port of this daemon is its own sender (the hub leaves it out);
        // another daemon's port is none of ours.
        bool own = origin.node == self_.node && origin.daemon == self_.daemon &&
                   origin.port < ports_.size();
        Port& from = own ? *ports_[origin.port] : cluster_origin_;
        Fit fit = route_fits(from.id, msg, route_);
        if (fit == Fit::refused || fit == Fit::plain_only) {
            policy_->sent(from.id, route_);
            return;
        }
        deliver(from, msg, route_, after);
    }
    after.run(listener);
}

void Network::ordered_join(const Origin& origin, const Credentials& opener) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        if (!members_.emplace(origin, opener).second) return;  // an announce of a known port
        emit_member(Kind::join, origin, opener, after);
    }
    after.run(listener);
}

void Network::ordered_leave(const Origin& origin) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        if (members_.erase(origin) == 0) return;
        emit_member(Kind::leave, origin, {}, after);
    }
    after.run(listener);
}

void Network::ordered_gone(std::uint32_t node, std::uint32_t daemon) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        auto first = members_.lower_bound(Origin{node, daemon, 0});
        auto last = first;
        while (last != members_.end() && last->first.node == node && last->first.daemon == daemon) {
            emit_member(Kind::leave, last->first, {}, after);
            ++last;
        }
        members_.erase(first, last);
    }
    after.run(listener);
}

void Network::announce() {
    MutexLock lock(mu_);
    if (hung_up_ || !replica_) return;
    // Under mu_, as every join and leave is published: the group gets them
    // in the order the ports connected and disconnected.
    for (PortId id : connected_) replica_->announce_join(id, ports_[id]->joined_by);
}

std::string Network::shared_settings() const {
    MutexLock lock(mu_);
    return fmt::format("policy {} lossless {}", policy_->name(), settings_.lossless ? "on" : "off");
}

}  // namespace ipnfs::bus
