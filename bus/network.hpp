// A network: ports, one delivery policy, and the total order of its messages.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "bus/commands.hpp"
#include "bus/message.hpp"
#include "bus/policy.hpp"
#include "bus/port.hpp"
#include "bus/status.hpp"
#include "bus/waiter.hpp"

namespace ipnfs::bus {

struct Settings {
    std::uint32_t ports = 32;  // AF_IPN's default node count
    std::uint32_t mtu = 1514;  // Ethernet frame with a VLAN tag
    std::uint32_t queue = 64;  // messages a port may hold before it drops
};

struct Limits {
    static constexpr std::uint32_t kMaxPorts = 65536;
    // Well below the kernel's FUSE write chunk (128 KiB), so a message is
    // always one write request and never split.
    static constexpr std::uint32_t kMaxMtu = 65535;
    static constexpr std::uint32_t kMaxQueue = 65536;
};

// Told when something changes that a poller may wait for.  Called by a
// thread that holds no bus lock.
class Listener {
  public:
    virtual ~Listener() = default;
    virtual void readable(PortId port) = 0;
};

// What one open descriptor holds on a port.
struct Connection {
    PortId id = 0;
    bool reads = false;
    bool writes = false;
    Port* port = nullptr;  // stable while connected: connected ports are never removed
};

class Network {
  public:
    Network(std::string name, const Settings& settings, const PolicyCatalog& catalog,
            std::unique_ptr<Policy> policy);
    ~Network();
    Network(const Network&) = delete;
    Network& operator=(const Network&) = delete;

    // Makes a network with the named policy; EINVAL if there is no such policy.
    static Status create(std::string name, const Settings& settings, const PolicyCatalog& catalog,
                         std::string_view policy, std::shared_ptr<Network>& out);

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] PortId port_count() const;

    // Connects to a given port / to the lowest port nobody is connected to.
    Status connect(PortId id, bool reads, bool writes, Connection& out);
    Status connect_any(bool reads, bool writes, Connection& out);
    // The last reader leaving discards what its port still held (counted as drops).
    void disconnect(const Connection& conn);

    // One message from the connection's port to the recipients its policy
    // names.  Lossy: a recipient whose queue is full drops its copy.
    Status send(const Connection& conn, std::span<const std::byte> payload);

    // The next message of the port.  With no message queued: would_block if
    // waiter is null, else the waiter parks (or cancelled if it was cancelled
    // first).  hung_up once the network is gone and the queue is drained.
    Received receive(const Connection& conn, Waiter* waiter);
    // True if the waiter was parked and is now removed: the caller completes
    // it.  Otherwise a later receive() with it reports cancelled, or it was
    // already handed a message.
    bool cancel(const Connection& conn, Waiter& waiter);

    // True if a receive would not wait now.  Either way the listener hears
    // of the next message for this port (once).
    bool poll_readable(const Connection& conn);
    void set_listener(Listener* listener);

    // ctl: run command lines / show settings and help / show counters.
    Status control(std::string_view text);
    [[nodiscard]] std::string describe() const;
    [[nodiscard]] std::string stats() const;

    // The network is being removed: parked receivers get end of file, sends
    // fail with EPIPE, connects with ENOENT.
    void hang_up();

  private:
    void build_commands();
    Status set_policy(std::string_view name);
    Status set_mtu(Words w);
    Status set_queue(Words w);
    Status set_ports(Words w);
    [[nodiscard]] std::uint32_t connected_ports() const;
    Status attach(Port& port, PortId id, bool reads, bool writes, Connection& out);

    const std::string name_;
    const PolicyCatalog& catalog_;
    CommandTable commands_;

    // mu_ guards everything below: settings, the shape of ports_, each port's
    // counts, queue producer side, waiters and watch flag, the policy and its
    // state, and the order of messages (taken once per send for the whole
    // fan-out, which is what makes the order total).
    mutable std::mutex mu_;
    Settings settings_;
    std::vector<std::unique_ptr<Port>> ports_;
    std::unique_ptr<Policy> policy_;
    std::uint64_t next_seq_ = 1;
    bool hung_up_ = false;
    std::string last_error_;
    Listener* listener_ = nullptr;
    std::vector<PortId> recipients_;  // scratch for route(), reused under mu_
};

}  // namespace ipnfs::bus
