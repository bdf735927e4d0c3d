#include "bus/network.hpp"

#include <array>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ipnfs::bus {

namespace {

// Work a send or hang-up gathers under the network lock and does after
// releasing it: completing parked receivers and waking pollers may reach
// into the layer above, which must never run under a bus lock.
struct AfterUnlock {
    std::vector<std::pair<Waiter*, Received>> completions;
    std::vector<PortId> readable;

    void run(Listener* listener) {
        // Take the work out first: a completion or listener may send again
        // on this thread, and send() reuses this object (it is thread_local).
        std::vector<std::pair<Waiter*, Received>> batch;
        std::vector<PortId> ids;
        batch.swap(completions);
        ids.swap(readable);
        for (auto& [waiter, received] : batch) waiter->complete(std::move(received));
        if (listener != nullptr) {
            for (PortId id : ids) listener->readable(id);
        }
        // Hand the buffers back for the next send on this thread.
        batch.clear();
        ids.clear();
        if (completions.empty()) completions.swap(batch);
        if (readable.empty()) readable.swap(ids);
    }
};

void count_out(Port& port, const MessageRef& msg) {
    port.counters.msgs_out.fetch_add(1, std::memory_order_relaxed);
    port.counters.bytes_out.fetch_add(msg->payload().size(), std::memory_order_relaxed);
}

// The last reader left: what its queue held will never be read.
void discard_queue(Port& port) {
    MessageRef msg;
    std::uint64_t dropped = 0;
    while (port.ring->pop(msg)) ++dropped;
    port.counters.drops.fetch_add(dropped, std::memory_order_relaxed);
    port.ring.reset();
    port.capacity = 0;
    port.watched = false;
}

}  // namespace

Network::Network(std::string name, const Settings& settings, const PolicyCatalog& catalog,
                 std::unique_ptr<Policy> policy)
    : name_(std::move(name)), catalog_(catalog), settings_(settings), policy_(std::move(policy)) {
    ports_.reserve(settings_.ports);
    for (PortId i = 0; i < settings_.ports; ++i) ports_.push_back(std::make_unique<Port>());
    policy_->on_ports(settings_.ports);
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
         [this](Words w) { return set_mtu(w); }},
        {"queue", "MESSAGES", 1,
         "messages a port holds before it drops (1-65536); only while no port is connected",
         [this](Words w) { return set_queue(w); }},
        {"ports", "COUNT", 1, "number of port files (1-65536); never below a connected port",
         [this](Words w) { return set_ports(w); }},
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
    auto made = catalog_.make(name);
    if (!made) {
        return Status::error(
            std::errc::invalid_argument,
            fmt::format("unknown policy '{}' (known: {})", name, catalog_.names()));
    }
    if (std::uint32_t n = connected_ports(); n > 0) {
        return Status::error(std::errc::device_or_resource_busy,
                             fmt::format("policy can change only while no port is connected "
                                         "({} connected)",
                                         n));
    }
    made->on_ports(static_cast<PortId>(ports_.size()));
    policy_ = std::move(made);
    return Status::success();
}

Status Network::set_mtu(Words w) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 1, Limits::kMaxMtu, "mtu", v); !s.ok()) return s;
    settings_.mtu = static_cast<std::uint32_t>(v);
    return Status::success();
}

Status Network::set_queue(Words w) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 1, Limits::kMaxQueue, "queue", v); !s.ok()) return s;
    if (std::uint32_t n = connected_ports(); n > 0) {
        return Status::error(std::errc::device_or_resource_busy,
                             fmt::format("queue can change only while no port is connected "
                                         "({} connected)",
                                         n));
    }
    settings_.queue = static_cast<std::uint32_t>(v);
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
        while (ports_.size() < count) ports_.push_back(std::make_unique<Port>());
    }
    settings_.ports = count;
    policy_->on_ports(count);
    return Status::success();
}

Status Network::attach(Port& port, PortId id, bool reads, bool writes, Connection& out) {
    if (reads && port.readers == 0) {
        port.capacity = settings_.queue;
        port.ring = std::make_unique<Port::Ring>(port.capacity);
        policy_->on_attach(id);
    }
    port.readers += reads ? 1 : 0;
    port.writers += writes ? 1 : 0;
    out = Connection{id, reads, writes, &port};
    return Status::success();
}

Status Network::connect(PortId id, bool reads, bool writes, Connection& out) {
    std::lock_guard lock(mu_);
    if (hung_up_) return Status::error(std::errc::no_such_file_or_directory, "network is removed");
    if (id >= ports_.size()) {
        return Status::error(
            std::errc::no_such_file_or_directory,
            fmt::format("no port {}: the network has {} ports", id, ports_.size()));
    }
    return attach(*ports_[id], id, reads, writes, out);
}

Status Network::connect_any(bool reads, bool writes, Connection& out) {
    std::lock_guard lock(mu_);
    if (hung_up_) return Status::error(std::errc::no_such_file_or_directory, "network is removed");
    for (PortId id = 0; id < ports_.size(); ++id) {
        if (!ports_[id]->connected()) return attach(*ports_[id], id, reads, writes, out);
    }
    return Status::error(std::errc::no_space_on_device,
                         fmt::format("all {} ports are connected", ports_.size()));
}

void Network::disconnect(const Connection& conn) {
    Port& port = *conn.port;
    std::unique_lock<std::mutex> consumer;
    if (conn.reads) consumer = std::unique_lock(port.read_mu);
    std::lock_guard lock(mu_);
    port.readers -= conn.reads ? 1 : 0;
    port.writers -= conn.writes ? 1 : 0;
    if (conn.reads && port.readers == 0) {
        policy_->on_detach(conn.id);
        discard_queue(port);
    }
}

Status Network::send(const Connection& conn, std::span<const std::byte> payload) {
    if (!conn.writes) return Status::error(std::errc::bad_file_descriptor, "not open for writing");
    if (payload.size() > Limits::kMaxMtu) {
        return Status::error(std::errc::message_size,
                             fmt::format("message of {} bytes exceeds the largest MTU ({})",
                                         payload.size(), Limits::kMaxMtu));
    }
    MessageRef msg = Message::make(conn.id, payload);
    thread_local AfterUnlock after;
    Listener* listener = nullptr;
    {
        std::lock_guard lock(mu_);
        if (hung_up_) return Status::error(std::errc::broken_pipe, "network is removed");
        if (payload.size() > settings_.mtu) {
            return Status::error(std::errc::message_size,
                                 fmt::format("message of {} bytes exceeds the network MTU ({})",
                                             payload.size(), settings_.mtu));
        }
        msg->set_seq(next_seq_++);
        recipients_.clear();
        policy_->route(conn.id, msg->payload(), recipients_);
        for (PortId id : recipients_) {
            Port& port = *ports_[id];
            if (!port.ring) continue;
            if (!port.waiters.empty()) {
                Waiter& waiter = port.waiters.front();
                port.waiters.pop_front();
                waiter.state_ = Waiter::State::done;
                count_out(port, msg);
                after.completions.emplace_back(&waiter, Received{Outcome::message, msg});
            } else if (port.ring->push(msg)) {
                if (port.watched) {
                    port.watched = false;
                    after.readable.push_back(id);
                }
            } else {
                port.counters.drops.fetch_add(1, std::memory_order_relaxed);
            }
        }
        conn.port->counters.msgs_in.fetch_add(1, std::memory_order_relaxed);
        conn.port->counters.bytes_in.fetch_add(payload.size(), std::memory_order_relaxed);
        listener = listener_;
    }
    after.run(listener);
    return Status::success();
}

Received Network::receive(const Connection& conn, Waiter* waiter) {
    Port& port = *conn.port;
    MessageRef msg;
    std::lock_guard consumer(port.read_mu);
    // The ring was made when this connection's port got its first reader,
    // under mu_, before connect() returned; it lives until the last reader
    // disconnects, which cannot happen while we are one of them.
    if (port.ring->pop(msg)) {
        count_out(port, msg);
        return {Outcome::message, std::move(msg)};
    }
    std::lock_guard lock(mu_);
    if (port.ring->pop(msg)) {
        count_out(port, msg);
        return {Outcome::message, std::move(msg)};
    }
    if (hung_up_) return {Outcome::hung_up, nullptr};
    if (waiter == nullptr) return {Outcome::would_block, nullptr};
    if (waiter->state_ == Waiter::State::cancelled) return {Outcome::cancelled, nullptr};
    waiter->state_ = Waiter::State::parked;
    port.waiters.push_back(*waiter);
    return {Outcome::parked, nullptr};
}

bool Network::cancel(const Connection& conn, Waiter& waiter) {
    std::lock_guard lock(mu_);
    switch (waiter.state_) {
        case Waiter::State::parked:
            conn.port->waiters.erase(conn.port->waiters.iterator_to(waiter));
            waiter.state_ = Waiter::State::done;
            return true;
        case Waiter::State::idle:
            waiter.state_ = Waiter::State::cancelled;
            return false;
        case Waiter::State::done:
        case Waiter::State::cancelled:
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
        for (PortId id = 0; id < ports_.size(); ++id) {
            Port& port = *ports_[id];
            while (!port.waiters.empty()) {
                Waiter& waiter = port.waiters.front();
                port.waiters.pop_front();
                waiter.state_ = Waiter::State::done;
                after.completions.emplace_back(&waiter, Received{Outcome::hung_up, nullptr});
            }
            if (port.watched) {
                port.watched = false;
                after.readable.push_back(id);
            }
        }
        listener = listener_;
    }
    after.run(listener);
}

Status Network::control(std::string_view text) {
    std::lock_guard lock(mu_);
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        auto words = split_words(line);
        if (words.empty() || words[0].starts_with('#')) continue;
        std::array<const CommandTable*, 2> tables{&commands_, &policy_->commands()};
        Status s = dispatch(tables, line);
        if (!s.ok()) {
            s.reason = fmt::format("{}: {}", fmt::join(words, " "), s.reason);
            last_error_ = s.reason;
            return s;
        }
    }
    last_error_.clear();
    return Status::success();
}

std::string Network::describe() const {
    std::lock_guard lock(mu_);
    std::string out = fmt::format("policy {}\nports {}\nmtu {}\nqueue {}\n", policy_->name(),
                                  ports_.size(), settings_.mtu, settings_.queue);
    policy_->describe(out);
    if (!last_error_.empty()) out += fmt::format("# last error: {}\n", last_error_);
    out += fmt::format("#\n# Write commands here, one per line. Policies: {}.\n", catalog_.names());
    append_help(commands_, out);
    append_help(policy_->commands(), out);
    return out;
}

std::string Network::stats() const {
    std::lock_guard lock(mu_);
    PortCounters total;
    std::string rows;
    std::uint32_t connected = 0;
    for (PortId id = 0; id < ports_.size(); ++id) {
        const Port& p = *ports_[id];
        const PortCounters& c = p.counters;
        auto in = c.msgs_in.load(std::memory_order_relaxed);
        auto bin = c.bytes_in.load(std::memory_order_relaxed);
        auto out = c.msgs_out.load(std::memory_order_relaxed);
        auto bout = c.bytes_out.load(std::memory_order_relaxed);
        auto drops = c.drops.load(std::memory_order_relaxed);
        total.msgs_in += in;
        total.bytes_in += bin;
        total.msgs_out += out;
        total.bytes_out += bout;
        total.drops += drops;
        connected += p.connected() ? 1 : 0;
        if (!p.connected() && in + out + drops == 0) continue;
        rows += fmt::format("{:<6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6}\n", id,
                            p.readers, p.writers, in, bin, out, bout, drops, p.queued());
    }
    std::string out = fmt::format(
        "network {}\npolicy {}\nports {}\nconnected {}\nmsgs_in {}\nbytes_in {}\n"
        "msgs_out {}\nbytes_out {}\ndrops {}\n\n",
        name_, policy_->name(), ports_.size(), connected, total.msgs_in.load(),
        total.bytes_in.load(), total.msgs_out.load(), total.bytes_out.load(), total.drops.load());
    out += fmt::format("{:<6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6}\n", "port",
                       "readers", "writers", "msgs_in", "bytes_in", "msgs_out", "bytes_out",
                       "drops", "queued");
    return out + rows;
}

}  // namespace ipnfs::bus
