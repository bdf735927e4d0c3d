// How messages look to readers and writers of port files: plain (one message
// per call, events as text lines) or framed (records of include/ipnfs.h).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "bus/network.hpp"

namespace ipnfs::fs {

// An event as the text line plain readers and the events file show:
// "join 3", "leave 3", "counts 2 1" (ports with a reader, with a writer).
// With `creds` (IPNFS_IOC_SET_CREDS), a join says who opened the port, if
// a process did: "join 3 uid 1000 gid 1000 pid 4242".  On a cluster
// network the port is a node's: "join 3 node 2", "leave 3 node 2".
std::string event_text(const bus::Message& event, bool creds = false);

// The reply to a framed read, as fuse_reply_iov() takes it.  Headers,
// credentials, nodes, padding and small payloads go into a buffer of the
// reply's own; a larger payload is pointed at in the message's buffer,
// which the reply holds, so the reply must outlive fuse_reply_iov(): the
// kernel copies the iovecs only inside that call's writev().  The bytes are
// the same either way.
class FramedReply {
  public:
    // Payloads shorter than this are copied.  The kernel pins a user page
    // for each iovec it copies from (fuse_copy_fill), so a pointed-at
    // payload costs two more pins (its own iovec and the next of ours),
    // and pins of a page that 16 readers share contend: profiles of 1->16
    // framed loads lost at 1400 and 4096 bytes pointed at, won at 9000 and
    // 30000 (docs/benchmark.md, issue 21).
    static constexpr std::size_t kCopyBelow = 8192;
    // writev() takes at most UIO_MAXIOV (1024) iovecs, and
    // fuse_reply_iov() puts its header in one of them.
    static constexpr std::size_t kMaxIov = 1023;

    // A reply of at most `size` bytes.  With `creds`, records of messages
    // that have credentials carry them.
    explicit FramedReply(std::size_t size, bool creds = false, std::size_t copy_below = kCopyBelow,
                         std::size_t max_iov = kMaxIov);

    // Whether `m`'s record fits whole in what is left.
    [[nodiscard]] bool fits(const bus::Message& m) const;
    // Whether another record header fits in what is left.
    [[nodiscard]] bool has_room() const;
    // Adds `m`'s record, cut (IPNFS_FLAG_TRUNCATED) if it does not fit
    // whole.  What is left must hold its header, credentials and node.
    void add(bus::MessageRef m);

    [[nodiscard]] std::size_t size() const { return bytes_; }
    // The records, valid while this reply lives; nothing may be added after.
    std::span<const iovec> iov();
    // The records as one string, as the kernel gathers iov() for the
    // reader (tests and the fuzzer parse it); nothing may be added after.
    [[nodiscard]] std::string flatten();

  private:
    // Appends to own_, in the piece at the end if that is own_'s too.
    void put(const void* bytes, std::size_t n);

    std::size_t limit_;
    bool creds_;
    std::size_t copy_below_;
    std::size_t max_iov_;
    std::size_t bytes_ = 0;
    std::vector<std::byte> own_;
    // Pieces of own_ have a null base until iov(): own_ may still move
    // while records are added.  They follow each other in own_.
    std::vector<iovec> pieces_;
    bool resolved_ = false;
    std::vector<bus::MessageRef> held_;  // whose payloads pieces_ points at
};

// The reply to a framed read that took `first`: its record, then more
// records taken from the port while they fit in `size` bytes.  The first
// record is cut (IPNFS_FLAG_TRUNCATED) if even it does not fit.
FramedReply framed_reply(bus::Network& net, const bus::Connection& conn, bus::MessageRef first,
                         std::size_t size, bool creds = false);

// The smallest buffer a framed read accepts: one record header, and with
// `creds` its credentials, and on a cluster network (`node`) the node, so
// the first record always has room for them.
std::size_t framed_min_read(bool creds = false, bool node = false);

// One record of a framed write, checked: its payload and its padded size.
struct Record {
    std::span<const std::byte> payload;
    std::size_t size;
    bus::Address address;
};
// The record at the start of `buf`, or EINVAL (with a reason) if it is malformed.
bus::Status parse_record(std::span<const std::byte> buf, Record& out);

}  // namespace ipnfs::fs
