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

class CaptureStream;
class Rest;

// What a read needs to turn what the bus hands over into its reply.
struct ReadRequest {
    std::shared_ptr<NetDir> dir;  // keeps the network alive while parked
    bus::Connection conn;
    std::size_t size;
    bool framed;
    // A capture file's read: the reply is the next piece of this stream.
    std::shared_ptr<CaptureStream> capture = nullptr;
    // IPNFS_IOC_SET_CREDS: framed records say who sent them, join lines who
    // opened the port.
    bool creds = false;
    // A plain read of a port or events file: what the open file's earlier
    // reads left of a message (shared with its Handle), returned first.
    std::shared_ptr<Rest> rest = nullptr;
};

// Replies to a read: a message (plain: its payload or an event's text line,
// cut to the buffer with the rest kept for the next read; framed: records;
// capture: the pcap stream), end of file, or an error.
void reply_received(fuse_req_t req, const ReadRequest& read, const bus::Received& received);

class ParkedRead final : public bus::Waiter {
  public:
    // Parks the request or answers it at once.  Takes care of the interrupt
    // hand-off: whoever removes the waiter from the bus (a sender, the
    // hang-up, or the interrupt) is the one that replies.
    static void start(fuse_req_t req, ReadRequest read);

    void complete(bus::Received received) override;

  private:
    ParkedRead(fuse_req_t req, ReadRequest read) : req_(req), read_(std::move(read)) {}
    static void on_interrupt(fuse_req_t req, void* data);

    fuse_req_t req_;
    ReadRequest read_;
};

}  // namespace ipnfs::fs
