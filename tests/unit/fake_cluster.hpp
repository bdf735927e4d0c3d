// An in-process stand-in for corosync's CPG (cluster/engine.hpp), for unit
// tests of what runs on the engine: no daemon, no network, and the failures
// a test wants on demand (a busy engine, a node killed, a partition and its
// merge).  The real engine is tested against a real corosync
// (tests/integration).
//
// The guarantee it keeps is CPG's virtual synchrony: every send() and every
// membership change is appended, under the cluster's one lock, to the inbox
// of every member of the sender's side of the cluster, so every member of a
// side dispatches the same sequence of messages and changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cluster/engine.hpp"

namespace ipnfs::test {

class FakeClusterState;

class FakeCluster {
  public:
    // What corosync's CPG takes by default is about 1 MiB.
    static constexpr std::size_t kDefaultMaxMessage = 1U << 20;

    explicit FakeCluster(std::size_t max_message = kDefaultMaxMessage);
    ~FakeCluster();
    FakeCluster(const FakeCluster&) = delete;
    FakeCluster& operator=(const FakeCluster&) = delete;

    // The engine a daemon with process id `pid` on `node` sees.  Its groups
    // and the cluster may outlive this object in any order.
    std::unique_ptr<cluster::Engine> engine(std::uint32_t node, std::uint32_t pid);

    // While busy, send() on that node's groups answers try_again and sends
    // nothing (CS_ERR_TRY_AGAIN).
    void set_busy(std::uint32_t node, bool busy);
    // The node's corosync dies: its groups answer send() with failed, their
    // fd turns readable and dispatch() fails (ECONNRESET); every other member
    // sees its members leave (Left::down).  Its engines' join() fails with
    // ECONNREFUSED until restart(node).
    void kill(std::uint32_t node);
    void restart(std::uint32_t node);
    // Cuts the cluster into sides, one per list of nodes (nodes named in no
    // list form one more side): each member sees the members on other sides
    // leave (Left::down) and a message reaches only its sender's side.
    void split(const std::vector<std::vector<std::uint32_t>>& sides);
    // Merges every side again: each member sees the others join, as after
    // CPG's merge; what a side sent while cut off stays on that side.
    void heal();
    // A send() over this fails the sending group (EMSGSIZE from dispatch()):
    // a daemon must never try it.
    void set_max_message(std::size_t bytes);
    // Quorum as the node's votequorum says it (every node is quorate until
    // a test says otherwise): its quorum watches hear of the change.  The
    // fake does not derive it from split(): a test says what each side has.
    void set_quorate(std::uint32_t node, bool quorate);
    // Without a quorum service (a corosync.conf with another provider),
    // watch_quorum() on the node fails with ENOTSUP.
    void set_quorum_service(std::uint32_t node, bool present);

  private:
    std::shared_ptr<FakeClusterState> state_;
};

}  // namespace ipnfs::test
