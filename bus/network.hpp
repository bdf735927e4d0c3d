// A network: ports, one delivery policy, and the total order of its messages.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bus/budget.hpp"
#include "bus/cluster.hpp"
#include "bus/commands.hpp"
#include "bus/extension.hpp"
#include "bus/free_ports.hpp"
#include "bus/message.hpp"
#include "bus/policy.hpp"
#include "bus/port.hpp"
#include "bus/status.hpp"
#include "bus/thread_safety.hpp"
#include "bus/timer.hpp"
#include "bus/waiter.hpp"

namespace ipnfs::bus {

// What readers that are not ports (events and capture files) may make one
// network hold.  Set by root at mount (-o max_event_readers,
// -o max_capture_readers), never through ctl: each such reader costs
// memory (a queue, a snapshot of the members, up to kCaptureQueue messages)
// and anyone who may read the file can open it.
struct Bounds {
    std::uint32_t event_readers = 16;
    std::uint32_t capture_readers = 8;
    static constexpr std::uint32_t kMax = 65536;
    // Bytes of rendered ctl and stats text that open descriptors of one
    // network hold (-o max_text_bytes).  fs keeps that text (NetDir::texts);
    // the number travels here with root's other bounds.
    std::uint32_t text_bytes = 16U << 20;
};

struct Settings {
    std::uint32_t ports = 32;   // AF_IPN's default node count
    std::uint32_t mtu = 1514;   // an Ethernet frame of 1500 bytes of payload, untagged
    std::uint32_t queue = 64;   // messages a port may hold
    bool lossless = false;      // full queues make senders wait instead of dropping
    std::uint32_t pool = 1024;  // lossless: messages pending in the whole network
    // lossless: how long (ms) one port may hold senders back before it turns
    // lossy until its reader reads again; 0: for ever
    std::uint32_t holdtime = 5000;
    // cluster networks: sends are refused while this host's part of the
    // cluster has no quorum (docs/cluster.md)
    bool quorum = false;
};

struct Limits {
    static constexpr std::uint32_t kMaxPorts = 65536;
    // Well below the kernel's FUSE write chunk (128 KiB), so a message is
    // always one write request and never split.
    static constexpr std::uint32_t kMaxMtu = 65535;
    // A superframe a kernel interface hands over whole (Offload): an IPv6
    // packet of 65535 bytes of payload, its header and a tagged Ethernet
    // header.  Only kernel interfaces send them, and only ports that take
    // them whole (kernel interfaces again) receive them, so no file reader
    // ever sees more than kMaxMtu.
    static constexpr std::uint32_t kMaxSuperframe = kMaxMtu + 64;
    static constexpr std::uint32_t kMaxQueue = 65536;
    static constexpr std::uint32_t kMaxPool = 1U << 20;
    // Ids of events-file and capture readers (observers), above every port
    // number.  Ids of closed observers are used again, and their count is
    // bounded (Bounds), so an observer id never reaches past 2^32 and wraps
    // into the port numbers.
    static constexpr PortId kFirstObserver = 1U << 31;
    static_assert(kElsewhere < kFirstObserver);
    // Messages a capture reader holds: it costs at most this many times the
    // MTU, and a reader that falls further behind loses its own copies.
    static constexpr std::uint32_t kCaptureQueue = 1024;
    // ... and at most this many bytes of messages (Message::held_bytes()),
    // whatever the MTU: its copies are outside the byte budgets, so that a
    // reader can never slow a sender.
    static constexpr std::uint64_t kCaptureBytes = 4U << 20;
    static constexpr std::uint32_t kMaxHoldtime = 3'600'000;  // ms: an hour
};

// Told when a poller may want to look again: a watched port got a message,
// or a send that would have waited may not wait now.  Called by a thread
// that holds no bus lock.
class Listener {
  public:
    virtual ~Listener() = default;
    virtual void ready(PortId port) = 0;
};

// What one open descriptor holds on a port (or on the network's events).
struct Connection {
    PortId id = 0;
    bool reads = false;
    bool writes = false;
    Port* port = nullptr;  // stable while connected: connected ports are never removed
    [[nodiscard]] bool observer() const { return id >= Limits::kFirstObserver; }
};

// A receive's filter: take the next message only if it fits.
using Fits = std::function<bool(const Message&)>;

struct SendResult {
    Status status;
    bool parked = false;  // the waiter was parked; it will be completed later
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
    [[nodiscard]] PortId port_count() const EXCLUDES(mu_);

    // Connects to a given port / to the lowest port nobody is connected to.
    // An `exclusive` connection needs a port nobody is connected to and keeps
    // everyone else out until it disconnects (EBUSY).  `opener`: the process
    // whose open this is; if it connects the port, its join event carries it.
    Status connect(PortId id, bool reads, bool writes, Connection& out, bool exclusive = false,
                   const Credentials& opener = {}) EXCLUDES(mu_);
    Status connect_any(bool reads, bool writes, Connection& out, bool exclusive = false,
                       const Credentials& opener = {}) EXCLUDES(mu_);
    // Connects a reader of the network's membership events only; it first
    // receives a join for every connected port and the current counts.
    // ENFILE beyond Bounds::event_readers.
    Status connect_observer(Connection& out) EXCLUDES(mu_);
    // Connects a capture reader: from now on it receives a copy of every
    // data message the network accepts (as sent, before any policy rewrite,
    // time-stamped), never events.  It never slows the network: when its
    // queue (Limits::kCaptureQueue) is full it loses its own copy, counted.
    // ENFILE beyond Bounds::capture_readers.
    Status connect_capture(Connection& out) EXCLUDES(mu_);
    // The connection's reader takes messages with offload state (Offload)
    // as they are, until its port's last reader leaves.  Only a kernel
    // interface that hands them to the kernel whole says so: every other
    // reader (port files, capture, cables, VDE clients) gets plain frames.
    void accept_offload(const Connection& conn) EXCLUDES(mu_);
    // Whether the messages are Ethernet frames (the policy says so).
    [[nodiscard]] bool ethernet() const EXCLUDES(mu_);
    // Copies a connection's port lost (queue full, or reader gone).
    [[nodiscard]] static std::uint64_t drops(const Connection& conn);
    // The last reader leaving discards what its port still held (counted as
    // drops; a capture reader's discarded copies are not).
    void disconnect(const Connection& conn) EXCLUDES(mu_);

    // One message from the connection's port to the recipients its policy
    // names.  Lossy: a recipient whose queue is full drops its copy.
    // Lossless: queued to every recipient or to none; when it cannot be
    // queued now it parks `waiter` (or fails with EAGAIN if there is none).
    // The policy may refuse it (an address nobody holds), now or, for a
    // parked send, when it is routed again.  `hops`: cables it crossed.
    // `sender`: the process that wrote it, for readers that ask.
    // `offload`: a kernel interface's superframe or frame with a checksum
    // left to fill in; it goes only where every recipient takes it as is
    // (accept_offload), else it is refused with ENOTSUP, nothing sent, and
    // the sender sends it again as plain frames.  Its MTU check is on
    // Offload::wire_bytes, its size bound kMaxSuperframe.
    SendResult send(const Connection& conn, std::span<const std::byte> payload, SendWaiter* waiter,
                    const Address& address = {}, std::uint8_t hops = 0,
                    const Credentials& sender = {}, const Offload* offload = nullptr) EXCLUDES(mu_);
    Status send(const Connection& conn, std::span<const std::byte> payload,
                const Address& address = {}, const Credentials& sender = {}) EXCLUDES(mu_) {
        return send(conn, payload, nullptr, address, 0, sender).status;
    }
    // True if the send was parked and is now removed: the caller completes it.
    bool cancel(SendWaiter& waiter) EXCLUDES(mu_);

    // The next message of the port (events included, if it asked for them).
    // With nothing queued: would_block if waiter is null, else the waiter
    // parks (or cancelled if it was cancelled first).  With `fits`, a queued
    // message it rejects stays queued and the answer is would_block.
    // hung_up once the network is gone and the queue is drained.
    Received receive(const Connection& conn, Waiter* waiter, const Fits* fits = nullptr)
        EXCLUDES(mu_);
    // True if the waiter was parked and is now removed: the caller completes
    // it.  Otherwise a later receive() with it reports cancelled, or it was
    // already handed a message.
    bool cancel(const Connection& conn, Waiter& waiter) EXCLUDES(mu_);
    // A reader keeps the unread rest of a data message it took (fs keeps it
    // per open file until read): `bytes` count against the network's and its
    // owner's byte bounds while `out` lives.  False, charging nothing, when
    // they do not fit: the rest is lost, counted in the port's drops and in
    // over_limit_drops, as a queued copy would be.  A lossless sender does
    // not wait for these bytes (ByteBudget::queue_fits): no stall could take
    // a rest back.
    bool charge_rest(const Connection& conn, std::uint64_t bytes, Charge& out) EXCLUDES(mu_);

    // Whether a receive / a send would not wait now.  Either way the listener
    // hears (once) when that may have changed.  A send goes where the policy
    // says (Policy::reach): to the writer's default destination, or, when
    // its records are `framed` (each names an address), anywhere.
    bool poll_readable(const Connection& conn) EXCLUDES(mu_);
    bool poll_writable(const Connection& conn, bool framed = false) EXCLUDES(mu_);
    void set_listener(Listener* listener) EXCLUDES(mu_);

    // Membership events for a port: on, it gets a join for every connected
    // port and the counts first.  Same as the ctl command `events PORT on`.
    Status set_events(PortId id, bool on) EXCLUDES(mu_);

    // Attaches the network's extension (its kernel interfaces and such).
    // Called once, before the network is handed to any client.
    void set_extension(std::unique_ptr<Extension> extension);
    // Tells the extension who may use the network (see Access); the owner
    // also picks the byte budget the network shares (set_budgets).
    void set_access(const Access& access) EXCLUDES(mu_);
    // Root's bounds (mount options); they apply to readers that open later.
    void set_bounds(const Bounds& bounds) EXCLUDES(mu_);
    // The daemon's byte limits: the network's queued bytes are bounded by
    // limits().network, and with its owner's other networks by limits().owner.
    // Without it (unit tests) only the settings bound them.
    void set_budgets(std::shared_ptr<Budgets> budgets) EXCLUDES(mu_);

    // ctl: run command lines / show settings and help / show counters.
    // Lines run in order and stop at the first failure.
    Status control(std::string_view text, const Caller& caller = {}) EXCLUDES(mu_);
    // One setting of the port itself, written without its number ("member 7"
    // runs "member PORT 7") by a holder of the port whose descriptor grants
    // `grant`: only commands with a Holder, and only if `grant` covers it
    // (else EPERM).
    Status control_port(PortId port, std::string_view line, const PortGrant& grant) EXCLUDES(mu_);
    [[nodiscard]] std::string describe() const EXCLUDES(mu_);
    // The network's own ctl verbs (not its policy's or extension's), to list
    // them: these rows do not run (control() runs its own).
    [[nodiscard]] const CommandTable& commands() const { return commands_; }
    [[nodiscard]] std::string stats() const EXCLUDES(mu_);
    // What the daemon as a whole reports of every network (fs's ipnfs.prom),
    // without rendering the network's stats text.
    struct Gauges {
        std::uint64_t parked_readers = 0;
        std::uint64_t parked_senders = 0;
        std::uint64_t held_bytes = 0;  // as stats' held_bytes
    };
    [[nodiscard]] Gauges gauges() const EXCLUDES(mu_);

    // The network is being removed: parked receivers get end of file, parked
    // and later sends fail with EPIPE, connects with ENOENT, and the
    // extension lets go of its connections.
    void hang_up() EXCLUDES(mu_);

    // ---- a network that spans hosts (bus/network_cluster.cpp) ----
    // How `scope cluster` joins the network to its group (main() hands the
    // daemon's); without it the verb fails.  Called once, before any client.
    void set_replicas(ReplicaMaker* replicas) { replicas_ = replicas; }
    // What the group ordered, handed over by the replica in that order (its
    // own daemon's messages and membership included): a data message of a
    // port of `origin`, delivered to this daemon's ports as the policy says;
    // `placed`: the port of this daemon its sender's daemon placed it at,
    // if it did (the replica hands over only what is placed here, if
    // placed at all); a port of `origin` joined (or joined
    // again, with its presence) or left; every port of one daemon left (it
    // failed, was cut off, or let go of the network).
    void ordered_data(const Origin& origin, std::span<const std::byte> payload,
                      const Address& address, const Credentials& sender, std::uint8_t hops,
                      std::optional<PortId> placed) EXCLUDES(mu_);
    void ordered_join(const Origin& origin, const Credentials& opener, const Presence& presence)
        EXCLUDES(mu_);
    void ordered_leave(const Origin& origin) EXCLUDES(mu_);
    void ordered_gone(std::uint32_t node, std::uint32_t daemon) EXCLUDES(mu_);
    // Whether it spans hosts (`scope cluster`): its records carry the node.
    // Changes only while no port is connected, so a reader's own connect()
    // ordered what it reads.
    [[nodiscard]] bool clustered() const { return clustered_.load(std::memory_order_relaxed); }
    // settings_.lossless; fixed while a cluster network is in its group.
    [[nodiscard]] bool lossless() const { return lossless_.load(std::memory_order_relaxed); }
    // A lossless cluster network's credit came back, a daemon left, or the
    // engine is gone: sends waiting for credit go, or fail (the replica
    // calls it, holding no lock).
    void credit_arrived() EXCLUDES(mu_);
    // Another daemon joined the group: this daemon's connected ports are
    // published again, so that it learns them (joins it already knows are
    // ignored where they arrive).
    void announce() EXCLUDES(mu_);
    // The settings every daemon of the group must share, as one line
    // ("policy hub lossless off"): a daemon whose line differs is
    // not one bus with this one.
    [[nodiscard]] std::string shared_settings() const EXCLUDES(mu_);
    // settings_.quorum: whether `scope cluster` needs the engine's quorum.
    [[nodiscard]] bool quorum_required() const EXCLUDES(mu_);

    // Tests only: the next new observer id (to reach the top of the range).
    void set_next_observer_for_test(PortId id) EXCLUDES(mu_);

  private:
    struct AfterUnlock;

    // Functions named *_locked, and every private one below that reads or
    // changes the network's state, need mu_ (REQUIRES, checked by clang);
    // public entry points take it (EXCLUDES).  A Port's fields marked
    // "guarded by Network::mu_" (bus/port.hpp) are reached only through
    // these functions: the analysis cannot name another object's lock, so
    // that part of the rule is kept by Port being internal to bus/.

    // The network's own ctl rows, made for one ctl line around the work list
    // it gathers (`after`: freed room, snapshots) and run under mu_.
    CommandTable command_rows(AfterUnlock& after);
    Status set_policy(std::string_view name) REQUIRES(mu_);
    Status set_number(Words w, std::uint32_t max, const char* what, bool idle_only,
                      std::uint32_t& field) REQUIRES(mu_);
    Status set_ports(Words w) REQUIRES(mu_);
    Status set_lossless(Words w) REQUIRES(mu_);
    Status set_quorum(Words w) REQUIRES(mu_);
    Status set_holdtime(Words w) REQUIRES(mu_);
    Status set_port_flag(Words w, const char* what, bool Port::*flag, AfterUnlock& after)
        REQUIRES(mu_);
    // `scope cluster|node`: joins or leaves the group, which may wait for
    // the local engine, so it runs without mu_ (bus/network_cluster.cpp).
    Status set_scope(Words w) EXCLUDES(mu_);
    // Why a setting cannot change on a cluster network (empty if it can).
    [[nodiscard]] Status cluster_allows(std::string_view what) const REQUIRES(mu_);
    // A local port's message to the group: queued by the replica, delivered
    // when it comes back in order (ordered_data).  On a lossless network it
    // waits (parked in senders_, or EAGAIN) while the replica has no credit.
    SendResult send_cluster(const Connection& conn, MessageRef msg, SendWaiter* waiter)
        REQUIRES(mu_);
    void publish(Port& from, const MessageRef& msg, const std::optional<Origin>& target)
        REQUIRES(mu_);
    [[nodiscard]] bool is_self(const Origin& origin) const REQUIRES(mu_) {
        return origin.node == self_.node && origin.daemon == self_.daemon;
    }
    // What the group should know of a port of this daemon, and telling it
    // when that changed (a reader came or went, a setting ran).
    [[nodiscard]] Presence presence_of(const Port& port) const REQUIRES(mu_);
    void sync_presence(Port& port) REQUIRES(mu_);
    // `quorum on` and this host's part of the cluster has none: why a send
    // is refused (counted), else success.
    Status quorum_allows() REQUIRES(mu_);
    // Pollers waiting for POLLOUT look again.
    void wake_writers(AfterUnlock& after) REQUIRES(mu_);
    // Parked sends that the replica's credit now lets go, in order.
    void drain_window(AfterUnlock& after) REQUIRES(mu_);
    // What the group ordered and this lossless network had no room for yet:
    // delivered in that order as room frees (room_freed()).
    void drain_inbound(AfterUnlock& after) REQUIRES(mu_);
    // Where a message of `origin` comes from here: the port itself when it
    // is this daemon's (the hub leaves a sender out), else cluster_origin_.
    Port& ordered_from(const Origin& origin) REQUIRES(mu_);
    void member_joined(const Origin& origin, const Credentials& opener, const Presence& presence,
                       AfterUnlock& after) REQUIRES(mu_);
    void member_left(const Origin& origin, AfterUnlock& after) REQUIRES(mu_);
    void daemon_gone(std::uint32_t node, std::uint32_t daemon, AfterUnlock& after) REQUIRES(mu_);
    // A send parks (waiter) or is refused with EAGAIN / EINTR; `clock`:
    // start the holdtime when it is the first.
    SendResult park(SendWaiter* waiter, MessageRef msg, Port& from, bool clock) REQUIRES(mu_);
    // The message that holds the others back, and its sender: the head of
    // senders_ (one host), or of inbound_ (a lossless cluster network);
    // null when none waits.
    std::pair<Port*, const MessageRef*> waiting_head() REQUIRES(mu_);
    // A cluster member's join or leave, to every events reader (not to the
    // member's own port).
    void emit_member(Kind kind, const Origin& origin, const Credentials& creds, AfterUnlock& after)
        REQUIRES(mu_);
    void send_cluster_snapshot(Port& port, PortId id, AfterUnlock& after) REQUIRES(mu_);
    // One ctl line; a manager's (written to ctl) is the configuration of the
    // port it sets, a holder's lasts until the port's last close.
    enum class Writer : std::uint8_t { manager, holder };
    Status control_line(std::string_view line, const Caller& caller, Writer writer) EXCLUDES(mu_);
    void apply_port_flag(PortId id, bool Port::*flag, bool on, AfterUnlock& after) REQUIRES(mu_);
    [[nodiscard]] std::uint32_t connected_ports() const REQUIRES(mu_);
    Status attach(Port& port, PortId id, bool reads, bool writes, Connection& out,
                  const Credentials& opener, AfterUnlock& after) REQUIRES(mu_);
    // An observer's port in observers_ (events: else capture), or an error.
    Status add_observer(bool capture, Port*& out) REQUIRES(mu_);
    // Keeps event_ports_ and connected_ in step with a port's state.
    void track(Port& port) REQUIRES(mu_);
    // Who set a port's settings (bus/network_port_settings.cpp).  The
    // network's and its policy's setting lines, as ctl shows them; those of
    // one port.
    [[nodiscard]] std::vector<std::string> setting_lines() const REQUIRES(mu_);
    [[nodiscard]] std::vector<std::string> port_lines(PortId id) const REQUIRES(mu_);
    // A holder is about to change a setting of the port: what it has now is
    // its configuration, unless a holder's change is already in force.
    void holder_changes(Port& port) REQUIRES(mu_);
    // A manager's line ran: if it set a port whose holder's settings are in
    // force, it joins the configuration that port goes back to.
    Status manager_wrote(std::string_view line) REQUIRES(mu_);
    // Its holder changed a setting and its last descriptor closed: every
    // setting back to the defaults, the network's and its policy's, then
    // its configuration again.
    void reset_port(Port& port, AfterUnlock& after) REQUIRES(mu_);
    // The setting lines for ctl, a holder's marked (kHolderSetNote), and in
    // `hidden`, as comments, the configuration lines a holder's change hides
    // until the port's last close.
    void describe_port_settings(std::string& out, std::string& hidden) const REQUIRES(mu_);
    // disconnect(), in parts: an observer leaves observers_ (into `gone`, to
    // be destroyed once its read_mu is unlocked); a port's last reader
    // discards its queue; a port's connection leaves its counts.
    void remove_observer(Port& port, AfterUnlock& after, std::list<Port>& gone)
        REQUIRES(mu_, port.read_mu);
    void stop_receiving(Port& port, AfterUnlock& after) REQUIRES(mu_, port.read_mu);
    void leave(const Connection& conn, bool lost_reader, AfterUnlock& after) REQUIRES(mu_);

    // Policies see queue depths through this (under mu_).
    struct QueueLoad final : Load {
        explicit QueueLoad(const Network& n) : net(n) {}
        [[nodiscard]] std::uint32_t queued(PortId port) const override;
        [[nodiscard]] std::uint32_t capacity(PortId port) const override;
        const Network& net;
    };

    // Routes the message into `route`: it can be queued to every recipient
    // now, or a lossless network must wait for room, or the policy refused
    // it (route.refused says why).  deliver() queues it as routed.  Only
    // deliver() and a final refusal tell the policy the route was accepted
    // (Policy::sent), so a route tried again counts once.  `plain_only`: a
    // message with offload state would reach a reader that does not take it
    // (or a capture reader, or a copy the policy rewrote): refused, the
    // policy not told, as its sender sends it again as plain frames.
    enum class Fit : std::uint8_t { now, wait, refused, plain_only };
    [[nodiscard]] bool takes_offload(const Route& route) const REQUIRES(mu_);
    [[nodiscard]] Fit route_fits(PortId from, const MessageRef& msg, Route& route) REQUIRES(mu_);
    // A message placed at port `id` of this daemon (Policy::place): routed
    // there by the bus alone, as route_fits() routes by the policy.
    [[nodiscard]] Fit placed_fits(PortId id, const MessageRef& msg, Route& route) REQUIRES(mu_);
    // An ordered message of a cluster network, as route_fits() found it.
    void deliver_ordered(Port& from, const Origin& origin, const MessageRef& msg, Fit fit,
                         AfterUnlock& after) REQUIRES(mu_);
    void deliver(Port& from, const MessageRef& msg, const Route& route, AfterUnlock& after)
        REQUIRES(mu_);
    // A copy of a message deliver() accepted to every capture reader.
    void capture(const MessageRef& msg, AfterUnlock& after) REQUIRES(mu_);
    bool enqueue(Port& port, const MessageRef& msg, AfterUnlock& after) REQUIRES(mu_);

    // The consumer side of a port's queue: the next message, or null if none
    // is queued or `fits` rejects it.  take_lockfree() reads the ring only,
    // holding only the port's read_mu; take_locked() also reads the event
    // backlog and frees room for parked senders, under mu_ (the caller
    // holds read_mu too, or the network is lossless: see receive()).
    [[nodiscard]] static MessageRef take_lockfree(Port& port, const Fits* fits)
        REQUIRES(port.read_mu);
    [[nodiscard]] MessageRef take_locked(Port& port, const Fits* fits, AfterUnlock& after)
        REQUIRES(mu_);
    // Whether readers of the port take from its ring without mu_.
    [[nodiscard]] bool takes_lockfree(const Port& port) const;
    // receive() once the ring had nothing for it: the backlog, hang-up or park.
    Received receive_locked(Port& port, Waiter* waiter, const Fits* fits, AfterUnlock& after)
        REQUIRES(mu_, port.read_mu);

    // A copy of a data message is queued / gone: the message is held while
    // any copy is (the pool, the byte budgets).  hold() is false, holding
    // nothing, when a lossy network's budget has no room for it.
    bool hold(const MessageRef& msg) REQUIRES(mu_);
    // A new reader's ring counts against the same budgets (ENOBUFS).
    Status charge_ring(Port& port) REQUIRES(mu_);
    // A copy left the port's queue: true if it was the message's last copy.
    static bool unqueued(Port& port, const MessageRef& msg);
    static bool unhold(Message& msg);  // true for its last copy
    [[nodiscard]] bool budget_fits(std::uint64_t bytes) const REQUIRES(mu_);
    void release(bool last_copy, AfterUnlock& after) REQUIRES(mu_);
    // Lossless: the head of the parked sends waited holdtime.  The ports
    // holding it back turn lossy (stalled) until their readers read again.
    void hold_expired() EXCLUDES(mu_);
    void start_hold_clock() REQUIRES(mu_);
    // The policy's own frames and timer (Policy::tick,
    // bus/network_originate.cpp): policy_tick() runs it now, queues what it
    // sends and arms the timer for when it asks; policy_expired() is that
    // timer.  originate() queues one frame to a port's readers, never
    // waiting: a frame with no room is the port's drop.
    void policy_tick(AfterUnlock& after) REQUIRES(mu_);
    void policy_expired() EXCLUDES(mu_);
    void originate(PortId id, std::span<const std::byte> payload, AfterUnlock& after) REQUIRES(mu_);
    struct HoldingBack {
        Port* port = nullptr;  // none left to stall
        bool discard = false;  // what it holds must go too, not only its holding
    };
    [[nodiscard]] HoldingBack holding_back(const Route& head, const std::vector<Port*>& spared)
        REQUIRES(mu_);
    void stall(Port& port, bool discard, AfterUnlock& after) REQUIRES(mu_);
    void resume(Port& port, AfterUnlock& after) REQUIRES(mu_);
    // Room may have appeared (a message taken, a reader gone, a setting
    // changed, a parked send cancelled): parked sends that now fit go, in
    // order, and pollers waiting for POLLOUT are told to look again.
    void room_freed(AfterUnlock& after) REQUIRES(mu_);
    void discard_queue(Port& port, AfterUnlock& after) REQUIRES(mu_, port.read_mu);
    // Queues an event to every events reader; to the member's own port only
    // if to_member (a port never hears its own join or leave).
    void emit(Kind kind, PortId member, bool to_member, AfterUnlock& after) REQUIRES(mu_);
    // An event that found the port's queue full waits behind it (compacted).
    void hold_event(Port& port, const MessageRef& msg) REQUIRES(mu_);
    void send_snapshot(Port& port, PortId id, AfterUnlock& after) REQUIRES(mu_);
    void send_counts(Port& port, PortId id, AfterUnlock& after) REQUIRES(mu_);
    template <typename F>
    void for_each_event_reader(F&& f) REQUIRES(mu_);

    const std::string name_;
    const PolicyCatalog& catalog_;
    CommandTable commands_;  // command_rows() and unlocked_commands_ without run, for commands()
    // The network's verbs that run without mu_ (they may wait for the
    // cluster engine): control_line() runs them before taking it.
    CommandTable unlocked_commands_;

    // mu_ guards everything below marked GUARDED_BY(mu_): settings, the shape
    // of ports_, each port's counts, flags, waiters and queue producer side
    // (and, on a lossless network, the consumer side too, so freed room and
    // parked senders meet under one lock), the policy and its state, the
    // pool, parked senders, and the order of messages (taken once per send
    // for the whole fan-out, which is what makes the order total).
    // Lock order: a port's read_mu, then mu_, then Timer's and Budgets' locks
    // and the policy catalog's.
    mutable Mutex mu_;
    Settings settings_ GUARDED_BY(mu_);
    Bounds bounds_ GUARDED_BY(mu_);
    std::vector<std::unique_ptr<Port>> ports_ GUARDED_BY(mu_);
    // Readers of the events file and capture readers.
    std::list<Port> observers_ GUARDED_BY(mu_);
    std::uint32_t capture_readers_ GUARDED_BY(mu_) = 0;  // observers_ with capture set
    // Ports with events on and a reader, and connected ports, each in no
    // order (Port::event_slot, Port::connected_slot): event fan-out, snapshots
    // and connect_any never walk the whole port table.
    std::vector<Port*> event_ports_ GUARDED_BY(mu_);
    std::vector<PortId> connected_ GUARDED_BY(mu_);
    FreePorts free_ GUARDED_BY(mu_);                   // ports nobody is connected to
    std::uint64_t captured_ GUARDED_BY(mu_) = 0;       // copies handed to capture readers
    std::uint64_t capture_drops_ GUARDED_BY(mu_) = 0;  // copies capture readers lost
    std::unique_ptr<Policy> policy_ GUARDED_BY(mu_);
    boost::intrusive::list<SendWaiter> senders_ GUARDED_BY(mu_);  // parked sends, oldest first
    std::uint32_t pool_used_ GUARDED_BY(mu_) = 0;        // messages with pending queue copies
    std::uint32_t receiving_ports_ GUARDED_BY(mu_) = 0;  // ports with a reader
    std::uint32_t sending_ports_ GUARDED_BY(mu_) = 0;    // ports with a writer
    std::uint32_t parked_readers_ GUARDED_BY(mu_) = 0;
    std::uint64_t next_seq_ GUARDED_BY(mu_) = 1;
    PortId next_observer_ GUARDED_BY(mu_) = Limits::kFirstObserver;
    // Ids of closed observers, used again first.
    std::vector<PortId> free_observer_ids_ GUARDED_BY(mu_);
    bool hung_up_ GUARDED_BY(mu_) = false;
    std::string last_error_ GUARDED_BY(mu_);
    // settings_.lossless, readable without mu_ (an atomic, not GUARDED_BY):
    // it changes only while no port is connected, so a reader's own
    // connect() ordered it.
    std::atomic<bool> lossless_{false};
    Listener* listener_ GUARDED_BY(mu_) = nullptr;
    // Storage for the route of the send in progress (send(), room_freed(),
    // hold_expired()), reused so that routing allocates nothing.
    Route route_ GUARDED_BY(mu_);
    QueueLoad load_{*this};
    // Storage for poll_writable()'s Policy::reach(), reused.
    Reach reach_ GUARDED_BY(mu_);
    // Ports whose pollers wait for POLLOUT.
    std::vector<PortId> write_watchers_ GUARDED_BY(mu_);
    // Bytes of queued messages (see hold()); its limit is the daemon's
    // per-network bound, 0 without set_budgets().  Atomics, not GUARDED_BY:
    // a reader's take_lockfree() releases bytes without mu_.
    ByteBudget held_;
    std::shared_ptr<Budgets> budgets_ GUARDED_BY(mu_);
    uid_t owner_uid_ GUARDED_BY(mu_) = 0;
    // Shared with the owner's networks; null for root.
    ByteBudget* owner_budget_ GUARDED_BY(mu_) = nullptr;
    // Lossy copies dropped for the byte budgets.
    std::uint64_t over_limit_drops_ GUARDED_BY(mu_) = 0;
    // When the head of senders_ started waiting.
    Timer::Clock::time_point head_since_ GUARDED_BY(mu_);
    // Times a port turned lossy for holding senders.
    std::uint64_t stalls_ GUARDED_BY(mu_) = 0;
    struct HoldTimer final : Timed {
        explicit HoldTimer(Network& n) : net(n) {}
        void expired() override { net.hold_expired(); }
        Network& net;
    };
    HoldTimer hold_timer_{*this};
    struct PolicyTimer final : Timed {
        explicit PolicyTimer(Network& n) : net(n) {}
        void expired() override { net.policy_expired(); }
        Network& net;
    };
    PolicyTimer policy_timer_{*this};

    // Cluster scope (`scope cluster`): the network's membership of its
    // group, set only while no port is connected; null on a network of this
    // host alone.  Its calls only queue, so it is called under mu_; it is
    // destroyed without mu_ (leaving the group may wait for the engine).
    ReplicaMaker* replicas_ = nullptr;
    std::unique_ptr<Replica> replica_ GUARDED_BY(mu_);
    Origin self_ GUARDED_BY(mu_);         // replica_->self(), kept for the hot path
    std::atomic<bool> clustered_{false};  // replica_ is set: readable without mu_
    // The group's ports as the order made them (this daemon's included):
    // what events readers' snapshots list, and what the policy was told of
    // other daemons' ports.
    struct Member {
        Credentials opener;
        Presence presence;
    };
    std::map<Origin, Member> members_ GUARDED_BY(mu_);
    // Where other daemons' messages come from: counters only, never
    // connected (its id is no port's).
    Port cluster_origin_{kElsewhere};
    // Local messages the replica had no room for (the engine that far behind).
    std::uint64_t cluster_drops_ GUARDED_BY(mu_) = 0;
    // Messages placed at a port of this daemon that no longer received when
    // the group delivered them.
    std::uint64_t cluster_unreachable_ GUARDED_BY(mu_) = 0;
    // A lossless cluster network's ordered items that wait for room here,
    // in the order: data (msg set) or a member's join, leave, or a whole
    // daemon gone.  Bounded by the credit every daemon holds back for this
    // one (cluster/replica.hpp, kWindowBytes).
    struct Ordered {
        enum class What : std::uint8_t { data, join, leave, gone } what;
        Origin origin;
        MessageRef msg;                // data
        std::optional<PortId> placed;  // data placed at a port of this daemon
        Credentials creds;             // join
        Presence presence;             // join
    };
    std::deque<Ordered> inbound_ GUARDED_BY(mu_);
    std::uint64_t window_waits_ GUARDED_BY(mu_) = 0;  // sends that waited for credit
    // `quorum on`: sends refused (or parked ones failed) without quorum.
    std::uint64_t quorum_refusals_ GUARDED_BY(mu_) = 0;

    // Set once before any client; it has its own lock, never taken under mu_
    // (its commands call into the network).
    std::unique_ptr<Extension> extension_;
    std::atomic<bool> extension_hung_up_{false};
};

}  // namespace ipnfs::bus
