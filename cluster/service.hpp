// The daemon's cluster service: one engine, and one thread that serves
// every cluster network's group (delivers what the group ordered, sends
// what waits to go out).  FUSE workers never wait for the engine but to
// join or leave a group (`scope cluster`, a network's removal).
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "bus/cluster.hpp"
#include "bus/thread_safety.hpp"
#include "cluster/engine.hpp"

namespace ipnfs::cluster {

class Replica;

class Service final : public bus::ReplicaMaker {
  public:
    explicit Service(std::unique_ptr<Engine> engine);
    ~Service() override;
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    // Joins the network's group ("ipnfs:" and its name): ECONNREFUSED when
    // the engine does not run, with its reason.
    [[nodiscard]] bus::MadeReplica make(bus::Network& network) override EXCLUDES(mu_, turn_mu_);

    // A replica has something to send.
    void wake();
    // The replica is going: once this returns, the thread never uses it.
    void remove(Replica& replica) EXCLUDES(mu_, turn_mu_);

  private:
    void add(Replica& replica) EXCLUDES(mu_);
    void loop() EXCLUDES(mu_, turn_mu_);

    std::unique_ptr<Engine> engine_;
    int wake_fd_ = -1;  // an eventfd: work to send, or the replica list changed
    // mu_ guards the replica list and the thread's start and stop; the
    // loop reads the listed replicas' descriptors under it, since remove()
    // may destroy a replica as soon as it is off the list.
    Mutex mu_;
    std::vector<Replica*> replicas_ GUARDED_BY(mu_);
    bool stop_ GUARDED_BY(mu_) = false;
    std::thread thread_ GUARDED_BY(mu_);
    // Held by the thread for one turn (dispatch and send); remove() takes it
    // to wait out a turn that may still use the replica.  Taken before any
    // network's lock (a turn delivers into networks), never under one.
    Mutex turn_mu_;
};

}  // namespace ipnfs::cluster
