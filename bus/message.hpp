// One message on a network: a single refcounted buffer that every recipient
// queue points at, so fan-out copies pointers, never payload bytes.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include <boost/intrusive_ptr.hpp>

#include "bus/credentials.hpp"

namespace ipnfs::bus {

class ByteBudget;
using PortId = std::uint32_t;

// What a message carries: data a port sent, or a membership event the bus
// generated.  Events are delivered only to ports (and events files) that
// asked for them, and are never dropped.
enum class Kind : std::uint16_t {
    data = 0,
    join = 1,    // port from() connected (its first descriptor opened)
    leave = 2,   // port from() disconnected (its last descriptor closed)
    counts = 3,  // payload: two uint32, ports that receive and ports that send
    // payload: one uint64, the messages this port lost since it was last told
    // (it held lossless senders back past the network's holdtime)
    lost = 4,
};

// Where the sender asked a message to go.  Only policies that take
// addresses (the group) look at it; `standard` leaves the choice to the
// policy.  The numbers are include/ipnfs.h's IPNFS_TO_*.
enum class To : std::uint8_t { standard = 0, port = 1, anycast = 2, multicast = 3, broadcast = 4 };
struct Address {
    To to = To::standard;
    std::uint32_t lower = 0;  // port: the port; anycast, multicast: the lowest instance
    // multicast: the highest instance; port: on a cluster network, the
    // port's node (0: this host's)
    std::uint32_t upper = 0;
};

// The offload state of a frame a kernel interface handed over whole: a TCP
// or UDP superframe to be cut into wire frames, or a frame whose checksum
// is left to be filled in (a virtio_net_hdr).  Only netdev/ writes and reads
// `state`; the bus and policies carry it, and keep it from every port that
// did not say it takes such frames (Network::accept_offload).
struct Offload {
    std::array<std::byte, 10> state{};  // virtio_net_hdr, as netdev/ wrote it
    // The longest wire frame it stands for: what the network's MTU bounds.
    std::uint32_t wire_bytes = 0;
};

class Message;
using MessageRef = boost::intrusive_ptr<Message>;

class Message {
  public:
    // Copies the payload once, into a buffer sized for it (and for the
    // offload state, if any, kept after the payload).
    static MessageRef make(PortId from, std::span<const std::byte> payload, Kind kind = Kind::data,
                           const Offload* offload = nullptr);

    [[nodiscard]] std::span<const std::byte> payload() const {
        return {reinterpret_cast<const std::byte*>(this + 1), size_};
    }
    // Null for a plain frame (every message but a kernel interface's
    // superframes and frames with a checksum left to fill in).  A plain
    // message pays nothing for it: the flag sits in padding, and only an
    // offloaded one carries the state, after its payload (Offload: 16 bytes).
    [[nodiscard]] const Offload* offload() const {
        if (!has_offload_) return nullptr;
        return reinterpret_cast<const Offload*>(reinterpret_cast<const std::byte*>(this + 1) +
                                                offload_at());
    }
    [[nodiscard]] PortId from() const { return from_; }
    [[nodiscard]] Kind kind() const { return kind_; }
    [[nodiscard]] bool is_event() const { return kind_ != Kind::data; }
    // Set before the message is sent, never after.
    [[nodiscard]] const Address& address() const { return address_; }
    void set_address(const Address& address) { address_ = address; }
    // Position in the network's total order; set once, under the network lock,
    // before the message is visible to any receiver.
    [[nodiscard]] std::uint64_t seq() const { return seq_; }
    void set_seq(std::uint64_t seq) { seq_ = seq; }
    // Cables between networks this message has crossed (AF_IPN's depth): a
    // cable refuses it past its hop limit, so cabled loops cannot melt the
    // machine.  Set before the message is sent, never after.
    [[nodiscard]] std::uint8_t hops() const { return hops_; }
    void set_hops(std::uint8_t hops) { hops_ = hops; }
    // When the network accepted it (CLOCK_REALTIME, ns since the epoch), for
    // capture readers; 0 when none was open, as the clock is read only then.
    // Set once, under the network lock, before any receiver sees it.
    [[nodiscard]] std::uint64_t time_ns() const { return time_ns_; }
    void set_time_ns(std::uint64_t ns) { time_ns_ = ns; }
    // Who wrote it (a data message) or opened the port (a join), for readers
    // that ask (IPNFS_IOC_SET_CREDS).  Set before the message is sent, never
    // after.  Kept as loose fields, not a Credentials, so that they fill
    // padding: they cost 8 bytes a message (80 instead of 72).
    [[nodiscard]] Credentials credentials() const {
        return {cred_pid_, cred_uid_, cred_gid_, has_creds_};
    }
    void set_credentials(const Credentials& c) {
        cred_pid_ = c.pid;
        cred_uid_ = c.uid;
        cred_gid_ = c.gid;
        has_creds_ = c.known;
    }

    // The node whose port sent it (a data message) or joined or left (an
    // event), on a network that spans hosts (`scope cluster`); 0 on a
    // network of this host alone.  Set before the message is sent, never
    // after.
    static constexpr std::uint32_t kMaxNode = (1U << 24) - 1;
    [[nodiscard]] std::uint32_t node() const { return node_; }
    void set_node(std::uint32_t node) { node_ = node & kMaxNode; }

    Message(const Message&) = delete;
    Message& operator=(const Message&) = delete;

  private:
    Message(PortId from, std::uint32_t size, Kind kind, bool has_offload)
        : size_(size), from_(from), kind_(kind), has_offload_(has_offload ? 1 : 0) {}
    ~Message() = default;
    // Where the offload state starts after the header: the payload, rounded
    // up to the state's alignment.
    static std::size_t offload_at(std::size_t size) {
        return (size + alignof(Offload) - 1) & ~(alignof(Offload) - 1);
    }
    [[nodiscard]] std::size_t offload_at() const { return offload_at(size_); }
    static std::size_t extra_bytes(std::size_t size, bool has_offload) {
        return has_offload ? offload_at(size) - size + sizeof(Offload) : 0;
    }

    friend void intrusive_ptr_add_ref(Message* m) {
        m->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    friend void intrusive_ptr_release(Message* m);

    std::atomic<std::uint32_t> refs_{0};
    std::uint32_t size_;
    PortId from_;
    Kind kind_;
    std::uint8_t hops_ = 0;
    bool has_creds_ = false;
    Address address_;
    // Both in the padding before seq_: free.  The node is 24 bits (the
    // cluster layer refuses engine node ids that do not fit).
    std::uint32_t has_offload_ : 1;
    std::uint32_t node_ : 24 = 0;
    std::uint64_t seq_ = 0;
    std::uint64_t time_ns_ = 0;
    std::uint32_t cred_pid_ = 0;
    std::uint32_t cred_uid_ = 0;
    std::uint32_t cred_gid_ = 0;

  public:
    // Queue copies not yet taken or discarded: the network's pool and byte
    // budgets count a message while this is non-zero.  Raised only under the
    // network lock, before the copy is queued; lowered by whoever takes or
    // discards a copy (lock-free readers of a lossy network included).
    std::atomic<std::uint32_t> pending_copies{0};
    // What the message was charged to when its first copy was queued (see
    // bus/budget.hpp): the network's budget, and its owner's, or null.
    ByteBudget* charged_network = nullptr;
    ByteBudget* charged_owner = nullptr;
    // Bytes it is charged for: header, payload and offload state.
    [[nodiscard]] std::uint64_t held_bytes() const {
        return sizeof(Message) + size_ + extra_bytes(size_, has_offload_);
    }
};

}  // namespace ipnfs::bus
