// One port of a network: its connection counts, its bounded queue, the
// receivers parked on it, and its counters.  Internal to bus/: other layers
// reach ports through Network and Connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/intrusive/list.hpp>
#include <boost/lockfree/spsc_queue.hpp>

#include "bus/backlog.hpp"
#include "bus/member.hpp"
#include "bus/message.hpp"
#include "bus/thread_safety.hpp"
#include "bus/waiter.hpp"

namespace ipnfs::bus {

// Counters are written by senders and receivers without a common lock and
// read by stats at any time: relaxed atomics, each exact on its own.
struct PortCounters {
    std::atomic<std::uint64_t> msgs_in{0};  // messages this port sent into the network
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> msgs_out{0};  // messages its readers took
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> drops{0};  // copies lost here: queue full or reader gone
};

struct Port {
    explicit Port(PortId port_id) : id(port_id) {}

    const PortId id;  // its number, or an observer's id (Limits::kFirstObserver and up)

    // Single producer (senders, serialized by Network::mu_), single consumer
    // (readers, serialized by read_mu): the hot path from a sender's thread
    // to a reader's thread, so a reader never takes the network lock while
    // its queue has messages.
    using Ring = boost::lockfree::spsc_queue<MessageRef>;

    // Guarded by Network::mu_, down to read_mu.  Not marked GUARDED_BY: the
    // lock is another object's, which the analysis cannot name from here.
    // Only Network touches them, in functions that REQUIRES(mu_) (checked);
    // a Port is internal to bus/, so nothing else can.
    std::uint32_t readers = 0;
    std::uint32_t writers = 0;
    // Made and reset under Network::mu_, when the port gains its first
    // reader / loses its last.  A reader reads the pointer without mu_
    // (Network::take_lockfree): the ring cannot go while it is a reader.
    std::unique_ptr<Ring> ring;
    std::uint32_t capacity = 0;  // ring size, fixed at first reader
    // Events that found the ring full wait here, in order, after the ring's
    // messages: events are never dropped, only coalesced (bus/backlog.hpp).
    // While it is non-empty no data is queued (data waits or drops as for a
    // full ring), so order is kept.
    Backlog overflow;
    boost::intrusive::list<Waiter> waiters;  // non-empty only while nothing is queued
    bool watched = false;                    // a poller wants to hear of the next message
    bool watched_out = false;                // a poller wants to hear when a send may not wait
    bool events = false;                     // also receives membership events
    bool drop_when_full = false;  // lossless network: loses its own copies instead of waiting
    // Set while a holder's change of its settings is in force
    // (IPNFS_IOC_PORT_CTL, IPNFS_IOC_SET_EVENTS): the setting lines its last
    // close brings back, a manager's configuration
    // (bus/network_port_settings.cpp).
    std::unique_ptr<std::vector<std::string>> configuration;
    bool configured = false;  // a manager wrote a setting of it to ctl, ever
    bool exclusive = false;   // its one connection refuses company (a kernel interface)
    // Its reader takes messages with offload state as they are
    // (Network::accept_offload); cleared when its last reader leaves.
    bool takes_offload = false;
    // Who opened its first descriptor (not known for a kernel interface, a
    // cable or a VDE client): its join events carry it.
    Credentials joined_by;
    // On a cluster network: what the group was last told of it (its join's
    // presence, or a rejoin's since).
    Presence published;
    // A capture reader (an observer): gets a copy of every data message the
    // network accepts, never events; its copies stay out of the lossless
    // pool, and a full ring drops its own copy, so it never holds a sender.
    bool capture = false;
    // A capture reader's queued bytes (Limits::kCaptureBytes): added by
    // senders under the network lock, taken off by its reader without it.
    std::atomic<std::uint64_t> capture_bytes{0};
    // Its place in Network::event_ports_ / Network::connected_, or kNoSlot.
    static constexpr std::uint32_t kNoSlot = ~std::uint32_t{0};
    std::uint32_t event_slot = kNoSlot;
    std::uint32_t connected_slot = kNoSlot;
    // Lossless network: it held senders back past the holdtime, so it loses
    // its own copies when full (as drop_when_full) until its reader reads
    // again; then a reader with events on gets `lost` with this count.
    bool stalled = false;
    std::uint64_t lost = 0;
    // What its ring is charged (bus/budget.hpp), and to which owner budget.
    std::uint64_t ring_bytes = 0;
    ByteBudget* ring_owner = nullptr;

    // Serializes the consumers of ring: several descriptors may read one port.
    // Lock order: read_mu before Network::mu_.
    Mutex read_mu;

    // Relaxed atomics, outside every lock (see PortCounters).
    PortCounters counters;

    [[nodiscard]] bool connected() const { return readers + writers > 0; }
    // Producer-side view of the depth, exact under Network::mu_.
    [[nodiscard]] std::uint32_t queued() const {
        if (!ring) return 0;
        return capacity - static_cast<std::uint32_t>(ring->write_available()) +
               static_cast<std::uint32_t>(overflow.size());
    }
    // A data message could be queued now without dropping or waiting.
    [[nodiscard]] bool has_room() const {
        return ring && (!waiters.empty() || (overflow.empty() && ring->write_available() > 0));
    }
};

}  // namespace ipnfs::bus
