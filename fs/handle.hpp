// What an open file holds (fuse_file_info::fh points at one).
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "bus/network.hpp"
#include "bus/thread_safety.hpp"
#include "fs/rest.hpp"
#include "fs/tree.hpp"

namespace ipnfs::fs {

class CaptureStream;

struct Handle {
    const FileRow* file = nullptr;  // its row of the file table
    std::shared_ptr<NetDir> dir;
    bus::Caller opener;               // who opened it (the kernel's f_cred), set at open
    bus::Connection conn;             // ports, clone, events and capture opens
    std::atomic<bool> framed{false};  // IPNFS_IOC_SET_FRAMED: records instead of plain messages
    std::atomic<bool> creds{false};   // IPNFS_IOC_SET_CREDS: records say who sent them

    [[nodiscard]] bool connected() const { return file->connects(); }
    // capture: the pcap bytes not yet read (shared with its parked reads).
    std::shared_ptr<CaptureStream> capture;
    // ports and events: what plain reads left of a message, for the next
    // read of this open file (shared with its parked reads).  After `dir`,
    // so it goes first: its charge is on the network's byte budget.
    std::shared_ptr<Rest> rest;

    // ctl and stats: the text a read at offset 0 rendered, so one reader sees
    // one consistent snapshot across several read() calls; shared with every
    // descriptor that read the same text (NetDir::texts()).
    // Taken before TextSnapshots::mu_ and the bus's locks: a read at offset
    // 0 renders under it.
    Mutex text_mu;
    TextSnapshots::Text text GUARDED_BY(text_mu);
};

}  // namespace ipnfs::fs
