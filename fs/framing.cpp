#include "fs/framing.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "include/ipnfs.h"

namespace ipnfs::fs {

namespace {

static_assert(sizeof(ipnfs_record) == 24, "the record header is part of the ABI");
static_assert(sizeof(ipnfs_creds) == 16 && sizeof(ipnfs_creds) % IPNFS_RECORD_ALIGN == 0,
              "credentials keep the payload where padding expects it");

static_assert(sizeof(ipnfs_node) == 8, "the node keeps the payload where padding expects it");

// Whether the record of `m` carries credentials for this reader.
bool with_creds(const bus::Message& m, bool creds) {
    return creds && m.credentials().known;
}

// The flags that say what sits between the header and the payload.
std::uint32_t extra_flags(const bus::Message& m, bool creds) {
    return (with_creds(m, creds) ? IPNFS_FLAG_CREDS : 0) | (m.node() != 0 ? IPNFS_FLAG_NODE : 0);
}

bus::Status parse_address(const ipnfs_record& header, bus::Address& out) {
    std::uint32_t to = IPNFS_FLAGS_GET_TO(header.flags);
    out = {};
    switch (to) {
        case IPNFS_TO_DEFAULT:
            return bus::Status::success();  // port and seq are ignored, as before addresses
        case IPNFS_TO_PORT:
            // A node beyond 32 bits is no node: the cluster finds no such port.
            out = {bus::To::port, header.port,
                   static_cast<std::uint32_t>(std::min<std::uint64_t>(header.seq, UINT32_MAX))};
            return bus::Status::success();
        case IPNFS_TO_ANYCAST:
        case IPNFS_TO_BROADCAST:
            out = {static_cast<bus::To>(to), header.port, header.port};
            return bus::Status::success();
        case IPNFS_TO_MULTICAST:
            if (header.seq < header.port || header.seq > UINT32_MAX) {
                return bus::Status::error(
                    std::errc::invalid_argument,
                    fmt::format("multicast to instances {} to {}: the highest (seq) must be from "
                                "the lowest (port) to {}",
                                header.port, header.seq, UINT32_MAX));
            }
            out = {bus::To::multicast, header.port, static_cast<std::uint32_t>(header.seq)};
            return bus::Status::success();
        default:
            return bus::Status::error(std::errc::invalid_argument,
                                      fmt::format("unknown address kind IPNFS_TO {}", to));
    }
}

}  // namespace

std::string event_text(const bus::Message& event, bool creds) {
    // On a cluster network the port is a node's: "join 3 node 2".
    std::string who = event.node() != 0 ? fmt::format("{} node {}", event.from(), event.node())
                                        : fmt::format("{}", event.from());
    switch (event.kind()) {
        case bus::Kind::join:
            if (with_creds(event, creds)) {
                bus::Credentials c = event.credentials();
                return fmt::format("join {} uid {} gid {} pid {}\n", who, c.uid, c.gid, c.pid);
            }
            return fmt::format("join {}\n", who);
        case bus::Kind::leave:
            return fmt::format("leave {}\n", who);
        case bus::Kind::counts: {
            ipnfs_counts counts{};
            std::memcpy(&counts, event.payload().data(),
                        std::min(sizeof counts, event.payload().size()));
            return fmt::format("counts {} {}\n", counts.receivers, counts.senders);
        }
        case bus::Kind::lost: {
            std::uint64_t lost = 0;
            std::memcpy(&lost, event.payload().data(),
                        std::min(sizeof lost, event.payload().size()));
            return fmt::format("lost {}\n", lost);
        }
        case bus::Kind::data:
            break;
    }
    return {};
}

std::size_t framed_min_read(bool creds, bool node) {
    return sizeof(ipnfs_record) + (creds ? sizeof(ipnfs_creds) : 0) +
           (node ? sizeof(ipnfs_node) : 0);
}

FramedReply::FramedReply(std::size_t size, bool creds, std::size_t copy_below, std::size_t max_iov)
    : limit_(size), creds_(creds), copy_below_(copy_below), max_iov_(max_iov) {
    // A batch of small records is mostly copied; of large ones, mostly headers.
    own_.reserve(std::min<std::size_t>(size, std::size_t{64} * 1024));
}

bool FramedReply::fits(const bus::Message& m) const {
    std::uint32_t flags = extra_flags(m, creds_);
    return bytes_ + IPNFS_EXTRA_SIZE(flags) + IPNFS_RECORD_SIZE(m.payload().size()) <= limit_;
}

bool FramedReply::has_room() const {
    return bytes_ + sizeof(ipnfs_record) <= limit_;
}

void FramedReply::put(const void* bytes, std::size_t n) {
    if (n == 0) return;
    if (pieces_.empty() || pieces_.back().iov_base != nullptr) pieces_.push_back({nullptr, 0});
    if (bytes == nullptr) {
        own_.resize(own_.size() + n);
    } else {
        const auto* from = static_cast<const std::byte*>(bytes);
        own_.insert(own_.end(), from, from + n);
    }
    pieces_.back().iov_len += n;
}

void FramedReply::add(bus::MessageRef m) {
    const std::size_t room = limit_ - bytes_;
    auto payload = m->payload();
    const std::uint32_t flags = extra_flags(*m, creds_);
    const std::size_t before = sizeof(ipnfs_record) + IPNFS_EXTRA_SIZE(flags);
    const std::size_t fits = std::min(payload.size(), room - before);
    // A first record may lose part of its padding to the read's size alone.
    const std::size_t whole = std::min(IPNFS_EXTRA_SIZE(flags) + IPNFS_RECORD_SIZE(fits), room);
    ipnfs_record header{};
    header.len = static_cast<std::uint32_t>(payload.size());
    header.kind = static_cast<std::uint16_t>(m->kind());
    header.version = IPNFS_FRAME_VERSION;
    header.port = m->from();
    header.flags = flags | (fits < payload.size() ? IPNFS_FLAG_TRUNCATED : 0) |
                   IPNFS_FLAGS_TO(static_cast<std::uint32_t>(m->address().to));
    header.seq = m->seq();
    put(&header, sizeof header);
    if ((flags & IPNFS_FLAG_CREDS) != 0) {
        bus::Credentials c = m->credentials();
        ipnfs_creds who{c.pid, c.uid, c.gid, 0};
        put(&who, sizeof who);
    }
    if ((flags & IPNFS_FLAG_NODE) != 0) {
        ipnfs_node node{m->node(), 0};
        put(&node, sizeof node);
    }
    // Pointing at the payload takes two iovecs: its own and the next of own_.
    if (fits != 0 && fits >= copy_below_ && pieces_.size() + 2 <= max_iov_) {
        pieces_.push_back({const_cast<std::byte*>(payload.data()), fits});
        held_.push_back(std::move(m));
    } else {
        put(payload.data(), fits);
    }
    put(nullptr, whole - before - fits);  // zero padding
    bytes_ += whole;
}

std::span<const iovec> FramedReply::iov() {
    if (!resolved_) {
        std::byte* next = own_.data();
        for (iovec& piece : pieces_) {
            if (piece.iov_base != nullptr) continue;
            piece.iov_base = next;
            next += piece.iov_len;
        }
        resolved_ = true;
    }
    return pieces_;
}

std::string FramedReply::flatten() {
    std::string out;
    out.reserve(bytes_);
    for (const iovec& piece : iov())
        out.append(static_cast<const char*>(piece.iov_base), piece.iov_len);
    return out;
}

FramedReply framed_reply(bus::Network& net, const bus::Connection& conn, bus::MessageRef first,
                         std::size_t size, bool creds) {
    FramedReply reply(size, creds);
    reply.add(std::move(first));
    bus::Fits fits = [&reply](const bus::Message& m) { return reply.fits(m); };
    while (reply.has_room()) {
        bus::Received next = net.receive(conn, nullptr, &fits);
        if (next.outcome != bus::Outcome::message) break;
        reply.add(std::move(next.message));
    }
    return reply;
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
    if (header.kind != IPNFS_DATA || (header.flags & ~IPNFS_TO_MASK) != 0) {
        return bus::Status::error(std::errc::invalid_argument,
                                  "a written record must be IPNFS_DATA with no flags but IPNFS_TO");
    }
    if (header.len == 0) {
        // A plain reader would get it as a read of 0 bytes: end of file.
        return bus::Status::error(std::errc::invalid_argument,
                                  "a record with no payload: a message has at least one byte");
    }
    if (bus::Status s = parse_address(header, out.address); !s.ok()) return s;
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
