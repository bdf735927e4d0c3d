// A read on an empty port: the request waits in the bus, holding no thread,
// until a message, a hang-up or an interrupt ends it.
#pragma once

#include <fuse_lowlevel.h>

#include <cstddef>
#include <memory>

#include "bus/network.hpp"
#include "bus/waiter.hpp"
#include "fs/tree.hpp"

namespace ipnfs::fs {

// Replies to a read with what the bus handed over: a message (cut to the
// reader's buffer, like a datagram), end of file, or an error.
void reply_received(fuse_req_t req, std::size_t size, const bus::Received& received);

class ParkedRead final : public bus::Waiter {
  public:
    // Parks the request or answers it at once.  Takes care of the interrupt
    // hand-off: whoever removes the waiter from the bus (a sender, the
    // hang-up, or the interrupt) is the one that replies.
    static void start(fuse_req_t req, std::size_t size, std::shared_ptr<NetDir> dir,
                      const bus::Connection& conn);

    void complete(bus::Received received) override;

  private:
    ParkedRead(fuse_req_t req, std::size_t size, std::shared_ptr<NetDir> dir,
               const bus::Connection& conn)
        : req_(req), size_(size), dir_(std::move(dir)), conn_(conn) {}
    static void on_interrupt(fuse_req_t req, void* data);

    fuse_req_t req_;
    std::size_t size_;
    std::shared_ptr<NetDir> dir_;  // keeps the network alive while parked
    bus::Connection conn_;
};

}  // namespace ipnfs::fs
