// The capture file: a live pcap stream of a network's traffic.  Each open
// is a capture reader of the bus; its reads are a byte stream (the pcap
// header, then one record per message), cut wherever the reader's buffer
// ends, as a pipe would be, which is what libpcap's fread expects.
#pragma once

#include <fuse_lowlevel.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "bus/network.hpp"
#include "bus/thread_safety.hpp"

namespace ipnfs::fs {

struct Handle;
struct ReadRequest;

// The bytes of one open capture file not yet read.
class CaptureStream {
  public:
    explicit CaptureStream(std::uint32_t link_type);

    // Up to `size` bytes of the stream: what is pending, then the record of
    // `first` (a message the bus handed to a parked read), then records of
    // messages already queued on `conn`, taken without waiting, which
    // batches a busy network into few reads.  What does not fit stays for
    // the next read.  `ended`: the network is gone and its queue drained.
    std::string read(bus::Network& net, const bus::Connection& conn, const bus::Message* first,
                     std::size_t size, bool& ended) EXCLUDES(mu_);
    [[nodiscard]] bool has_pending() const EXCLUDES(mu_);
    [[nodiscard]] std::uint64_t records() const EXCLUDES(mu_);

  private:
    // Held across read() so that the readers of one descriptor each take a
    // contiguous piece of the stream; taken before the bus's locks
    // (Port::read_mu, Network::mu_), never under them.
    mutable Mutex mu_;
    std::string pending_ GUARDED_BY(mu_);  // at most one read's size plus one record
    std::uint64_t records_ GUARDED_BY(mu_) = 0;
};

// open(): connects a capture reader and starts its stream with the pcap
// header of the network's link type (Ethernet on a switch, else USER0).
bus::Status open_capture(Handle& h);
// release(), before the reader disconnects: logs what it took and lost.
void log_capture_close(const Handle& h);
// read(): pending bytes and queued messages at once; else EAGAIN (O_NONBLOCK),
// end of file (network removed), or the request parks until a message.
void read_capture(fuse_req_t req, Handle& h, std::size_t size, bool nonblock);
// The reply of a parked capture read the bus completed (message or hang-up).
void reply_capture(fuse_req_t req, const ReadRequest& read, const bus::Received& received);

}  // namespace ipnfs::fs
