#include "fs/framing.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "include/ipnfs.h"

namespace ipnfs::fs {

namespace {

static_assert(sizeof(ipnfs_record) == 24, "the record header is part of the ABI");

void append_record(std::string& out, const bus::Message& m, std::size_t room) {
    auto payload = m.payload();
    std::size_t fits = std::min(payload.size(), room - sizeof(ipnfs_record));
    ipnfs_record header{};
    header.len = static_cast<std::uint32_t>(payload.size());
    header.kind = static_cast<std::uint16_t>(m.kind());
    header.version = IPNFS_FRAME_VERSION;
    header.port = m.from();
    header.flags = fits < payload.size() ? IPNFS_FLAG_TRUNCATED : 0;
    header.seq = m.seq();
    std::size_t start = out.size();
    out.append(reinterpret_cast<const char*>(&header), sizeof header);
    out.append(reinterpret_cast<const char*>(payload.data()), fits);
    out.resize(start + std::min(IPNFS_RECORD_SIZE(fits), room), '\0');
}

}  // namespace

std::string event_text(const bus::Message& event) {
    switch (event.kind()) {
        case bus::Kind::join:
            return fmt::format("join {}\n", event.from());
        case bus::Kind::leave:
            return fmt::format("leave {}\n", event.from());
        case bus::Kind::counts: {
            ipnfs_counts counts{};
            std::memcpy(&counts, event.payload().data(),
                        std::min(sizeof counts, event.payload().size()));
            return fmt::format("counts {} {}\n", counts.receivers, counts.senders);
        }
        case bus::Kind::data:
            break;
    }
    return {};
}

std::size_t framed_min_read() {
    return sizeof(ipnfs_record);
}

std::string framed_reply(bus::Network& net, const bus::Connection& conn, const bus::Message& first,
                         std::size_t size) {
    std::string out;
    out.reserve(std::min<std::size_t>(size, std::size_t{64} * 1024));
    append_record(out, first, size);
    bus::Fits fits = [&](const bus::Message& m) {
        return out.size() + IPNFS_RECORD_SIZE(m.payload().size()) <= size;
    };
    while (out.size() + sizeof(ipnfs_record) <= size) {
        bus::Received next = net.receive(conn, nullptr, &fits);
        if (next.outcome != bus::Outcome::message) break;
        append_record(out, *next.message, size - out.size());
    }
    return out;
}

bus::Status parse_record(std::span<const std::byte> buf, Record& out) {
    ipnfs_record header{};
    if (buf.size() < sizeof header) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("{} bytes left: less than a record header", buf.size()));
    }
    std::memcpy(&header, buf.data(), sizeof header);
    if (header.version != IPNFS_FRAME_VERSION) {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("record version {} (this is version {})",
                                              header.version, IPNFS_FRAME_VERSION));
    }
    if (header.kind != IPNFS_DATA || header.flags != 0) {
        return bus::Status::error(std::errc::invalid_argument,
                                  "a written record must be IPNFS_DATA with no flags");
    }
    std::size_t size = IPNFS_RECORD_SIZE(header.len);
    if (sizeof header + header.len > buf.size()) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("record of {} bytes runs past the write", header.len));
    }
    out.payload = buf.subspan(sizeof header, header.len);
    out.size = std::min(size, buf.size());  // the last record's padding may be left out
    return bus::Status::success();
}

}  // namespace ipnfs::fs
