#include "bus/network.hpp"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ipnfs::bus {

// Work gathered under the network lock and done after releasing it:
// completing parked requests and waking pollers may reach into the layer
// above, which must never run under a bus lock.
struct Network::AfterUnlock {
    std::vector<std::pair<Waiter*, Received>> received;
    std::vector<std::pair<SendWaiter*, Status>> sent;
    std::vector<PortId> ready;

    void run(Listener* listener) {
        // Take the work out first: a completion or listener may send again
        // on this thread, and send() reuses this object (it is thread_local).
        auto batch = std::exchange(received, {});
        auto senders = std::exchange(sent, {});
        auto ids = std::exchange(ready, {});
        for (auto& [waiter, r] : batch) waiter->complete(std::move(r));
        for (auto& [waiter, status] : senders) waiter->complete(std::move(status));
        if (listener != nullptr) {
            for (PortId id : ids) listener->ready(id);
        }
        // Hand the buffers back for the next use on this thread.
        batch.clear();
        ids.clear();
        if (received.empty()) received.swap(batch);
        if (ready.empty()) ready.swap(ids);
    }
};

namespace {

void count_out(Port& port, const MessageRef& msg) {
    if (msg->is_event()) return;
    port.counters.msgs_out.fetch_add(1, std::memory_order_relaxed);
    port.counters.bytes_out.fetch_add(msg->payload().size(), std::memory_order_relaxed);
}

Status busy_unless_idle(std::uint32_t connected, std::string_view what) {
    if (connected == 0) return Status::success();
    return Status::error(std::errc::device_or_resource_busy,
                         fmt::format("{} can change only while no port is connected ({} connected)",
                                     what, connected));
}

// Keeps a port's event backlog bounded whatever clients do: only the last
// counts event is kept, and a join and a later leave of the same port, both
// still unread, cancel out (the reader's view of who is connected stays
// exact).  The backlog then holds at most one event per port plus one counts.
void compact_events(std::deque<MessageRef>& events) {
    std::deque<MessageRef> kept;
    std::unordered_map<PortId, std::size_t> open_join;  // port -> index in kept
    std::size_t last_counts = events.size();
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (events[i]->kind() == Kind::counts) last_counts = i;
    }
    for (std::size_t i = 0; i < events.size(); ++i) {
        const MessageRef& e = events[i];
        if (e->kind() == Kind::counts && i != last_counts) continue;
        if (e->kind() == Kind::leave) {
            if (auto it = open_join.find(e->from()); it != open_join.end()) {
                kept[it->second] = nullptr;
                open_join.erase(it);
                continue;
            }
        }
        if (e->kind() == Kind::join) open_join[e->from()] = kept.size();
        kept.push_back(e);
    }
    events.clear();
    for (auto& e : kept) {
        if (e) events.push_back(std::move(e));
    }
}

}  // namespace

Network::Network(std::string name, const Settings& settings, const PolicyCatalog& catalog,
                 std::unique_ptr<Policy> policy)
    : name_(std::move(name)), catalog_(catalog), settings_(settings), policy_(std::move(policy)) {
    ports_.reserve(settings_.ports);
    while (ports_.size() < settings_.ports) {
        ports_.push_back(std::make_unique<Port>(static_cast<PortId>(ports_.size())));
    }
    policy_->on_ports(settings_.ports);
    lossless_.store(settings_.lossless, std::memory_order_relaxed);
    build_commands();
}

Network::~Network() = default;

Status Network::create(std::string name, const Settings& settings, const PolicyCatalog& catalog,
                       std::string_view policy, std::shared_ptr<Network>& out) {
    auto made = catalog.make(policy);
    if (!made) {
        return Status::error(
            std::errc::invalid_argument,
            fmt::format("unknown policy '{}' (known: {})", policy, catalog.names()));
    }
    out = std::make_shared<Network>(std::move(name), settings, catalog, std::move(made));
    return Status::success();
}

void Network::build_commands() {
    commands_ = {
        {"policy", "NAME", 1, "choose who receives each message; only while no port is connected",
         [this](Words w) { return set_policy(w[0]); }},
        {"mtu", "BYTES", 1, "largest message a write may send (1-65535)",
         [this](Words w) { return set_number(w, Limits::kMaxMtu, "mtu", false, settings_.mtu); }},
        {"queue", "MESSAGES", 1, "messages a port holds (1-65536); only while no port is connected",
         [this](Words w) {
             return set_number(w, Limits::kMaxQueue, "queue", true, settings_.queue);
         }},
        {"ports", "COUNT", 1, "number of port files (1-65536); never below a connected port",
         [this](Words w) { return set_ports(w); }},
        {"lossless", "on|off", 1,
         "on: full queues make senders wait, nothing is lost; only while no port is connected",
         [this](Words w) { return set_lossless(w); }},
        {"pool", "MESSAGES", 1, "lossless: messages pending in the whole network (1-1048576)",
         [this](Words w) {
             Status s = set_number(w, Limits::kMaxPool, "pool", false, settings_.pool);
             if (s.ok()) room_freed(*ctl_after_);  // a larger pool may let them go
             return s;
         }},
        {"dropwhenfull", "PORT on|off", 2,
         "lossless: the port loses its own copies when full instead of holding senders",
         [this](Words w) { return set_port_flag(w, "dropwhenfull", &Port::drop_when_full); }},
        {"events", "PORT on|off", 2, "the port also receives join, leave and counts events",
         [this](Words w) { return set_port_flag(w, "events", &Port::events); }},
    };
}

PortId Network::port_count() const {
    std::lock_guard lock(mu_);
    return static_cast<PortId>(ports_.size());
}

std::uint32_t Network::connected_ports() const {
    std::uint32_t n = 0;
    for (const auto& p : ports_) n += p->connected() ? 1 : 0;
    return n;
}

Status Network::set_policy(std::string_view name) {
    if (name == policy_->name()) return Status::success();
    auto made = catalog_.make(name);
    if (!made) {
        return Status::error(
            std::errc::invalid_argument,
            fmt::format("unknown policy '{}' (known: {})", name, catalog_.names()));
    }
    if (Status s = busy_unless_idle(connected_ports(), "policy"); !s.ok()) return s;
    made->on_ports(static_cast<PortId>(ports_.size()));
    policy_ = std::move(made);
    return Status::success();
}

Status Network::set_number(Words w, std::uint32_t max, const char* what, bool idle_only,
                           std::uint32_t& field) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 1, max, what, v); !s.ok()) return s;
    if (v == field) return Status::success();
    if (idle_only) {
        if (Status s = busy_unless_idle(connected_ports(), what); !s.ok()) return s;
    }
    field = static_cast<std::uint32_t>(v);
    return Status::success();
}

Status Network::set_lossless(Words w) {
    bool on = false;
    if (Status s = parse_on_off(w[0], "lossless", on); !s.ok()) return s;
    if (on == settings_.lossless) return Status::success();
    if (Status s = busy_unless_idle(connected_ports(), "lossless"); !s.ok()) return s;
    settings_.lossless = on;
    return Status::success();
}

Status Network::set_port_flag(Words w, const char* what, bool Port::*flag) {
    std::uint64_t id = 0;
    if (Status s = parse_uint(w[0], 0, ports_.size() - 1, "port", id); !s.ok()) return s;
    bool on = false;
    if (Status s = parse_on_off(w[1], what, on); !s.ok()) return s;
    apply_port_flag(static_cast<PortId>(id), flag, on, *ctl_after_);
    return Status::success();
}

void Network::apply_port_flag(PortId id, bool Port::*flag, bool on, AfterUnlock& after) {
    Port& port = *ports_[id];
    bool was = port.*flag;
    port.*flag = on;
    if (flag == &Port::events && on && !was && port.ring) send_snapshot(port, id, after);
    if (flag == &Port::drop_when_full && on) room_freed(after);
}

Status Network::set_events(PortId id, bool on) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        std::lock_guard lock(mu_);
        if (id >= ports_.size()) {
            return Status::error(std::errc::no_such_file_or_directory,
                                 fmt::format("no port {}", id));
        }
        apply_port_flag(id, &Port::events, on, after);
        listener = listener_;
    }
    after.run(listener);
    return Status::success();
}

Status Network::set_ports(Words w) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 1, Limits::kMaxPorts, "ports", v); !s.ok()) return s;
    auto count = static_cast<PortId>(v);
    for (PortId id = count; id < ports_.size(); ++id) {
        if (ports_[id]->connected()) {
            return Status::error(
                std::errc::device_or_resource_busy,
                fmt::format("cannot shrink to {} ports: port {} is connected", count, id));
        }
    }
    if (count < ports_.size()) {
        ports_.resize(count);
    } else {
        while (ports_.size() < count)
            ports_.push_back(std::make_unique<Port>(static_cast<PortId>(ports_.size())));
    }
    settings_.ports = count;
    policy_->on_ports(count);
    return Status::success();
}

// ---- membership ----

template <typename F>
void Network::for_each_event_reader(F&& f) {
    for (PortId id = 0; id < ports_.size(); ++id) {
        Port& port = *ports_[id];
        if (port.events && port.ring) f(port, id);
    }
    for (Port& observer : observers_) f(observer, observer.id);
}

void Network::emit(Kind kind, PortId member, bool to_member, AfterUnlock& after) {
    std::array<std::uint32_t, 2> counts{receiving_ports_, sending_ports_};
    auto payload =
        kind == Kind::counts ? std::as_bytes(std::span(counts)) : std::span<const std::byte>{};
    MessageRef msg = Message::make(member, payload, kind);
    msg->set_seq(next_seq_++);
    for_each_event_reader([&](Port& port, PortId id) {
        if (to_member || id != member) enqueue(port, msg, after);
    });
}

void Network::send_snapshot(Port& port, PortId id, AfterUnlock& after) {
    for (PortId member = 0; member < ports_.size(); ++member) {
        if (member == id || !ports_[member]->connected()) continue;
        MessageRef join = Message::make(member, {}, Kind::join);
        join->set_seq(next_seq_++);
        enqueue(port, join, after);
    }
    std::array<std::uint32_t, 2> counts{receiving_ports_, sending_ports_};
    MessageRef msg = Message::make(id, std::as_bytes(std::span(counts)), Kind::counts);
    msg->set_seq(next_seq_++);
    enqueue(port, msg, after);
}

Status Network::attach(Port& port, PortId id, bool reads, bool writes, Connection& out) {
    AfterUnlock& after = *ctl_after_;
    bool joined = !port.connected();
    bool new_reader = reads && port.readers == 0;
    bool new_writer = writes && port.writers == 0;
    if (new_reader) {
        port.capacity = settings_.queue;
        port.ring = std::make_unique<Port::Ring>(port.capacity);
        policy_->on_attach(id);
    }
    port.readers += reads ? 1 : 0;
    port.writers += writes ? 1 : 0;
    receiving_ports_ += new_reader ? 1 : 0;
    sending_ports_ += new_writer ? 1 : 0;
    out = Connection{id, reads, writes, &port};
    // A port that starts receiving events gets the snapshot, which already
    // holds the new counts; everyone else hears of the change.
    bool snapshot = new_reader && port.events;
    if (joined) emit(Kind::join, id, false, after);
    if (new_reader || new_writer) emit(Kind::counts, id, !snapshot, after);
    if (snapshot) send_snapshot(port, id, after);
    return Status::success();
}

Status Network::connect(PortId id, bool reads, bool writes, Connection& out) {
    AfterUnlock after;
    Listener* listener = nullptr;
    Status s;
    {
        std::lock_guard lock(mu_);
        if (hung_up_)
            return Status::error(std::errc::no_such_file_or_directory, "network is removed");
        if (id >= ports_.size()) {
            return Status::error(
                std::errc::no_such_file_or_directory,
                fmt::format("no port {}: the network has {} ports", id, ports_.size()));
        }
        ctl_after_ = &after;
        s = attach(*ports_[id], id, reads, writes, out);
        ctl_after_ = nullptr;
        listener = listener_;
    }
    after.run(listener);
    return s;
}

Status Network::connect_any(bool reads, bool writes, Connection& out) {
    AfterUnlock after;
    Listener* listener = nullptr;
    Status s = Status::error(std::errc::no_space_on_device, "");
    {
        std::lock_guard lock(mu_);
        if (hung_up_)
            return Status::error(std::errc::no_such_file_or_directory, "network is removed");
        for (PortId id = 0; id < ports_.size(); ++id) {
            if (ports_[id]->connected()) continue;
            ctl_after_ = &after;
            s = attach(*ports_[id], id, reads, writes, out);
            ctl_after_ = nullptr;
            break;
        }
        if (s.code == std::errc::no_space_on_device) {
            s.reason = fmt::format("all {} ports are connected", ports_.size());
        }
        listener = listener_;
    }
    after.run(listener);
    return s;
}

Status Network::connect_observer(Connection& out) {
    AfterUnlock after;
    std::lock_guard lock(mu_);
    if (hung_up_) return Status::error(std::errc::no_such_file_or_directory, "network is removed");
    Port& observer = observers_.emplace_back(next_observer_++);
    observer.readers = 1;
    observer.events = true;
    observer.capacity = settings_.queue;
    observer.ring = std::make_unique<Port::Ring>(observer.capacity);
    out = Connection{observer.id, true, false, &observer};
    send_snapshot(observer, observer.id, after);  // nobody waits on a new observer yet
    return Status::success();
}

void Network::disconnect(const Connection& conn) {
    Port& port = *conn.port;
    AfterUnlock after;
    Listener* listener = nullptr;
    std::list<Port> gone;  // an observer's port: destroyed after its read_mu is unlocked
    {
        std::unique_lock<std::mutex> consumer;
        if (conn.reads) consumer = std::unique_lock(port.read_mu);
        std::lock_guard lock(mu_);
        listener = listener_;
        if (conn.observer()) {
            discard_queue(port, after);
            auto it = std::find_if(observers_.begin(), observers_.end(),
                                   [&](const Port& p) { return &p == &port; });
            gone.splice(gone.end(), observers_, it);
        } else {
            port.readers -= conn.reads ? 1 : 0;
            port.writers -= conn.writes ? 1 : 0;
            bool lost_reader = conn.reads && port.readers == 0;
            bool lost_writer = conn.writes && port.writers == 0;
            if (lost_reader) {
                policy_->on_detach(conn.id);
                discard_queue(port, after);
                --receiving_ports_;
            }
            if (lost_writer) --sending_ports_;
            if (!port.connected()) emit(Kind::leave, conn.id, false, after);
            if (lost_reader || lost_writer) emit(Kind::counts, conn.id, true, after);
            // One recipient less may let parked sends go.
            if (lost_reader) room_freed(after);
        }
    }
    after.run(listener);
}

// ---- delivery ----

bool Network::route_fits(PortId from, const MessageRef& msg) {
    recipients_.clear();
    policy_->route(from, msg->payload(), recipients_);
    if (!settings_.lossless) return true;
    if (pool_used_ >= settings_.pool) return false;
    return std::ranges::all_of(recipients_, [&](PortId id) {
        const Port& port = *ports_[id];
        return !port.ring || port.drop_when_full || port.has_room();
    });
}

void Network::deliver(Port& from, const MessageRef& msg, AfterUnlock& after) {
    msg->set_seq(next_seq_++);
    for (PortId id : recipients_) {
        Port& port = *ports_[id];
        if (port.ring && !enqueue(port, msg, after)) {
            port.counters.drops.fetch_add(1, std::memory_order_relaxed);
        }
    }
    from.counters.msgs_in.fetch_add(1, std::memory_order_relaxed);
    from.counters.bytes_in.fetch_add(msg->payload().size(), std::memory_order_relaxed);
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
            port.overflow.push_back(msg);
            if (port.overflow.size() > 2 * ports_.size() + 16) compact_events(port.overflow);
        }
    } else {
        if (!port.overflow.empty() || !port.ring->push(msg)) return false;
        if (settings_.lossless && msg->pending_copies++ == 0) ++pool_used_;
    }
    if (port.watched) {
        port.watched = false;
        after.ready.push_back(port.id);
    }
    return true;
}

bool Network::take(Port& port, MessageRef& out, const Fits* fits, AfterUnlock* after) {
    if (port.ring->read_available() > 0) {
        if (fits != nullptr && !(*fits)(*port.ring->front())) return false;
        port.ring->pop(out);
    } else if (after != nullptr && !port.overflow.empty()) {
        if (fits != nullptr && !(*fits)(*port.overflow.front())) return false;
        out = std::move(port.overflow.front());
        port.overflow.pop_front();
    } else {
        return false;
    }
    if (after != nullptr) release(out, *after);
    return true;
}

void Network::release(const MessageRef& msg, AfterUnlock& after) {
    if (!settings_.lossless) return;
    // Events use no pool, but they do take queue slots: either frees room.
    if (!msg->is_event() && --msg->pending_copies == 0) --pool_used_;
    room_freed(after);
}

void Network::room_freed(AfterUnlock& after) {
    if (!settings_.lossless) return;
    while (!senders_.empty()) {
        SendWaiter& waiter = senders_.front();
        if (!route_fits(waiter.from_->id, waiter.message_)) break;
        senders_.pop_front();
        waiter.state_ = WaitState::done;
        deliver(*waiter.from_, waiter.message_, after);
        waiter.message_.reset();
        after.sent.emplace_back(&waiter, Status::success());
    }
    // Pollers waiting for POLLOUT look again; whoever still cannot send
    // re-arms with its next poll.
    for (PortId id : write_watchers_) {
        after.ready.push_back(id);
        if (id < ports_.size()) ports_[id]->watched_out = false;
    }
    write_watchers_.clear();
}

void Network::discard_queue(Port& port, AfterUnlock& after) {
    MessageRef msg;
    while (take(port, msg, nullptr, &after)) {
        if (!msg->is_event()) port.counters.drops.fetch_add(1, std::memory_order_relaxed);
    }
    port.ring.reset();
    port.capacity = 0;
    port.watched = false;
}

SendResult Network::send(const Connection& conn, std::span<const std::byte> payload,
                         SendWaiter* waiter) {
    if (!conn.writes) {
        return {Status::error(std::errc::bad_file_descriptor, "not open for writing")};
    }
    if (payload.size() > Limits::kMaxMtu) {
        return {Status::error(std::errc::message_size,
                              fmt::format("message of {} bytes exceeds the largest MTU ({})",
                                          payload.size(), Limits::kMaxMtu))};
    }
    MessageRef msg = Message::make(conn.id, payload);
    thread_local AfterUnlock after;
    Listener* listener = nullptr;
    {
        std::lock_guard lock(mu_);
        if (hung_up_) return {Status::error(std::errc::broken_pipe, "network is removed")};
        if (payload.size() > settings_.mtu) {
            return {Status::error(std::errc::message_size,
                                  fmt::format("message of {} bytes exceeds the network MTU ({})",
                                              payload.size(), settings_.mtu))};
        }
        bool fits = route_fits(conn.id, msg);
        if (settings_.lossless && (!senders_.empty() || !fits)) {
            if (waiter == nullptr) {
                return {Status::error(std::errc::resource_unavailable_try_again,
                                      "lossless network is full: the send would wait")};
            }
            if (waiter->state_ == WaitState::cancelled) {
                return {Status::error(std::errc::interrupted, "interrupted")};
            }
            waiter->state_ = WaitState::parked;
            waiter->message_ = std::move(msg);
            waiter->from_ = conn.port;
            senders_.push_back(*waiter);
            return {Status::success(), true};
        }
        deliver(*conn.port, msg, after);
        listener = listener_;
    }
    after.run(listener);
    return {Status::success()};
}

bool Network::cancel(SendWaiter& waiter) {
    AfterUnlock after;
    Listener* listener = nullptr;
    bool removed = false;
    {
        std::lock_guard lock(mu_);
        listener = listener_;
        switch (waiter.state_) {
            case WaitState::parked:
                senders_.erase(senders_.iterator_to(waiter));
                waiter.state_ = WaitState::done;
                waiter.message_.reset();
                room_freed(after);  // it may have held back the ones behind it
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

Received Network::receive(const Connection& conn, Waiter* waiter, const Fits* fits) {
    if (!conn.reads) return {Outcome::would_block, nullptr};
    Port& port = *conn.port;
    MessageRef msg;
    std::unique_lock consumer(port.read_mu);
    // The ring was made when this connection's port got its first reader,
    // under mu_, before connect() returned; it lives until the last reader
    // disconnects, which cannot happen while we are one of them.  A lossless
    // network takes its queues only under mu_, where freed room and parked
    // senders meet.
    if (!lossless_.load(std::memory_order_relaxed) && take(port, msg, fits, nullptr)) {
        count_out(port, msg);
        return {Outcome::message, std::move(msg)};
    }
    AfterUnlock after;
    Listener* listener = nullptr;
    Received result{Outcome::would_block, nullptr};
    {
        std::lock_guard lock(mu_);
        listener = listener_;
        bool next_does_not_fit = fits != nullptr && port.queued() > 0;
        if (take(port, msg, fits, &after)) {
            count_out(port, msg);
            result = {Outcome::message, std::move(msg)};
        } else if (hung_up_ && !next_does_not_fit) {
            result = {Outcome::hung_up, nullptr};
        } else if (waiter == nullptr || next_does_not_fit) {
            result = {Outcome::would_block, nullptr};
        } else if (waiter->state_ == WaitState::cancelled) {
            result = {Outcome::cancelled, nullptr};
        } else {
            waiter->state_ = WaitState::parked;
            port.waiters.push_back(*waiter);
            ++parked_readers_;
            result = {Outcome::parked, nullptr};
        }
    }
    consumer.unlock();
    after.run(listener);
    return result;
}

bool Network::cancel(const Connection& conn, Waiter& waiter) {
    std::lock_guard lock(mu_);
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

bool Network::poll_readable(const Connection& conn) {
    std::lock_guard lock(mu_);
    // Armed even when readable now: an edge-triggered epoll reads until
    // EAGAIN without polling again, and must still hear of the next message.
    conn.port->watched = true;
    return hung_up_ || conn.port->queued() > 0;
}

bool Network::poll_writable(const Connection& conn) {
    std::lock_guard lock(mu_);
    if (!conn.writes) return false;
    if (hung_up_ || !settings_.lossless) return true;
    // Armed either way, for the same reason as poll_readable.
    if (!conn.port->watched_out) {
        conn.port->watched_out = true;
        write_watchers_.push_back(conn.id);
    }
    if (!senders_.empty() || pool_used_ >= settings_.pool) return false;
    // Any receiving port may be a recipient: writable means none is full.
    for (const auto& port : ports_) {
        if (port->id != conn.id && port->ring && !port->drop_when_full && !port->has_room()) {
            return false;
        }
    }
    return true;
}

void Network::set_listener(Listener* listener) {
    std::lock_guard lock(mu_);
    listener_ = listener;
}

void Network::hang_up() {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        std::lock_guard lock(mu_);
        hung_up_ = true;
        listener = listener_;
        auto wake = [&](Port& port, PortId id) {
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
    }
    after.run(listener);
}

// ---- ctl and stats ----

Status Network::control(std::string_view text) {
    AfterUnlock after;
    Listener* listener = nullptr;
    Status result;
    {
        std::lock_guard lock(mu_);
        listener = listener_;
        ctl_after_ = &after;
        std::size_t start = 0;
        while (start <= text.size()) {
            std::size_t end = text.find('\n', start);
            if (end == std::string_view::npos) end = text.size();
            std::string_view line = text.substr(start, end - start);
            start = end + 1;
            auto words = split_words(line);
            if (words.empty() || words[0].starts_with('#')) continue;
            std::array<const CommandTable*, 2> tables{&commands_, &policy_->commands()};
            result = dispatch(tables, line);
            if (!result.ok()) {
                result.reason = fmt::format("{}: {}", fmt::join(words, " "), result.reason);
                break;
            }
        }
        ctl_after_ = nullptr;
        lossless_.store(settings_.lossless, std::memory_order_relaxed);
        last_error_ = result.ok() ? std::string() : result.reason;
    }
    after.run(listener);
    return result;
}

std::string Network::describe() const {
    std::lock_guard lock(mu_);
    std::string out = fmt::format("policy {}\nports {}\nmtu {}\nqueue {}\nlossless {}\npool {}\n",
                                  policy_->name(), ports_.size(), settings_.mtu, settings_.queue,
                                  settings_.lossless ? "on" : "off", settings_.pool);
    for (const auto& port : ports_) {
        if (port->drop_when_full) out += fmt::format("dropwhenfull {} on\n", port->id);
        if (port->events) out += fmt::format("events {} on\n", port->id);
    }
    policy_->describe(out);
    if (!last_error_.empty()) out += fmt::format("# last error: {}\n", last_error_);
    out += fmt::format("#\n# Write commands here, one per line. Policies: {}.\n", catalog_.names());
    append_help(commands_, out);
    append_help(policy_->commands(), out);
    return out;
}

std::string Network::stats() const {
    std::lock_guard lock(mu_);
    std::uint64_t in = 0;
    std::uint64_t bin = 0;
    std::uint64_t out = 0;
    std::uint64_t bout = 0;
    std::uint64_t drops = 0;
    std::string rows;
    std::uint32_t connected = 0;
    for (const auto& port : ports_) {
        const Port& p = *port;
        const PortCounters& c = p.counters;
        auto pin = c.msgs_in.load(std::memory_order_relaxed);
        auto pbin = c.bytes_in.load(std::memory_order_relaxed);
        auto pout = c.msgs_out.load(std::memory_order_relaxed);
        auto pbout = c.bytes_out.load(std::memory_order_relaxed);
        auto pdrops = c.drops.load(std::memory_order_relaxed);
        in += pin;
        bin += pbin;
        out += pout;
        bout += pbout;
        drops += pdrops;
        connected += p.connected() ? 1 : 0;
        if (!p.connected() && pin + pout + pdrops == 0) continue;
        rows += fmt::format("{:<6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6}\n", p.id,
                            p.readers, p.writers, pin, pbin, pout, pbout, pdrops, p.queued());
    }
    std::string text = fmt::format(
        "network {}\npolicy {}\nports {}\nconnected {}\nmsgs_in {}\nbytes_in {}\n"
        "msgs_out {}\nbytes_out {}\ndrops {}\nlossless {}\npool_used {}\npool {}\n"
        "parked_readers {}\nparked_senders {}\nevent_readers {}\n\n",
        name_, policy_->name(), ports_.size(), connected, in, bin, out, bout, drops,
        settings_.lossless ? "on" : "off", pool_used_, settings_.pool, parked_readers_,
        senders_.size(), observers_.size());
    text += fmt::format("{:<6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6}\n", "port",
                        "readers", "writers", "msgs_in", "bytes_in", "msgs_out", "bytes_out",
                        "drops", "queued");
    return text + rows;
}

}  // namespace ipnfs::bus
