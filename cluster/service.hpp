// The daemon's cluster service: one engine, and one thread that serves
// every cluster network's group (delivers what the group ordered, sends
// what waits to go out) and the engine's quorum watch (tells every
// network whether this host's part of the cluster has quorum).  FUSE workers never wait for the
// engine but to join or leave a group (`scope cluster`, a network's removal).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "bus/cluster.hpp"
#include "bus/thread_safety.hpp"
#include "cluster/engine.hpp"

namespace ipnfs::cluster {

class Replica;

class Service final : public bus::ReplicaMaker, private QuorumListener {
  public:
    explicit Service(std::unique_ptr<Engine> engine);
    ~Service() override;
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Joins the network's group ("ipnfs:" and its name): ECONNREFUSED when
    // the engine does not run, with its reason.  Starts watching quorum
    // with the first group; a network with `quorum on` needs it (ENOTSUP
    // when corosync has no votequorum).
    [[nodiscard]] bus::MadeReplica make(bus::Network& network) override EXCLUDES(mu_, turn_mu_);

    // A replica has something to send.
    void wake();
    // The replica is going: once this returns, the thread never uses it.
    void remove(Replica& replica) EXCLUDES(mu_, turn_mu_);

  private:
    void add(Replica& replica) EXCLUDES(mu_, turn_mu_);
    void loop() EXCLUDES(mu_, turn_mu_);
    // Starts the quorum watch unless one runs: success, or why it cannot.
    bus::Status watch_quorum() EXCLUDES(mu_, turn_mu_);
    // QuorumListener, from the watch's dispatch() in a turn.
    void quorum(bool quorate) override EXCLUDES(mu_);
    // Tells every listed replica; the caller holds the turn, so none goes.
    void tell_quorum(bool known, bool quorate) EXCLUDES(mu_);
    // The watch failed (the engine is gone): the thread lets go of it.
    void end_watch(const bus::Status& why) EXCLUDES(mu_);

    std::unique_ptr<Engine> engine_;
    int wake_fd_ = -1;  // an eventfd: work to send, or the replica list changed
    // mu_ guards the replica list and the thread's start and stop; the
    // loop reads the listed replicas' descriptors under it, since remove()
    // may destroy a replica as soon as it is off the list.
    Mutex mu_;
    std::vector<Replica*> replicas_ GUARDED_BY(mu_);
    bool stop_ GUARDED_BY(mu_) = false;
    std::thread thread_ GUARDED_BY(mu_);
    // The quorum watch, made by a FUSE worker (make()), then used and ended
    // by the thread alone (the destructor's after it stopped).
    std::unique_ptr<QuorumWatch> watch_ GUARDED_BY(mu_);
    bool quorate_ GUARDED_BY(mu_) = false;  // the watch's last word
    // Held by the thread for one turn (dispatch and send); remove() takes it
    // to wait out a turn that may still use the replica, add() and
    // watch_quorum() to tell replicas the quorum in turn with the watch's
    // news.  Taken before any network's lock (a turn delivers into
    // networks), never under one.
    Mutex turn_mu_;
};

}  // namespace ipnfs::cluster
