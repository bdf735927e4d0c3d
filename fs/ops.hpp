// The FUSE low-level operations: decode a request, call the tree or the bus,
// reply exactly once.
#pragma once

#include <fuse_lowlevel.h>

#include <memory>
#include <unordered_map>

#include "bus/thread_safety.hpp"
#include "fs/handle.hpp"
#include "fs/tree.hpp"
#include "fs/uring_transport.hpp"

namespace ipnfs::fs {

// Open files, owned here so that files still open when the daemon stops are
// disconnected and freed too (libfuse sends no release for them).
class OpenFiles {
  public:
    Handle* add(std::unique_ptr<Handle> h) EXCLUDES(mu_);
    std::unique_ptr<Handle> remove(Handle* h) EXCLUDES(mu_);
    // Closes outside mu_: a close disconnects from the bus.
    void close_all() EXCLUDES(mu_);
    [[nodiscard]] std::size_t size() const EXCLUDES(mu_);

  private:
    mutable Mutex mu_;  // a leaf: held only to add or take out
    std::unordered_map<Handle*, std::unique_ptr<Handle>> files_ GUARDED_BY(mu_);
};

// Ends an open file: drops its poll handle and its port connection.
void close_handle(Handle& h);

// The session's userdata.
struct Context {
    Tree& tree;
    OpenFiles files;
    // The io_uring transport when the mount asked for one (-o uring), for
    // ipnfs.prom's gauges; set before the session starts, read-only then.
    const UringTransport* uring = nullptr;
};

const fuse_lowlevel_ops& operations();

}  // namespace ipnfs::fs
