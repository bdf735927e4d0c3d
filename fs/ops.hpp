// The FUSE low-level operations: decode a request, call the tree or the bus,
// reply exactly once.
#pragma once

#include <fuse_lowlevel.h>

#include "fs/tree.hpp"

namespace ipnfs::fs {

// The session's userdata.
struct Context {
    Tree& tree;
};

const fuse_lowlevel_ops& operations();

}  // namespace ipnfs::fs
