#include "records.hpp"

#include <cstring>

namespace ipnfs::cable {

namespace {

ipnfs_record header_at(std::string_view batch, std::size_t at) {
    ipnfs_record h{};
    std::memcpy(&h, batch.data() + at, sizeof h);
    return h;
}

}  // namespace

void append_record(std::string& batch, std::string_view frame) {
    ipnfs_record h{};
    h.len = static_cast<std::uint32_t>(frame.size());
    h.kind = IPNFS_DATA;
    h.version = IPNFS_FRAME_VERSION;
    std::size_t at = batch.size();
    batch.resize(at + IPNFS_RECORD_SIZE(frame.size()), '\0');
    std::memcpy(batch.data() + at, &h, sizeof h);
    std::memcpy(batch.data() + at + sizeof h, frame.data(), frame.size());
}

std::size_t records_in(std::string_view batch, std::size_t bytes) {
    std::size_t count = 0;
    for (std::size_t at = 0; at + sizeof(ipnfs_record) <= bytes; ++count) {
        ipnfs_record h = header_at(batch, at);
        at += IPNFS_RECORD_FULL_SIZE(&h);
    }
    return count;
}

FirstRecord first_record(std::string_view batch) {
    ipnfs_record h = header_at(batch, 0);
    return {h.len, IPNFS_RECORD_FULL_SIZE(&h)};
}

void for_each_frame(std::string_view read, const std::function<void(std::string_view)>& data,
                    const std::function<void(std::size_t)>& cut) {
    for (std::size_t at = 0; at + sizeof(ipnfs_record) <= read.size();) {
        ipnfs_record h = header_at(read, at);
        std::size_t start = at + sizeof h + IPNFS_CREDS_SIZE(h.flags);
        if ((h.flags & IPNFS_FLAG_TRUNCATED) != 0) {
            cut(h.len);
            return;  // nothing follows a cut record
        }
        if (start + h.len > read.size()) return;
        if (h.kind == IPNFS_DATA) data(read.substr(start, h.len));
        at += IPNFS_RECORD_FULL_SIZE(&h);
    }
}

}  // namespace ipnfs::cable
