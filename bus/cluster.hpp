// The bus side of a network that spans hosts (`scope cluster`): what a
// network hands the layer that orders it across hosts (cluster/), and what
// it gets back.  The bus knows no engine: it publishes its own ports'
// messages and membership, and delivers what comes back in the group's one
// agreed order (its own included), so every host sees the same order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bus/credentials.hpp"
#include "bus/member.hpp"
#include "bus/message.hpp"
#include "bus/status.hpp"

namespace ipnfs::bus {

class Network;

// One network's membership in its group.  The network calls it under its
// lock, so every call only queues, never waits.  Destroying it leaves the
// group; once the destructor returns it calls the network no more.
class Replica {
  public:
    virtual ~Replica() = default;
    // A data message of a port of this daemon (from(), payload, address,
    // credentials, hops), to be ordered.  `to`: the one port it goes to,
    // which its sender's daemon chose (a unicast or anycast); null: every
    // daemon routes it among its own ports.  False when the engine is that
    // far behind (the replica's outbound bound): nothing is queued.
    virtual bool publish(const Message& msg, const Origin* to) = 0;
    // A port of this daemon connected / disconnected.  A join is refused
    // like a message when the replica is that far behind (the open fails);
    // a leave is always queued (one per join, so bounded by the ports).
    virtual bool publish_join(PortId port, const Credentials& opener, const Presence& presence) = 0;
    virtual void publish_leave(PortId port) = 0;
    // A connected port's join again: for a daemon that joined the group
    // since (Network::announce), or with its presence changed.  Always
    // queued, like a leave: announces are one per port, and where a user
    // could repeat a change (a setting) the network asks credit() first; a
    // reader's going pairs with its coming, which did.
    virtual void rejoin(PortId port, const Credentials& opener, const Presence& presence) = 0;
    // Flow control of a lossless network (docs/cluster.md): whether this
    // daemon may publish a message of `bytes` now (every daemon of the group
    // that shares its settings has taken all but a window of what this one
    // sent), must wait for credit, or never will (the engine is gone).
    enum class Credit { now, wait, gone };
    [[nodiscard]] virtual Credit credit(std::size_t bytes) const = 0;
    // A lossless network delivered a data message of `origin`'s daemon,
    // `bytes` long, to its ports (or its policy refused it), or took in one
    // of its joins or leaves (`bytes` 0): room that daemon gets back.
    virtual void consumed(const Origin& origin, std::size_t bytes) = 0;
    // Whether this host's part of the cluster has quorum (the engine's
    // quorum service said so last; false while it is not known).  A network
    // with `quorum on` refuses sends while it has not (docs/cluster.md).
    [[nodiscard]] virtual bool quorate() const = 0;
    // This daemon as the group knows it (Origin::node and Origin::daemon).
    [[nodiscard]] virtual Origin self() const = 0;
    // Its stats section: the group, and a row per node.
    virtual void stats(std::string& out) const = 0;
};

struct MadeReplica {
    Status status;
    std::unique_ptr<Replica> replica;  // set exactly when status is ok
};

// Joins a network to its group; the daemon's main() hands one to every
// network.  make() may wait briefly for the local engine: never called
// under the network's lock.
class ReplicaMaker {
  public:
    virtual ~ReplicaMaker() = default;
    [[nodiscard]] virtual MadeReplica make(Network& network) = 0;
};

}  // namespace ipnfs::bus
