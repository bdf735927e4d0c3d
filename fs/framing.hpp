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
std::string event_text(const bus::Message& event);

// The reply to a framed read that took `first`: its record, then more
// records taken from the port while they fit in `size` bytes.  The first
// record is cut (IPNFS_FLAG_TRUNCATED) if even it does not fit.
std::string framed_reply(bus::Network& net, const bus::Connection& conn, const bus::Message& first,
                         std::size_t size);

// The smallest buffer a framed read accepts: one record header.
std::size_t framed_min_read();

// One record of a framed write, checked: its payload and its padded size.
struct Record {
    std::span<const std::byte> payload;
    std::size_t size;
    bus::Address address;
};
// The record at the start of `buf`, or EINVAL (with a reason) if it is malformed.
bus::Status parse_record(std::span<const std::byte> buf, Record& out);

}  // namespace ipnfs::fs
