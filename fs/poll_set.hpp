// The poll handles the kernel left with us, per port: each open file keeps
// at most one (a newer poll replaces it), and a port's readiness notifies and
// drops them all, as libfuse's poll example does.  A port has an entry only
// while it has a handle, so the set is bounded by the open files.
#pragma once

#include <fuse_lowlevel.h>

#include <unordered_map>
#include <utility>
#include <vector>

#include "bus/message.hpp"
#include "bus/thread_safety.hpp"

namespace ipnfs::fs {

class PollSet {
  public:
    PollSet() = default;
    PollSet(const PollSet&) = delete;
    PollSet& operator=(const PollSet&) = delete;
    ~PollSet();

    // `owner` is the open file the poll came from.
    void store(bus::PortId port, const void* owner, fuse_pollhandle* ph) EXCLUDES(mu_);
    void forget(bus::PortId port, const void* owner) EXCLUDES(mu_);
    void notify(bus::PortId port) EXCLUDES(mu_);

  private:
    using Pending = std::vector<std::pair<const void*, fuse_pollhandle*>>;
    Mutex mu_;  // never held across a libfuse call
    std::unordered_map<bus::PortId, Pending> pending_ GUARDED_BY(mu_);
};

}  // namespace ipnfs::fs
