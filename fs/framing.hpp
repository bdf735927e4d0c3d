// How messages look to readers and writers of port files: plain (one message
// per call, events as text lines) or framed (records of include/ipnfs.h).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "bus/network.hpp"

namespace ipnfs::fs {

// An event as the text line plain readers and the events file show:
// "join 3", "leave 3", "counts 2 1" (ports with a reader, with a writer).
// With `creds` (IPNFS_IOC_SET_CREDS), a join says who opened the port, if
// a process did: "join 3 uid 1000 gid 1000 pid 4242".  On a cluster
// network the port is a node's: "join 3 node 2", "leave 3 node 2".
std::string event_text(const bus::Message& event, bool creds = false);

// The reply to a framed read that took `first`: its record, then more
// records taken from the port while they fit in `size` bytes.  The first
// record is cut (IPNFS_FLAG_TRUNCATED) if even it does not fit.  With
// `creds`, records of messages that have credentials carry them.
std::string framed_reply(bus::Network& net, const bus::Connection& conn, const bus::Message& first,
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
