// What an open file holds (fuse_file_info::fh points at one).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "bus/network.hpp"
#include "fs/tree.hpp"

namespace ipnfs::fs {

struct Handle {
    Kind kind;
    std::shared_ptr<NetDir> dir;
    bus::Connection conn;  // ports and clone opens

    // ctl and stats: the text a read at offset 0 rendered, so one reader sees
    // one consistent snapshot across several read() calls.
    std::mutex text_mu;  // guards text
    std::string text;
};

}  // namespace ipnfs::fs
