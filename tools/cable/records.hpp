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

// The records at the start of `batch` that make up its first `bytes`
// bytes (a short framed write returns whole records): how many, and the
// payload size of the first (for a refusal's report).
struct RecordSpan {
    std::size_t count = 0;
    std::size_t first_len = 0;
};
RecordSpan records_in(std::string_view batch, std::size_t bytes);

// The size of the first record of `batch` (the one a failed write refused).
std::size_t first_record_size(std::string_view batch);

// Calls `data` with the payload of each whole data record a framed read
// returned, and `cut` with the length of a record the read had to cut
// (a buffer too small for it: never, with kFramedRead); other kinds are
// skipped.
void for_each_frame(std::string_view read, const std::function<void(std::string_view)>& data,
                    const std::function<void(std::size_t)>& cut);

}  // namespace ipnfs::cable
