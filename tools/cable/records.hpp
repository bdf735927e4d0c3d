// The cable's side of a port file in framed mode (include/ipnfs.h): many
// frames per read() and per write(), since one FUSE round trip per frame
// cannot keep up with a TAP's bursts (docs/cables.md, "Throughput").
#pragma once

#include <ipnfs.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace ipnfs::cable {

// Appends `frame` (1 to 65535 bytes) as one data record to the default
// destination.
void append_record(std::string& batch, std::string_view frame);

// How many records make up the first `bytes` bytes of `batch` (a short
// framed write returns whole records).
std::size_t records_in(std::string_view batch, std::size_t bytes);

// The first record of `batch` (the one a failed write refused): its
// payload's length and its whole size.
struct FirstRecord {
    std::size_t len = 0;
    std::size_t size = 0;
};
FirstRecord first_record(std::string_view batch);

// Calls `data` with the payload of each whole data record a framed read
// returned, and `cut` with the length of a record the read had to cut
// (a buffer too small for it: never, with kFramedRead); other kinds are
// skipped.
void for_each_frame(std::string_view read, const std::function<void(std::string_view)>& data,
                    const std::function<void(std::size_t)>& cut);

}  // namespace ipnfs::cable
