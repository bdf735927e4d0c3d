// The FUSE low-level operations: decode a request, call the tree or the bus,
// reply exactly once.
#pragma once

#include <fuse_lowlevel.h>

#include <memory>
#include <mutex>
#include <unordered_map>

#include "fs/handle.hpp"
#include "fs/tree.hpp"

namespace ipnfs::fs {

// Open files, owned here so that files still open when the daemon stops are
// disconnected and freed too (libfuse sends no release for them).
class OpenFiles {
  public:
    Handle* add(std::unique_ptr<Handle> h);
    std::unique_ptr<Handle> remove(Handle* h);
    void close_all();

  private:
    std::mutex mu_;  // guards files_
    std::unordered_map<Handle*, std::unique_ptr<Handle>> files_;
};

// Ends an open file: drops its poll handle and its port connection.
void close_handle(Handle& h);

// The session's userdata.
struct Context {
    Tree& tree;
    OpenFiles files;
};

const fuse_lowlevel_ops& operations();

}  // namespace ipnfs::fs
