// A network that spans hosts (`scope cluster`): its own ports' messages and
// membership go to the group, and everything is delivered in the order the
// group agreed, so every host's readers see one order (docs/cluster.md).
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "bus/after_unlock.hpp"
#include "bus/log.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

namespace {

Status engine_gone() {
    return Status::error(std::errc::not_connected,
                         "the network's connection to corosync ended (stats: cluster_engine); "
                         "'scope node' makes it a network of this host again");
}

Status no_quorum() {
    return Status::error(std::errc::network_down,
                         "this host's part of the cluster has no quorum (corosync votequorum); "
                         "sends resume when it has ('quorum on', docs/cluster.md)");
}

}  // namespace

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
        policy_->on_scope(false);
        for (const auto& [origin, member] : members_) {
            if (!is_self(origin)) policy_->on_remote(origin, nullptr);
        }
        members_.clear();
        inbound_.clear();
        return Status::success();
    }
    {
        MutexLock lock(mu_);
        if (replica_) return Status::success();
        if (Status s = idle("scope"); !s.ok()) return s;
        if (!policy_->spans_hosts()) {
            return Status::error(std::errc::not_supported,
                                 fmt::format("the {} policy cannot run on a cluster network: the "
                                             "hub, the group, the switch and plugins that "
                                             "declare cluster scope can (docs/cluster.md, what "
                                             "is built)",
                                             policy_->name()));
        }
        if (Status s = policy_->spans_hosts_now(); !s.ok()) return s;
        if (replicas_ == nullptr) {
            return Status::error(std::errc::not_supported,
                                 "this daemon has no cluster engine (docs/cluster.md)");
        }
    }
    MadeReplica made = replicas_->make(*this);
    if (!made.status.ok()) return made.status;
    MutexLock lock(mu_);
    // A port may have connected while the group was joined, or a setting
    // that cannot span hosts been made.
    Status s = idle("scope");
    if (s.ok()) s = policy_->spans_hosts_now();
    if (!s.ok()) {
        gone = std::move(made.replica);
        return s;
    }
    policy_->on_scope(true);
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

SendResult Network::send_cluster(const Connection& conn, MessageRef msg, SendWaiter* waiter) {
    if (msg->offload() != nullptr) {
        // The sending device cuts it into wire frames (see send()).
        return {Status::error(std::errc::not_supported,
                              "a cluster network carries plain frames, not superframes")};
    }
    if (Status s = quorum_allows(); !s.ok()) return {s};
    // A unicast or anycast is placed here, once: the choice travels with
    // the message, so every daemon agrees on it (Policy::place).
    route_.clear();
    route_.address = msg->address();
    if (route_.address.to == To::port && route_.address.upper == self_.node) {
        route_.address.upper = 0;  // this host's port
    }
    route_.load = &load_;
    policy_->place(conn.id, msg->payload(), route_);
    if (!route_.refused.ok()) {
        policy_->sent(conn.id, route_);  // the refusal ends the write
        return {std::move(route_.refused)};
    }
    if (route_.nowhere) {
        policy_->sent(conn.id, route_);  // dropped as on one host: the write succeeds
        return {Status::success()};
    }
    if (route_.rewritten) {
        // What the daemons order instead: the policy's form for every host.
        MessageRef rewritten = Message::make(msg->from(), route_.rewrite);
        rewritten->set_credentials(msg->credentials());
        rewritten->set_hops(msg->hops());
        msg = std::move(rewritten);
    }
    msg->set_address(route_.address);
    std::optional<Origin> target = route_.target;
    if (target && target->node == 0) {
        target->node = self_.node;
        target->daemon = self_.daemon;
    }
    if (settings_.lossless) {
        // Sends leave in order: behind a waiting one, any send waits.
        switch (senders_.empty() ? replica_->credit(msg->payload().size())
                                 : Replica::Credit::wait) {
            case Replica::Credit::gone:
                return {engine_gone()};
            case Replica::Credit::wait: {
                ++window_waits_;
                if (waiter != nullptr) waiter->target_ = target;
                SendResult parked = park(waiter, std::move(msg), *conn.port, false);
                if (parked.status.ok()) policy_->sent(conn.id, route_);
                return parked;
            }
            case Replica::Credit::now:
                break;
        }
    }
    policy_->sent(conn.id, route_);
    publish(*conn.port, msg, target);
    return {Status::success()};
}

Status Network::quorum_allows() {
    if (!settings_.quorum || replica_->quorate()) return Status::success();
    ++quorum_refusals_;
    Status s = no_quorum();
    log::limited(spdlog::level::info, {name_, "cluster-no-quorum"}, "a send was refused: {}",
                 s.reason);
    return s;
}

void Network::publish(Port& from, const MessageRef& msg, const std::optional<Origin>& target) {
    // A lossless network's replica takes every message its credit let go.
    if (!replica_->publish(*msg, target ? &*target : nullptr)) {
        ++cluster_drops_;
        from.counters.drops.fetch_add(1, std::memory_order_relaxed);
    }
}

void Network::credit_arrived() {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_ || !settings_.lossless) return;
        listener = listener_;
        drain_window(after);
        wake_writers(after);
    }
    after.run(listener);
}

void Network::drain_window(AfterUnlock& after) {
    while (!senders_.empty()) {
        SendWaiter& waiter = senders_.front();
        // Without quorum, parked sends fail as new ones do, rather than go
        // out later to a side that had none meanwhile.
        Status status = quorum_allows();
        Replica::Credit credit = status.ok() ? replica_->credit(waiter.message_->payload().size())
                                             : Replica::Credit::gone;
        if (credit == Replica::Credit::wait) break;
        senders_.pop_front();
        waiter.state_ = WaitState::done;
        if (status.ok() && credit == Replica::Credit::now) {
            publish(*waiter.from_, waiter.message_, waiter.target_);
        } else if (status.ok()) {
            status = engine_gone();
        }
        waiter.message_.reset();
        after.sent.emplace_back(&waiter, std::move(status));
    }
}

Port& Network::ordered_from(const Origin& origin) {
    // A port of this daemon is its own sender (the hub leaves it out);
    // another daemon's port is none of ours.
    bool own =
        origin.node == self_.node && origin.daemon == self_.daemon && origin.port < ports_.size();
    return own ? *ports_[origin.port] : cluster_origin_;
}

void Network::deliver_ordered(Port& from, const Origin& origin, const MessageRef& msg, Fit fit,
                              AfterUnlock& after) {
    if (fit == Fit::now) {
        deliver(from, msg, route_, after);
    } else {
        policy_->sent(from.id, route_);  // refused: nobody here gets it
    }
    if (settings_.lossless) replica_->consumed(origin, msg->payload().size());
}

void Network::ordered_data(const Origin& origin, std::span<const std::byte> payload,
                           const Address& address, const Credentials& sender, std::uint8_t hops,
                           std::optional<PortId> placed) {
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
        Port& from = ordered_from(origin);
        // Behind what already waits, everything waits: one order.
        Fit fit = Fit::wait;
        if (inbound_.empty()) {
            fit = placed ? placed_fits(*placed, msg, route_) : route_fits(from.id, msg, route_);
        }
        if (fit == Fit::wait) {
            if (inbound_.empty()) start_hold_clock();
            inbound_.push_back({Ordered::What::data, origin, std::move(msg), placed, {}, {}});
            return;
        }
        deliver_ordered(from, origin, msg, fit, after);
    }
    after.run(listener);
}

void Network::drain_inbound(AfterUnlock& after) {
    bool moved = false;
    while (!inbound_.empty()) {
        Ordered& next = inbound_.front();
        switch (next.what) {
            case Ordered::What::data: {
                Port& from = ordered_from(next.origin);
                Fit fit = next.placed ? placed_fits(*next.placed, next.msg, route_)
                                      : route_fits(from.id, next.msg, route_);
                if (fit == Fit::wait) {
                    // A new head's holdtime counts from now.
                    if (moved) head_since_ = Timer::Clock::now();
                    return;
                }
                deliver_ordered(from, next.origin, next.msg, fit, after);
                break;
            }
            case Ordered::What::join:
                member_joined(next.origin, next.creds, next.presence, after);
                break;
            case Ordered::What::leave:
                member_left(next.origin, after);
                break;
            case Ordered::What::gone:
                daemon_gone(next.origin.node, next.origin.daemon, after);
                break;
        }
        inbound_.pop_front();
        moved = true;
    }
}

void Network::ordered_join(const Origin& origin, const Credentials& opener,
                           const Presence& presence) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        if (!inbound_.empty()) {
            inbound_.push_back({Ordered::What::join, origin, nullptr, {}, opener, presence});
            return;
        }
        member_joined(origin, opener, presence, after);
    }
    after.run(listener);
}

void Network::member_joined(const Origin& origin, const Credentials& opener,
                            const Presence& presence, AfterUnlock& after) {
    // Announces of a known port are credited back too: their daemon charged them.
    if (settings_.lossless) replica_->consumed(origin, 0);
    auto [it, fresh] = members_.try_emplace(origin, Member{opener, presence});
    if (!fresh) {
        if (it->second.presence == presence) return;  // an announce of a known port
        it->second.presence = presence;
    }
    // This daemon's policy knows its own ports first hand.
    if (!is_self(origin)) policy_->on_remote(origin, &presence);
    if (fresh) emit_member(Kind::join, origin, opener, after);
}

void Network::ordered_leave(const Origin& origin) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        if (!inbound_.empty()) {
            inbound_.push_back({Ordered::What::leave, origin, nullptr, {}, {}, {}});
            return;
        }
        member_left(origin, after);
    }
    after.run(listener);
}

void Network::member_left(const Origin& origin, AfterUnlock& after) {
    if (settings_.lossless) replica_->consumed(origin, 0);
    if (members_.erase(origin) == 0) return;
    if (!is_self(origin)) policy_->on_remote(origin, nullptr);
    emit_member(Kind::leave, origin, {}, after);
}

void Network::ordered_gone(std::uint32_t node, std::uint32_t daemon) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_ || !replica_) return;
        listener = listener_;
        if (!inbound_.empty()) {
            inbound_.push_back({Ordered::What::gone, {node, daemon, 0}, nullptr, {}, {}, {}});
            return;
        }
        daemon_gone(node, daemon, after);
    }
    after.run(listener);
}

void Network::daemon_gone(std::uint32_t node, std::uint32_t daemon, AfterUnlock& after) {
    auto first = members_.lower_bound(Origin{node, daemon, 0});
    auto last = first;
    while (last != members_.end() && last->first.node == node && last->first.daemon == daemon) {
        if (!is_self(last->first)) policy_->on_remote(last->first, nullptr);
        emit_member(Kind::leave, last->first, {}, after);
        ++last;
    }
    members_.erase(first, last);
}

void Network::announce() {
    MutexLock lock(mu_);
    if (hung_up_ || !replica_) return;
    // Under mu_, as every join and leave is published: the group gets them
    // in the order the ports connected and disconnected.
    for (PortId id : connected_) {
        const Port& port = *ports_[id];
        replica_->rejoin(id, port.joined_by, port.published);
    }
}

Presence Network::presence_of(const Port& port) const {
    return {port.ring != nullptr, policy_->instance(port.id)};
}

void Network::sync_presence(Port& port) {
    if (!replica_ || !port.connected()) return;
    Presence now = presence_of(port);
    if (now == port.published) return;
    port.published = now;
    replica_->rejoin(port.id, port.joined_by, now);
}

std::string Network::shared_settings() const {
    MutexLock lock(mu_);
    // "quorum on" only when on: a network without it meets daemons that
    // predate the setting.
    return fmt::format("policy {} lossless {}{}", policy_->name(),
                       settings_.lossless ? "on" : "off", settings_.quorum ? " quorum on" : "");
}

bool Network::quorum_required() const {
    MutexLock lock(mu_);
    return settings_.quorum;
}

}  // namespace ipnfs::bus
