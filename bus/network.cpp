#include "bus/network.hpp"

#include <malloc.h>

#include <algorithm>
#include <ctime>
#include <utility>

#include <fmt/format.h>

#include "bus/after_unlock.hpp"
#include "bus/log.hpp"

namespace ipnfs::bus {

namespace {

std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

// Freed message buffers stay in malloc's arenas; a disconnect that frees this
// much hands the free pages back to the system.
constexpr std::uint64_t kTrimAfter = 1U << 20;

// Whether a lossless send to the port would not wait for it: it has room,
// or does not hold senders back (no reader, dropwhenfull, stalled).  Reads
// fields the network's mu_ guards: called under it.
bool takes_now(const Port& port) {
    return !port.ring || port.drop_when_full || port.stalled || port.has_room();
}

void count_out(Port& port, const MessageRef& msg) {
    if (msg->is_event()) return;
    port.counters.msgs_out.fetch_add(1, std::memory_order_relaxed);
    port.counters.bytes_out.fetch_add(msg->payload().size(), std::memory_order_relaxed);
}

}  // namespace

Network::Network(std::string name, const Settings& settings, const PolicyCatalog& catalog,
                 std::unique_ptr<Policy> policy)
    : name_(std::move(name)), catalog_(catalog), settings_(settings), policy_(std::move(policy)) {
    ports_.reserve(settings_.ports);
    while (ports_.size() < settings_.ports) {
        ports_.push_back(std::make_unique<Port>(static_cast<PortId>(ports_.size())));
    }
    free_.resize(settings_.ports);
    policy_->on_ports(settings_.ports);
    policy_->on_network(name_);
    lossless_.store(settings_.lossless, std::memory_order_relaxed);
    // Rows to list: their `run` would gather into a list that ends here.
    AfterUnlock none;
    commands_ = command_rows(none);
    unlocked_commands_ = {
        // It connects the network to other hosts, as a TAP or a grab
        // connects it to the host's own interfaces.
        {.verb = "scope",
         .args = "node|cluster",
         .nargs = 1,
         .help = "cluster: one bus with the same network on every host of the Corosync "
                 "cluster (docs/cluster.md); only while no port is connected",
         .run = [this](Words w) { return set_scope(w); },
         .net_admin = true},
    };
    commands_.insert(commands_.end(), unlocked_commands_.begin(), unlocked_commands_.end());
    for (Command& row : commands_) row.run = nullptr;
}

Network::~Network() {
    // The replica calls into the network until it is gone: it goes first,
    // outside mu_ (leaving the group may wait for the engine).
    std::unique_ptr<Replica> replica;
    {
        MutexLock lock(mu_);
        replica = std::move(replica_);
    }
    replica.reset();
    Timer::shared().cancel(hold_timer_);
    Timer::shared().cancel(policy_timer_);
    // The extension's connections point into ports_: they go first.
    if (extension_ && !extension_hung_up_.exchange(true)) extension_->hang_up();
    extension_.reset();
}

void Network::set_extension(std::unique_ptr<Extension> extension) {
    extension_ = std::move(extension);
}

void Network::set_bounds(const Bounds& bounds) {
    MutexLock lock(mu_);
    bounds_ = bounds;
}

void Network::set_access(const Access& access) {
    {
        MutexLock lock(mu_);
        owner_uid_ = access.uid;
        // Messages queued now stay charged to the budget they were charged to.
        if (budgets_) owner_budget_ = budgets_->owner(access.uid);
    }
    if (extension_) extension_->set_access(access);
}

void Network::set_budgets(std::shared_ptr<Budgets> budgets) {
    MutexLock lock(mu_);
    budgets_ = std::move(budgets);
    held_.set_limit(budgets_->limits().network);
    owner_budget_ = budgets_->owner(owner_uid_);
}

Status Network::create(std::string name, const Settings& settings, const PolicyCatalog& catalog,
                       std::string_view policy, std::shared_ptr<Network>& out) {
    MadePolicy made = catalog.make(policy);
    if (!made.status.ok()) return made.status;
    out = std::make_shared<Network>(std::move(name), settings, catalog, std::move(made.policy));
    return Status::success();
}

PortId Network::port_count() const {
    MutexLock lock(mu_);
    return static_cast<PortId>(ports_.size());
}

Status Network::attach(Port& port, PortId id, bool reads, bool writes, Connection& out,
                       const Credentials& opener, AfterUnlock& after) {
    bool joined = !port.connected();
    bool new_reader = reads && port.readers == 0;
    bool new_writer = writes && port.writers == 0;
    // On a cluster network the join is the group's to order, before any
    // message of the port, and with it whether the port receives; when the
    // group is that far behind, the open fails.
    if (replica_) {
        Presence presence{port.ring != nullptr || new_reader, policy_->instance(id)};
        bool taken = joined ? replica_->publish_join(id, opener, presence)
                            : !new_reader || replica_->credit(0) == Replica::Credit::now;
        if (!taken) {
            return Status::error(std::errc::resource_unavailable_try_again,
                                 "the cluster is not taking messages now (its engine or a slow "
                                 "host is behind): try again");
        }
        if (joined) port.published = presence;
    }
    if (new_reader) {
        if (Status s = charge_ring(port); !s.ok()) {
            if (joined && replica_) replica_->publish_leave(id);
            return s;
        }
        port.capacity = settings_.queue;
        port.ring = std::make_unique<Port::Ring>(port.capacity);
        policy_->on_attach(id);
        policy_tick(after);
    }
    port.readers += reads ? 1 : 0;
    port.writers += writes ? 1 : 0;
    receiving_ports_ += new_reader ? 1 : 0;
    sending_ports_ += new_writer ? 1 : 0;
    track(port);
    out = Connection{id, reads, writes, &port};
    if (joined) port.joined_by = opener;
    sync_presence(port);  // a writer's port that now receives
    // A port that starts receiving events gets the snapshot, which already
    // holds the new counts; everyone else hears of the change.
    bool snapshot = new_reader && port.events;
    if (joined && !replica_) emit(Kind::join, id, false, after);
    if (new_reader || new_writer) emit(Kind::counts, id, !snapshot, after);
    if (snapshot) send_snapshot(port, id, after);
    // A new recipient with room may be where a parked or polled send can go
    // (another holder of an anycast instance).
    if (new_reader) room_freed(after);
    return Status::success();
}

Status Network::connect(PortId id, bool reads, bool writes, Connection& out, bool exclusive,
                        const Credentials& opener) {
    AfterUnlock after;
    Listener* listener = nullptr;
    Status s;
    {
        MutexLock lock(mu_);
        if (hung_up_)
            return Status::error(std::errc::no_such_file_or_directory, "network is removed");
        if (id >= ports_.size()) {
            return Status::error(
                std::errc::no_such_file_or_directory,
                fmt::format("no port {}: the network has {} ports", id, ports_.size()));
        }
        Port& port = *ports_[id];
        if (port.exclusive || (exclusive && port.connected())) {
            return Status::error(std::errc::device_or_resource_busy,
                                 fmt::format("port {} is in use{}", id,
                                             port.exclusive ? " (held exclusively)" : ""));
        }
        s = attach(port, id, reads, writes, out, opener, after);
        if (s.ok()) port.exclusive = exclusive;
        listener = listener_;
    }
    after.run(listener);
    return s;
}

Status Network::connect_any(bool reads, bool writes, Connection& out, bool exclusive,
                            const Credentials& opener) {
    AfterUnlock after;
    Listener* listener = nullptr;
    Status s = Status::error(std::errc::no_space_on_device, "");
    {
        MutexLock lock(mu_);
        if (hung_up_)
            return Status::error(std::errc::no_such_file_or_directory, "network is removed");
        if (PortId id = free_.lowest(); id < ports_.size()) {
            s = attach(*ports_[id], id, reads, writes, out, opener, after);
            if (s.ok()) ports_[id]->exclusive = exclusive;
        }
        if (s.code == std::errc::no_space_on_device) {
            s.reason = fmt::format("all {} ports are connected", ports_.size());
        }
        listener = listener_;
    }
    after.run(listener);
    return s;
}

Status Network::add_observer(bool capture, Port*& out) {
    if (hung_up_) return Status::error(std::errc::no_such_file_or_directory, "network is removed");
    std::uint32_t held = capture ? capture_readers_
                                 : static_cast<std::uint32_t>(observers_.size()) - capture_readers_;
    std::uint32_t bound = capture ? bounds_.capture_readers : bounds_.event_readers;
    if (held >= bound) {
        return Status::error(
            std::errc::too_many_files_open_in_system,
            fmt::format("the network has {} {} readers, the most the mount allows (-o {}={})", held,
                        capture ? "capture" : "events",
                        capture ? "max_capture_readers" : "max_event_readers", bound));
    }
    PortId id = 0;
    if (!free_observer_ids_.empty()) {
        id = free_observer_ids_.back();
        free_observer_ids_.pop_back();
    } else if (next_observer_ >= Limits::kFirstObserver) {
        id = next_observer_++;  // 0 after the last id: the range is used up
    } else {
        // Unreachable while the bounds hold (2 x 65536 ids at most).
        return Status::error(std::errc::too_many_files_open_in_system,
                             "every observer id is in use");
    }
    out = &observers_.emplace_back(id);
    out->readers = 1;
    return Status::success();
}

Status Network::connect_observer(Connection& out) {
    AfterUnlock after;
    MutexLock lock(mu_);
    Port* observer = nullptr;
    if (Status s = add_observer(false, observer); !s.ok()) return s;
    observer->events = true;
    observer->capacity = settings_.queue;
    observer->ring = std::make_unique<Port::Ring>(observer->capacity);
    out = Connection{observer->id, true, false, observer};
    send_snapshot(*observer, observer->id, after);  // nobody waits on a new observer yet
    return Status::success();
}

Status Network::connect_capture(Connection& out) {
    MutexLock lock(mu_);
    Port* reader = nullptr;
    if (Status s = add_observer(true, reader); !s.ok()) return s;
    reader->capture = true;
    reader->capacity = Limits::kCaptureQueue;
    reader->ring = std::make_unique<Port::Ring>(reader->capacity);
    ++capture_readers_;
    out = Connection{reader->id, true, false, reader};
    return Status::success();
}

void Network::set_next_observer_for_test(PortId id) {
    MutexLock lock(mu_);
    next_observer_ = id;
}

void Network::track(Port& port) {
    bool event_reader = port.events && port.ring;
    if (event_reader && port.event_slot == Port::kNoSlot) {
        port.event_slot = static_cast<std::uint32_t>(event_ports_.size());
        event_ports_.push_back(&port);
    } else if (!event_reader && port.event_slot != Port::kNoSlot) {
        Port* last = event_ports_.back();
        event_ports_[port.event_slot] = last;
        last->event_slot = port.event_slot;
        event_ports_.pop_back();
        port.event_slot = Port::kNoSlot;
    }
    bool connected = port.connected();
    if (connected && port.connected_slot == Port::kNoSlot) {
        port.connected_slot = static_cast<std::uint32_t>(connected_.size());
        connected_.push_back(port.id);
        free_.set_free(port.id, false);
    } else if (!connected && port.connected_slot != Port::kNoSlot) {
        PortId last = connected_.back();
        connected_[port.connected_slot] = last;
        ports_[last]->connected_slot = port.connected_slot;
        connected_.pop_back();
        port.connected_slot = Port::kNoSlot;
        free_.set_free(port.id, true);
    }
}

bool Network::ethernet() const {
    MutexLock lock(mu_);
    return policy_->ethernet();
}

std::uint64_t Network::drops(const Connection& conn) {
    return conn.port->counters.drops.load(std::memory_order_relaxed);
}

void Network::disconnect(const Connection& conn) {
    Port& port = *conn.port;
    std::uint64_t held_before = held_.held();
    AfterUnlock after;
    Listener* listener = nullptr;
    std::list<Port> gone;  // an observer's port: destroyed after its read_mu is unlocked
    if (conn.reads) {
        // A reader's queue may be discarded: no other reader of the port
        // may be taking from it meanwhile.
        MutexLock consumer(port.read_mu);
        MutexLock lock(mu_);
        listener = listener_;
        if (conn.observer()) {
            remove_observer(port, after, gone);
        } else {
            --port.readers;
            bool lost_reader = port.readers == 0;
            if (lost_reader) stop_receiving(port, after);
            leave(conn, lost_reader, after);
        }
    } else {
        MutexLock lock(mu_);
        listener = listener_;
        leave(conn, false, after);
    }
    after.run(listener);
    std::uint64_t held_after = held_.held();
    if (held_before > held_after && held_before - held_after >= kTrimAfter) malloc_trim(0);
}

void Network::remove_observer(Port& port, AfterUnlock& after, std::list<Port>& gone) {
    if (port.capture) --capture_readers_;
    discard_queue(port, after);
    free_observer_ids_.push_back(port.id);
    auto it = std::find_if(observers_.begin(), observers_.end(),
                           [&](const Port& p) { return &p == &port; });
    gone.splice(gone.end(), observers_, it);
}

void Network::stop_receiving(Port& port, AfterUnlock& after) {
    policy_->on_detach(port.id);
    port.takes_offload = false;
    policy_tick(after);
    discard_queue(port, after);
    --receiving_ports_;
}

void Network::leave(const Connection& conn, bool lost_reader, AfterUnlock& after) {
    Port& port = *conn.port;
    port.writers -= conn.writes ? 1 : 0;
    bool lost_writer = conn.writes && port.writers == 0;
    if (lost_writer) --sending_ports_;
    track(port);
    if (!port.connected()) {
        port.exclusive = false;
        if (replica_) {
            replica_->publish_leave(conn.id);  // after every message it published
        } else {
            emit(Kind::leave, conn.id, false, after);
        }
        if (port.configuration) reset_port(port, after);
    } else {
        sync_presence(port);  // its last reader went: it receives no more
    }
    if (lost_reader || lost_writer) emit(Kind::counts, conn.id, true, after);
    // One recipient less may let parked sends go.
    if (lost_reader) room_freed(after);
}

// ---- delivery ----

// A policy asks from its route(), which runs under mu_: the analysis does
// not follow the virtual call, so it is told.
std::uint32_t Network::QueueLoad::queued(PortId port) const {
    net.mu_.assert_held();
    return port < net.ports_.size() ? net.ports_[port]->queued() : 0;
}

std::uint32_t Network::QueueLoad::capacity(PortId port) const {
    net.mu_.assert_held();
    if (port >= net.ports_.size() || !net.ports_[port]->ring) return 0;
    return net.ports_[port]->capacity;
}

Network::Fit Network::route_fits(PortId from, const MessageRef& msg, Route& route) {
    // A full pool is checked first: nothing to route while nothing can go.
    if (settings_.lossless && pool_used_ >= settings_.pool) return Fit::wait;
    route.clear();
    route.address = msg->address();
    route.load = &load_;
    if (from == cluster_origin_.id) {
        // Another daemon's port: a policy that learns where senders are
        // (the switch) tells them apart.
        route.origin = {msg->node(), 0, msg->from()};
    }
    policy_->route(from, msg->payload(), route);
    if (!route.refused.ok()) return Fit::refused;
    if (msg->offload() != nullptr && !takes_offload(route)) {
        route.refused = Status::error(std::errc::not_supported,
                                      "a recipient takes only plain frames, not superframes or "
                                      "frames with a checksum left to fill in");
        return Fit::plain_only;
    }
    if (!settings_.lossless) return Fit::now;
    auto fits = [&](PortId id) REQUIRES(mu_) { return takes_now(*ports_[id]); };
    bool all = std::ranges::all_of(route.to, fits) &&
               std::ranges::all_of(route.variants(), [&](const Route::Variant& v) {
                   return std::ranges::all_of(v.to, fits);
               });
    return all && budget_fits(msg->held_bytes()) ? Fit::now : Fit::wait;
}

Network::Fit Network::placed_fits(PortId id, const MessageRef& msg, Route& route) {
    if (settings_.lossless && pool_used_ >= settings_.pool) return Fit::wait;
    route.clear();
    if (id >= ports_.size() || !ports_[id]->ring) {
        // It stopped receiving after its sender's daemon placed the message.
        ++cluster_unreachable_;
        route.refused =
            Status::error(std::errc::host_unreachable, fmt::format("port {} does not receive", id));
        return Fit::refused;
    }
    route.to.push_back(id);
    if (!settings_.lossless) return Fit::now;
    return takes_now(*ports_[id]) && budget_fits(msg->held_bytes()) ? Fit::now : Fit::wait;
}

bool Network::takes_offload(const Route& route) const {
    // A capture reader is a file reader too; a rewritten copy (a VLAN tag
    // added or taken off) would need its offsets moved, which only netdev/
    // knows how to do: both get plain frames.
    if (capture_readers_ > 0) return false;
    if (std::ranges::any_of(route.variants(),
                            [](const Route::Variant& v) { return !v.to.empty(); })) {
        return false;
    }
    return std::ranges::all_of(route.to, [&](PortId id) REQUIRES(mu_) {
        const Port& port = *ports_[id];
        return !port.ring || port.takes_offload;
    });
}

void Network::accept_offload(const Connection& conn) {
    MutexLock lock(mu_);
    if (conn.reads && !hung_up_) conn.port->takes_offload = true;
}

bool Network::budget_fits(std::uint64_t bytes) const {
    // A network with nothing queued may always queue one message: no release
    // of its own would wake a send waiting for another network's bytes.
    if (held_.queued() == 0) return true;
    return held_.queue_fits(bytes) &&
           (owner_budget_ == nullptr || owner_budget_->queue_fits(bytes));
}

Status Network::charge_ring(Port& port) {
    // A reader's ring is memory a manager's `queue` decides: it counts as held.
    std::uint64_t bytes = std::uint64_t{settings_.queue} * sizeof(MessageRef);
    bool fits = held_.try_charge(bytes);
    if (fits && owner_budget_ != nullptr && !owner_budget_->try_charge(bytes)) {
        held_.release(bytes);
        fits = false;
    }
    if (!fits) {
        return Status::error(std::errc::no_buffer_space,
                             fmt::format("a queue of {} messages ({} bytes) does not fit in the "
                                         "bytes this network or its owner may hold (held_bytes "
                                         "{}, owner_held {})",
                                         settings_.queue, bytes, held_.held(),
                                         owner_budget_ != nullptr ? owner_budget_->held() : 0));
    }
    port.ring_bytes = bytes;
    port.ring_owner = owner_budget_;
    return Status::success();
}

bool Network::hold(const MessageRef& msg) {
    if (msg->pending_copies.fetch_add(1, std::memory_order_acq_rel) != 0) return true;
    std::uint64_t bytes = msg->held_bytes();
    if (settings_.lossless) {
        // Routed all or none: route_fits() checked the budgets for the whole send.
        held_.charge(bytes);
        if (owner_budget_ != nullptr) owner_budget_->charge(bytes);
        ++pool_used_;
    } else if (!held_.try_charge(bytes)) {
        msg->pending_copies.fetch_sub(1, std::memory_order_relaxed);
        return false;
    } else if (owner_budget_ != nullptr && !owner_budget_->try_charge(bytes)) {
        held_.release(bytes);
        msg->pending_copies.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    // Read by whoever drops the last copy: the queue's push publishes them.
    msg->charged_network = &held_;
    msg->charged_owner = owner_budget_;
    return true;
}

bool Network::unhold(Message& msg) {
    // Read while this copy still counts: a sender rewrites them only after
    // the count went to 0 (its next first copy), never concurrently.
    ByteBudget* network = msg.charged_network;
    ByteBudget* owner = msg.charged_owner;
    if (msg.pending_copies.fetch_sub(1, std::memory_order_acq_rel) != 1) return false;
    network->release(msg.held_bytes());
    if (owner != nullptr) owner->release(msg.held_bytes());
    return true;
}

void Network::deliver(Port& from, const MessageRef& msg, const Route& route, AfterUnlock& after) {
    msg->set_seq(next_seq_++);
    if (capture_readers_ > 0) capture(msg, after);
    auto fan_out = [&](const std::vector<PortId>& to, const MessageRef& copy) REQUIRES(mu_) {
        for (PortId id : to) {
            Port& port = *ports_[id];
            if (port.ring && !enqueue(port, copy, after)) {
                port.counters.drops.fetch_add(1, std::memory_order_relaxed);
                if (port.stalled) ++port.lost;
            }
        }
    };
    fan_out(route.to, msg);
    for (const Route::Variant& v : route.variants()) {
        if (v.to.empty()) continue;
        if (v.payload.size() > Limits::kMaxMtu) {
            // No reader could take it whole (a tag added to a frame of the
            // largest size): lost, and counted, at each recipient.
            for (PortId id : v.to)
                ports_[id]->counters.drops.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        MessageRef copy = Message::make(from.id, v.payload);
        copy->set_address(msg->address());
        copy->set_hops(msg->hops());
        copy->set_credentials(msg->credentials());
        copy->set_seq(msg->seq());  // one send: one place in the order
        fan_out(v.to, copy);
    }
    from.counters.msgs_in.fetch_add(1, std::memory_order_relaxed);
    from.counters.bytes_in.fetch_add(msg->payload().size(), std::memory_order_relaxed);
    policy_->sent(from.id, route);
    if (route.tick) policy_tick(after);
}

void Network::capture(const MessageRef& msg, AfterUnlock& after) {
    // The clock is read only while someone captures: no cost otherwise.
    msg->set_time_ns(now_ns());
    for (Port& reader : observers_) {
        if (!reader.capture) continue;
        if (enqueue(reader, msg, after)) {
            ++captured_;
        } else {
            ++capture_drops_;
            reader.counters.drops.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

bool Network::enqueue(Port& port, const MessageRef& msg, AfterUnlock& after) {
    if (!port.waiters.empty()) {
        Waiter& waiter = port.waiters.front();
        port.waiters.pop_front();
        waiter.state_ = WaitState::done;
        --parked_readers_;
        count_out(port, msg);
        after.received.emplace_back(&waiter, Received{Outcome::message, msg});
        return true;
    }
    if (msg->is_event()) {
        if (!port.overflow.empty() || !port.ring->push(msg)) {
            hold_event(port, msg);
        }
    } else {
        if (!port.overflow.empty() || port.ring->write_available() == 0) return false;
        if (port.capture && port.capture_bytes.load(std::memory_order_relaxed) + msg->held_bytes() >
                                Limits::kCaptureBytes) {
            return false;
        }
        // A capture reader's copy never holds the pool or the budgets: it
        // must not slow senders.
        if (!port.capture && !hold(msg)) {
            ++over_limit_drops_;
            return false;
        }
        if (port.capture)
            port.capture_bytes.fetch_add(msg->held_bytes(), std::memory_order_relaxed);
        port.ring->push(msg);  // room checked above; senders are serialized by mu_
    }
    if (port.watched) {
        port.watched = false;
        after.ready.push_back(port.id);
    }
    return true;
}

bool Network::unqueued(Port& port, const MessageRef& msg) {
    if (port.capture) {
        port.capture_bytes.fetch_sub(msg->held_bytes(), std::memory_order_relaxed);
        return false;  // a capture reader's copy holds nothing (see enqueue())
    }
    return !msg->is_event() && unhold(*msg);
}

MessageRef Network::take_lockfree(Port& port, const Fits* fits) {
    // Nothing here touches what mu_ guards: the ring's consumer side is the
    // caller's (read_mu), the counts it releases are atomics.
    if (port.ring->read_available() == 0) return nullptr;
    if (fits != nullptr && !(*fits)(*port.ring->front())) return nullptr;
    MessageRef msg;
    port.ring->pop(msg);
    (void)unqueued(port, msg);  // a lossy network frees no pool
    return msg;
}

MessageRef Network::take_locked(Port& port, const Fits* fits, AfterUnlock& after) {
    MessageRef msg;
    if (port.ring->read_available() > 0) {
        if (fits != nullptr && !(*fits)(*port.ring->front())) return nullptr;
        port.ring->pop(msg);
    } else if (!port.overflow.empty()) {
        // Events that found the ring full: only under mu_, which their
        // producers hold too.
        if (fits != nullptr && !(*fits)(*port.overflow.front())) return nullptr;
        msg = port.overflow.take_front();
    } else {
        return nullptr;
    }
    bool last_copy = unqueued(port, msg);
    if (!port.capture) release(last_copy, after);
    return msg;
}

void Network::release(bool last_copy, AfterUnlock& after) {
    if (!settings_.lossless) return;
    // Events use no pool, but they do take queue slots: either frees room.
    if (last_copy) --pool_used_;
    room_freed(after);
}

void Network::room_freed(AfterUnlock& after) {
    if (!settings_.lossless) return;
    if (replica_) {
        drain_inbound(after);  // its senders_ wait for credit, not for room here
        return;
    }
    bool moved = false;
    while (!senders_.empty()) {
        SendWaiter& waiter = senders_.front();
        Fit fit = route_fits(waiter.from_->id, waiter.message_, route_);
        if (fit == Fit::wait) break;
        senders_.pop_front();
        moved = true;
        waiter.state_ = WaitState::done;
        // While it waited, what it was addressed to may have gone.
        // A plain_only refusal loses the frame (a reader that takes only
        // plain frames came while it waited): counted as a drop by its sender.
        if (fit == Fit::now) {
            deliver(*waiter.from_, waiter.message_, route_, after);
        } else if (fit == Fit::refused) {
            policy_->sent(waiter.from_->id, route_);  // the refusal ends the write
        }
        waiter.message_.reset();
        after.sent.emplace_back(&waiter, std::move(route_.refused));
    }
    // A new head's holdtime counts from now (the armed deadline is earlier).
    if (moved && !senders_.empty()) head_since_ = Timer::Clock::now();
    wake_writers(after);
}

void Network::wake_writers(AfterUnlock& after) {
    // Pollers waiting for POLLOUT look again; whoever still cannot send
    // re-arms with its next poll.
    for (PortId id : write_watchers_) {
        after.ready.push_back(id);
        if (id < ports_.size()) ports_[id]->watched_out = false;
    }
    write_watchers_.clear();
}

void Network::discard_queue(Port& port, AfterUnlock& after) {
    while (MessageRef msg = take_locked(port, nullptr, after)) {
        if (!msg->is_event() && !port.capture) {
            port.counters.drops.fetch_add(1, std::memory_order_relaxed);
        }
    }
    port.ring.reset();
    if (port.ring_bytes > 0) {
        held_.release(port.ring_bytes);
        if (port.ring_owner != nullptr) port.ring_owner->release(port.ring_bytes);
        port.ring_bytes = 0;
        port.ring_owner = nullptr;
    }
    port.capacity = 0;
    port.watched = false;
    port.stalled = false;
    port.lost = 0;
}

SendResult Network::send(const Connection& conn, std::span<const std::byte> payload,
                         SendWaiter* waiter, const Address& address, std::uint8_t hops,
                         const Credentials& sender, const Offload* offload) {
    if (!conn.writes) {
        return {Status::error(std::errc::bad_file_descriptor, "not open for writing")};
    }
    std::uint32_t largest = offload != nullptr ? Limits::kMaxSuperframe : Limits::kMaxMtu;
    if (payload.size() > largest) {
        return {Status::error(std::errc::message_size,
                              fmt::format("message of {} bytes exceeds the largest MTU ({})",
                                          payload.size(), largest))};
    }
    // A superframe is bounded by the frames it stands for.
    std::size_t wire_bytes = offload != nullptr ? offload->wire_bytes : payload.size();
    MessageRef msg = Message::make(conn.id, payload, Kind::data, offload);
    msg->set_address(address);
    msg->set_hops(hops);
    msg->set_credentials(sender);
    thread_local AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_) return {Status::error(std::errc::broken_pipe, "network is removed")};
        if (wire_bytes > settings_.mtu) {
            return {Status::error(std::errc::message_size,
                                  fmt::format("message of {} bytes exceeds the network MTU ({})",
                                              wire_bytes, settings_.mtu))};
        }
        if (replica_) return send_cluster(conn, std::move(msg), waiter);
        Fit fit = route_fits(conn.id, msg, route_);
        if (fit == Fit::plain_only) return {std::move(route_.refused)};
        if (fit == Fit::refused) {
            policy_->sent(conn.id, route_);  // the refusal ends the write
            return {std::move(route_.refused)};
        }
        if (settings_.lossless && (!senders_.empty() || fit == Fit::wait)) {
            return park(waiter, std::move(msg), *conn.port, true);
        }
        deliver(*conn.port, msg, route_, after);
        listener = listener_;
    }
    after.run(listener);
    return {Status::success()};
}

SendResult Network::park(SendWaiter* waiter, MessageRef msg, Port& from, bool clock) {
    if (waiter == nullptr) {
        return {Status::error(std::errc::resource_unavailable_try_again,
                              "lossless network is full: the send would wait")};
    }
    if (waiter->state_ == WaitState::cancelled) {
        return {Status::error(std::errc::interrupted, "interrupted")};
    }
    waiter->state_ = WaitState::parked;
    waiter->message_ = std::move(msg);
    waiter->from_ = &from;
    if (clock && senders_.empty()) start_hold_clock();
    senders_.push_back(*waiter);
    return {Status::success(), true};
}

bool Network::cancel(SendWaiter& waiter) {
    AfterUnlock after;
    Listener* listener = nullptr;
    bool removed = false;
    {
        MutexLock lock(mu_);
        listener = listener_;
        switch (waiter.state_) {
            case WaitState::parked:
                if (&senders_.front() == &waiter) head_since_ = Timer::Clock::now();
                senders_.erase(senders_.iterator_to(waiter));
                waiter.state_ = WaitState::done;
                waiter.message_.reset();
                // It may have held back the ones behind it.
                if (replica_) {
                    drain_window(after);
                } else {
                    room_freed(after);
                }
                removed = true;
                break;
            case WaitState::idle:
                waiter.state_ = WaitState::cancelled;
                break;
            case WaitState::done:
            case WaitState::cancelled:
                break;
        }
    }
    after.run(listener);
    return removed;
}

// Three regimes, one after the other: the ring under read_mu alone
// (take_lockfree), the rest under read_mu and mu_ (receive_locked), and the
// completions after both (AfterUnlock::run).
Received Network::receive(const Connection& conn, Waiter* waiter, const Fits* fits) {
    if (!conn.reads) return {Outcome::would_block, nullptr};
    Port& port = *conn.port;
    AfterUnlock after;
    Listener* listener = nullptr;
    Received result{Outcome::would_block, nullptr};
    {
        MutexLock consumer(port.read_mu);
        // The ring exists: it was made under mu_ when the port got its first
        // reader, before that reader's connect() returned, and lives until
        // the last reader disconnects, which cannot happen while conn, one
        // of them, is receiving.
        if (takes_lockfree(port)) {
            if (MessageRef msg = take_lockfree(port, fits)) {
                count_out(port, msg);
                return {Outcome::message, std::move(msg)};
            }
        }
        MutexLock lock(mu_);
        listener = listener_;
        result = receive_locked(port, waiter, fits, after);
    }
    after.run(listener);
    return result;
}

bool Network::takes_lockfree(const Port& port) const {
    // A lossless network's readers take only under mu_: freed room, the
    // pool and parked senders then meet under one lock, so a sender cannot
    // park just after the room it waits for was freed.  A capture reader's
    // queue is outside that (its copies hold neither pool nor senders).
    return !lossless_.load(std::memory_order_relaxed) || port.capture;
}

Received Network::receive_locked(Port& port, Waiter* waiter, const Fits* fits, AfterUnlock& after) {
    // Reading again ends a stall: the reader is back.
    if (port.stalled) resume(port, after);
    bool next_does_not_fit = fits != nullptr && port.queued() > 0;
    if (MessageRef msg = take_locked(port, fits, after)) {
        count_out(port, msg);
        return {Outcome::message, std::move(msg)};
    }
    if (hung_up_ && !next_does_not_fit) return {Outcome::hung_up, nullptr};
    if (waiter == nullptr || next_does_not_fit) return {Outcome::would_block, nullptr};
    if (waiter->state_ == WaitState::cancelled) return {Outcome::cancelled, nullptr};
    if (waiter->state_ == WaitState::parked) {
        // Already in a port's list of waiters: linking it again would corrupt
        // that list (a later send or cancel would unlink garbage).  It stays
        // where it is and is still completed exactly once; the caller lost
        // track of it, which is its bug: said loudly, never made worse here.
        log::error({name_, port.id, "waiter-parked-twice"},
                   "a receive waiter that is already parked was handed to the network again");
        return {Outcome::parked, nullptr};
    }
    // Parks only with nothing queued, looked at under mu_, where every sender
    // queues: a port never has both queued messages and parked readers.
    waiter->state_ = WaitState::parked;
    port.waiters.push_back(*waiter);
    ++parked_readers_;
    return {Outcome::parked, nullptr};
}

bool Network::cancel(const Connection& conn, Waiter& waiter) {
    MutexLock lock(mu_);
    switch (waiter.state_) {
        case WaitState::parked:
            conn.port->waiters.erase(conn.port->waiters.iterator_to(waiter));
            waiter.state_ = WaitState::done;
            --parked_readers_;
            return true;
        case WaitState::idle:
            waiter.state_ = WaitState::cancelled;
            return false;
        case WaitState::done:
        case WaitState::cancelled:
            return false;
    }
    return false;
}

bool Network::charge_rest(const Connection& conn, std::uint64_t bytes, Charge& out) {
    MutexLock lock(mu_);
    if (held_.try_keep(bytes)) {
        if (owner_budget_ == nullptr || owner_budget_->try_keep(bytes)) {
            out = Charge(&held_, owner_budget_, bytes);
            return true;
        }
        held_.release_kept(bytes);
    }
    ++over_limit_drops_;
    conn.port->counters.drops.fetch_add(1, std::memory_order_relaxed);
    return false;
}

bool Network::poll_readable(const Connection& conn) {
    MutexLock lock(mu_);
    // Armed even when readable now: an edge-triggered epoll reads until
    // EAGAIN without polling again, and must still hear of the next message.
    conn.port->watched = true;
    return hung_up_ || conn.port->queued() > 0;
}

bool Network::poll_writable(const Connection& conn, bool framed) {
    MutexLock lock(mu_);
    if (!conn.writes) return false;
    if (hung_up_ || !settings_.lossless) return true;
    // Armed either way, for the same reason as poll_readable.
    if (!conn.port->watched_out) {
        conn.port->watched_out = true;
        write_watchers_.push_back(conn.id);
    }
    // A cluster network's sends wait for credit only (an engine that is
    // gone fails them: writable, the write says why).
    if (replica_) {
        // Without quorum (`quorum on`) the write fails at once: writable too.
        if (settings_.quorum && !replica_->quorate()) return true;
        return senders_.empty() && replica_->credit(settings_.mtu) != Replica::Credit::wait;
    }
    // Sends leave in arrival order: behind a waiting one, any send waits.
    if (!senders_.empty() || pool_used_ >= settings_.pool || !budget_fits(settings_.mtu)) {
        return false;
    }
    auto room = [&](PortId id) REQUIRES(mu_) { return takes_now(*ports_[id]); };
    reach_.ports.clear();
    reach_.any = false;
    if (policy_->reach(conn.id, framed, reach_)) {
        // No ports: it goes nowhere, or is refused at once; either way it
        // does not wait.
        if (reach_.ports.empty()) return true;
        return reach_.any ? std::ranges::any_of(reach_.ports, room)
                          : std::ranges::all_of(reach_.ports, room);
    }
    // The payload decides: any receiving port but the writer's own may be a
    // recipient, so writable means none is full.
    for (const auto& port : ports_) {
        if (port->id != conn.id && !takes_now(*port)) return false;
    }
    return true;
}

void Network::set_listener(Listener* listener) {
    MutexLock lock(mu_);
    listener_ = listener;
}

void Network::hang_up() {
    AfterUnlock after;
    Listener* listener = nullptr;
    std::unique_ptr<Replica> replica;  // leaves the group after mu_ is released
    {
        MutexLock lock(mu_);
        hung_up_ = true;
        replica = std::move(replica_);
        listener = listener_;
        auto wake = [&](Port& port, PortId id) REQUIRES(mu_) {
            while (!port.waiters.empty()) {
                Waiter& waiter = port.waiters.front();
                port.waiters.pop_front();
                waiter.state_ = WaitState::done;
                --parked_readers_;
                after.received.emplace_back(&waiter, Received{Outcome::hung_up, nullptr});
            }
            if (port.watched || port.watched_out) after.ready.push_back(id);
            port.watched = port.watched_out = false;
        };
        for (auto& port : ports_) wake(*port, port->id);
        for (Port& observer : observers_) wake(observer, observer.id);
        while (!senders_.empty()) {
            SendWaiter& waiter = senders_.front();
            senders_.pop_front();
            waiter.state_ = WaitState::done;
            waiter.message_.reset();
            after.sent.emplace_back(&waiter,
                                    Status::error(std::errc::broken_pipe, "network is removed"));
        }
        write_watchers_.clear();
        inbound_.clear();
    }
    after.run(listener);
    if (extension_ && !extension_hung_up_.exchange(true)) extension_->hang_up();
}

}  // namespace ipnfs::bus
