// A cluster of "hosts" on this machine for the cluster tests: network
// namespaces with a corosync each, made and unmade by tools/cluster-hosts.sh
// (docs/cluster.md, "Trying it on one machine").  A test runs a program in a
// host by entering its network namespace (nsenter --net, or setns() on one
// thread): libqb's IPC is on abstract unix sockets, so it reaches that host's
// corosync, and a FUSE mount it makes stays visible to the test.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {

// Moves the calling thread (only it) into the network namespace
// /run/netns/NAME: "" or why not.
std::string enter_netns_thread(const std::string& name);

class ClusterHosts {
  public:
    ClusterHosts() = default;
    ~ClusterHosts();  // down(), then the scratch directory goes
    ClusterHosts(const ClusterHosts&) = delete;
    ClusterHosts& operator=(const ClusterHosts&) = delete;

    // Empty if this machine can run a cluster (root, namespaces, corosync
    // and its tools), else why not.
    static std::string problem();

    // `up` of n hosts in a scratch directory: "" once all n see a quorate
    // membership of n, else why not (with the script's words).
    std::string start(int n);
    // Stops every corosync and deletes the namespaces: "" or what failed.
    // Idempotent; the destructor calls it.
    std::string down();

    [[nodiscard]] int size() const { return n_; }
    [[nodiscard]] const std::string& dir() const { return dir_; }
    // Host i (1..size()): its namespace, its corosync's pid (-1 if none runs).
    [[nodiscard]] std::string ns(int i) const;
    [[nodiscard]] pid_t corosync_pid(int i) const;
    // nsenter(1) into host i's network namespace only: a prefix for
    // Mount::start or run_argv.
    [[nodiscard]] std::vector<std::string> enter(int i) const;
    // sh -c SCRIPT in host i's network namespace, under `timeout -k 2 T`.
    [[nodiscard]] Shell sh(int i, const std::string& script, double timeout_s = 20.0) const;
    // Moves the calling thread (only it) into host i's network namespace:
    // "" or why not.  A libcpg connection it makes then reaches host i.
    [[nodiscard]] std::string enter_thread(int i) const;

    // The script's faults (see tools/cluster-hosts.sh): "" or what failed.
    std::string kill(int i);    // kill -9 host i's corosync
    std::string revive(int i);  // start it again; waits for all to see all
    std::string cut(int i);     // host i's cable off the switch
    std::string heal(int i);    // and back

    // An ipnfs daemon inside host i's network namespace, mounted where the
    // test sees it.
    bool start_daemon(int i, Mount& mount, const std::vector<std::string>& options,
                      std::string& why) const;

  private:
    std::string dir_;
    std::vector<std::string> ns_;  // ns_[i - 1]
    int n_ = 0;
};

}  // namespace ipnfs_it
