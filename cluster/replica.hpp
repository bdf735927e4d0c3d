// One cluster network's membership of its group: what its local ports send
// and how they come and go goes out in batches (cluster/wire.hpp); what the
// group orders, every daemon's, comes back to the network in that order.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bus/cluster.hpp"
#include "bus/thread_safety.hpp"
#include "cluster/engine.hpp"
#include "cluster/wire.hpp"

namespace ipnfs::bus {
class Network;
}

namespace ipnfs::cluster {

class Service;

class Replica final : public bus::Replica, public GroupListener {
  public:
    // Bytes a replica holds for the engine at most: past them a local
    // message is dropped (counted) and an open fails with EAGAIN, so an
    // engine that stops taking messages never makes the daemon grow.
    static constexpr std::size_t kOutboundBytes = 4U << 20;
    // A lossless network's window: what this daemon may have sent that
    // another daemon of the group has not yet delivered to its ports and
    // credited back.  Each message counts kMessageCost more than its
    // payload, so that small messages are bounded in number too: what waits
    // at a slow daemon (its inbound) stays within about a window per
    // sending daemon.  A daemon credits back once it owes a quarter.
    static constexpr std::size_t kWindowBytes = 1U << 20;
    static constexpr std::size_t kMessageCost = 128;

    // `max_message`: the engine's largest message, which bounds a batch.
    Replica(Service& service, bus::Network& network, std::size_t max_message);
    // Leaves the group, once the service's thread no longer uses it.
    ~Replica() override;
    Replica(const Replica&) = delete;
    Replica& operator=(const Replica&) = delete;

    // Joins the network's group through `engine` (the service's).
    bus::Status join(Engine& engine, std::string_view group_name);
    // Once joined and served by the service's thread: waits (at most
    // `limit`) until the group's membership reached this daemon and every
    // member said its settings.  EEXIST, with whose and which, when a
    // member's network of this name has other settings; success when all
    // share them or some did not answer in time (stats and the log say so
    // when they do).
    bus::Status settle(std::chrono::milliseconds limit) EXCLUDES(mu_);

    // bus::Replica, called under the network's lock: they only queue.
    bool publish(const bus::Message& msg, const bus::Origin* to) override EXCLUDES(mu_);
    bool publish_join(bus::PortId port, const bus::Credentials& opener,
                      const bus::Presence& presence) override EXCLUDES(mu_);
    void publish_leave(bus::PortId port) override EXCLUDES(mu_);
    void rejoin(bus::PortId port, const bus::Credentials& opener,
                const bus::Presence& presence) override EXCLUDES(mu_);
    [[nodiscard]] Credit credit(std::size_t bytes) const override EXCLUDES(mu_);
    void consumed(const bus::Origin& origin, std::size_t bytes) override EXCLUDES(mu_);
    [[nodiscard]] bool quorate() const override EXCLUDES(mu_);
    [[nodiscard]] bus::Origin self() const override;
    void stats(std::string& out) const override EXCLUDES(mu_);

    // What the service's quorum watch says (`known` false: nothing watches
    // it, so it counts as no quorum).  The service calls it holding its
    // turn, never its list's lock: a change wakes the network's writers.
    void set_quorum(bool known, bool quorate) EXCLUDES(mu_);

    // The service's thread, one turn at a time: what the group delivered;
    // then what waits to go out, as far as the engine takes it (true if
    // some is still waiting: the engine was busy).
    [[nodiscard]] int fd() const;
    void dispatch() EXCLUDES(mu_);
    bool flush() EXCLUDES(mu_);

    // GroupListener, from dispatch().
    void delivered(Member from, std::span<const std::byte> bytes) override EXCLUDES(mu_);
    void membership(std::span<const Member> members, std::span<const Departure> left,
                    std::span<const Member> joined) override EXCLUDES(mu_);

  private:
    // One record into the current batch (a new batch when it is full);
    // `bounded`: refused past kOutboundBytes.
    bool queue(const wire::Record& record, bool bounded) REQUIRES(mu_);
    void close_batch() REQUIRES(mu_);
    // Bytes waiting for the engine: outbound_ and the batch being filled.
    [[nodiscard]] std::size_t waiting() const REQUIRES(mu_);

    // What stats shows of another daemon of the group (this one's included).
    struct Peer {
        std::uint64_t msgs = 0;
        std::uint64_t bytes = 0;
        std::string differs;  // its shared settings, when they are not ours
        // Lossless: what this daemon sent that it has not credited back, and
        // what it sent that this daemon delivered but has not credited yet.
        std::uint64_t in_flight = 0;
        std::uint64_t owed = 0;
        bool heard = false;  // its hello came
    };
    [[nodiscard]] Credit credit_locked(std::size_t bytes) const REQUIRES(mu_);
    // What one more record of `bytes` of payload takes from every peer's
    // window.
    void charge(std::size_t bytes) REQUIRES(mu_);
    // A credit arrived for this daemon (the service's thread).
    void credited(Member from, const wire::Credit& credit) EXCLUDES(mu_);

    Service& service_;
    bus::Network& network_;
    std::unique_ptr<Group> group_;  // set by join(), then fixed
    Member self_;
    std::string group_name_;
    // Which member's records to take (the others' settings differ): the
    // service's thread only.
    std::string settings_;
    bool lossless_ = false;  // fixed by join()
    // The engine connection ended (dispatch() failed): the service's
    // thread polls it no more.  That thread only.
    bool gone_ = false;

    // mu_ guards what waits to go out, what stats shows and the credit
    // (peers_: in_flight, owed).  A leaf: taken under the network's lock
    // (publish, credit, consumed), never held across an engine call.
    mutable Mutex mu_;
    wire::BatchWriter batch_ GUARDED_BY(mu_);
    std::deque<std::vector<std::byte>> outbound_ GUARDED_BY(mu_);  // whole batches, oldest first
    std::size_t closed_bytes_ GUARDED_BY(mu_) = 0;                 // in outbound_
    bool woken_ GUARDED_BY(mu_) = false;  // the service was told there is work
    // credit() said wait for the backlog: flush() wakes the network once sent.
    mutable bool backlog_full_ GUARDED_BY(mu_) = false;
    std::map<Member, Peer> peers_ GUARDED_BY(mu_);
    bool has_membership_ GUARDED_BY(mu_) = false;  // the group's first came
    std::condition_variable settled_;              // has_membership_ or a hello, for settle()
    std::uint64_t try_agains_ GUARDED_BY(mu_) = 0;
    std::uint64_t batches_out_ GUARDED_BY(mu_) = 0;
    std::uint64_t refused_batches_ GUARDED_BY(mu_) = 0;  // malformed: dropped whole
    std::string dead_ GUARDED_BY(mu_);           // why the engine connection ended, if it did
    bool quorum_known_ GUARDED_BY(mu_) = false;  // a quorum watch runs
    bool quorate_ GUARDED_BY(mu_) = false;
};

}  // namespace ipnfs::cluster
