#include "cluster/wire.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace ipnfs::cluster::wire {

namespace {

constexpr std::array<std::byte, 4> kMagic = {std::byte{'I'}, std::byte{'P'}, std::byte{'N'},
                                             std::byte{'C'}};
constexpr std::size_t kAlign = 8;
constexpr std::uint8_t kCredsKnown = 1;
constexpr std::uint8_t kPlaced = 2;
constexpr std::uint8_t kReceives = 4;
constexpr std::uint8_t kMember = 8;
constexpr std::uint8_t kDefinedFlags = kCredsKnown | kPlaced | kReceives | kMember;

// Where each field sits in the batch header and in a record.
namespace at {
constexpr std::size_t version = 4;
constexpr std::size_t header_zero = 6;
constexpr std::size_t count = 8;

constexpr std::size_t type = 0;
constexpr std::size_t kind = 2;
constexpr std::size_t flags = 3;
constexpr std::size_t hops = 4;
constexpr std::size_t zero = 5;  // 3 bytes
constexpr std::size_t port = 8;
constexpr std::size_t lower = 12;
constexpr std::size_t upper = 16;
constexpr std::size_t pid = 20;
constexpr std::size_t uid = 24;
constexpr std::size_t gid = 28;
constexpr std::size_t body_length = 32;
constexpr std::size_t to_node = 36;
constexpr std::size_t to_daemon = 40;
constexpr std::size_t to_port = 44;
}  // namespace at

std::size_t padded(std::size_t n) {
    return (n + kAlign - 1) / kAlign * kAlign;
}

void put16(std::byte* p, std::uint16_t v) {
    p[0] = static_cast<std::byte>(v & 0xff);
    p[1] = static_cast<std::byte>(v >> 8);
}

void put32(std::byte* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

void put64(std::byte* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

std::uint8_t get8(const std::byte* p) {
    return std::to_integer<std::uint8_t>(p[0]);
}

std::uint16_t get16(const std::byte* p) {
    return static_cast<std::uint16_t>(get8(p) | (get8(p + 1) << 8));
}

std::uint32_t get32(const std::byte* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | get8(p + i);
    return v;
}

std::uint64_t get64(const std::byte* p) {
    return get32(p) | (std::uint64_t{get32(p + 4)} << 32);
}

bool known_type(std::uint16_t t) {
    return t >= static_cast<std::uint16_t>(Type::data) &&
           t <= static_cast<std::uint16_t>(Type::credit);
}

bool known_kind(std::uint8_t k) {
    return k <= static_cast<std::uint8_t>(bus::To::broadcast);
}

// Which fields a record of that type carries; the others are 0.
struct Uses {
    bool port, address, creds, body;
};

Uses uses(Type t) {
    switch (t) {
        case Type::data:
            return {true, true, true, true};
        case Type::join:
            return {true, false, true, false};
        case Type::leave:
            return {true, false, false, false};
        case Type::hello:
        case Type::credit:
            return {false, false, false, true};
    }
    return {};
}

const char* type_name(Type t) {
    switch (t) {
        case Type::data:
            return "data";
        case Type::join:
            return "join";
        case Type::leave:
            return "leave";
        case Type::hello:
            return "hello";
        case Type::credit:
            return "credit";
    }
    return "?";
}

bus::Status refuse(std::size_t index, const std::string& what) {
    return bus::Status::error(std::errc::protocol_error,
                              fmt::format("cluster batch, record {}: {}", index, what));
}

// Reads the record at the start of `rest` (the batch from that record on),
// checking every byte of it.  On success `used` is its length, padding
// included.
bus::Status read_record(std::span<const std::byte> rest, std::size_t index, Record& out,
                        std::size_t& used) {
    if (rest.size() < kRecordHeaderBytes) {
        return refuse(index, fmt::format("{} bytes left, a record takes at least {}", rest.size(),
                                         kRecordHeaderBytes));
    }
    const std::byte* p = rest.data();
    const std::uint16_t type = get16(p + at::type);
    if (!known_type(type)) return refuse(index, fmt::format("unknown type {}", type));
    const std::uint8_t kind = get8(p + at::kind);
    if (!known_kind(kind)) return refuse(index, fmt::format("unknown address kind {}", kind));
    const std::uint8_t flags = get8(p + at::flags);
    if ((flags & ~kDefinedFlags) != 0) {
        return refuse(index, fmt::format("undefined flag bits {:#04x}", flags & ~kDefinedFlags));
    }
    for (std::size_t i = 0; i < 3; ++i) {
        if (get8(p + at::zero + i) != 0) return refuse(index, "non-zero reserved byte");
    }
    const std::uint32_t length = get32(p + at::body_length);
    if (length > kMaxBody) {
        return refuse(index, fmt::format("a body of {} bytes, over {}", length, kMaxBody));
    }
    if (length > rest.size() - kRecordHeaderBytes) {
        return refuse(index, fmt::format("a body of {} bytes, only {} left", length,
                                         rest.size() - kRecordHeaderBytes));
    }
    const std::size_t total = padded(kRecordHeaderBytes + length);
    if (total > rest.size()) {
        return refuse(index, fmt::format("its padding runs {} bytes past the batch's end",
                                         total - rest.size()));
    }
    for (std::size_t i = kRecordHeaderBytes + length; i < total; ++i) {
        if (get8(p + i) != 0) return refuse(index, "non-zero padding after the body");
    }

    Record r;
    r.type = static_cast<Type>(type);
    r.port = get32(p + at::port);
    r.address = {static_cast<bus::To>(kind), get32(p + at::lower), get32(p + at::upper)};
    r.creds = {get32(p + at::pid), get32(p + at::uid), get32(p + at::gid),
               (flags & kCredsKnown) != 0};
    r.hops = get8(p + at::hops);
    r.body = rest.subspan(kRecordHeaderBytes, length);
    const bus::Origin target{get32(p + at::to_node), get32(p + at::to_daemon),
                             get32(p + at::to_port)};

    const Uses u = uses(r.type);
    const char* name = type_name(r.type);
    if (!u.port && r.port != 0) return refuse(index, fmt::format("a {} with a port", name));
    const bool member = r.type == Type::join && (flags & kMember) != 0;
    if (!u.address &&
        (kind != 0 || (r.address.lower != 0 && !member) || r.address.upper != 0 || r.hops != 0)) {
        return refuse(index, fmt::format("a {} with an address or hops", name));
    }
    if (r.type != Type::join && (flags & (kReceives | kMember)) != 0) {
        return refuse(index, fmt::format("a {} with a presence", name));
    }
    if (r.type == Type::join) {
        r.address = {};
        r.presence = {(flags & kReceives) != 0,
                      member ? std::optional(get32(p + at::lower)) : std::nullopt};
    }
    const bool placed = (flags & kPlaced) != 0;
    if (placed && r.type != Type::data) return refuse(index, fmt::format("a placed {}", name));
    if (!placed && target != bus::Origin{}) {
        return refuse(index, fmt::format("a {} with a target but not placed", name));
    }
    if (r.type == Type::data) {
        // Exactly the messages for one port of the group are placed: a
        // daemon could not tell which of its ports one that was not means.
        const bool one = r.address.to == bus::To::port || r.address.to == bus::To::anycast;
        if (placed != one) {
            return refuse(index, one ? "a unicast or anycast its sender did not place"
                                     : "a placed message that is no unicast or anycast");
        }
        if (placed && (target.node == 0 || target.node > bus::Message::kMaxNode)) {
            return refuse(index, fmt::format("placed at node {}, outside 1-{}", target.node,
                                             bus::Message::kMaxNode));
        }
        if (placed) r.target = target;
    }
    if (!u.creds && r.creds.known) return refuse(index, fmt::format("a {} with credentials", name));
    if (!r.creds.known && (r.creds.pid != 0 || r.creds.uid != 0 || r.creds.gid != 0)) {
        return refuse(index, "credentials set but not marked known");
    }
    if (!u.body && length != 0) return refuse(index, fmt::format("a {} with a body", name));
    if (r.type == Type::credit && length != kCreditBytes) {
        return refuse(index, fmt::format("a credit of {} bytes, not {}", length, kCreditBytes));
    }
    out = r;
    used = total;
    return bus::Status::success();
}

// Runs `each` (if any) on every record, or stops at the first fault.
bus::Status walk(std::span<const std::byte> batch, const std::function<void(const Record&)>* each) {
    if (batch.size() < kHeaderBytes) {
        return bus::Status::error(
            std::errc::protocol_error,
            fmt::format("cluster batch of {} bytes, shorter than its header ({} bytes)",
                        batch.size(), kHeaderBytes));
    }
    const std::byte* p = batch.data();
    if (!std::equal(kMagic.begin(), kMagic.end(), p)) {
        return bus::Status::error(std::errc::protocol_error,
                                  "not a cluster batch: its magic is not \"IPNC\"");
    }
    if (std::uint16_t version = get16(p + at::version); version != kVersion) {
        return bus::Status::error(
            std::errc::protocol_error,
            fmt::format("cluster batch version {}: this daemon reads version {} only", version,
                        kVersion));
    }
    if (get16(p + at::header_zero) != 0) {
        return bus::Status::error(std::errc::protocol_error,
                                  "cluster batch header: non-zero reserved bytes");
    }
    const std::uint32_t count = get32(p + at::count);
    std::span<const std::byte> rest = batch.subspan(kHeaderBytes);
    for (std::uint32_t i = 0; i < count; ++i) {
        if (rest.empty()) {
            return bus::Status::error(
                std::errc::protocol_error,
                fmt::format("cluster batch: its header counts {} records, it holds {}", count, i));
        }
        Record r;
        std::size_t used = 0;
        if (bus::Status s = read_record(rest, i, r, used); !s.ok()) return s;
        if (each != nullptr) (*each)(r);
        rest = rest.subspan(used);
    }
    if (!rest.empty()) {
        return bus::Status::error(
            std::errc::protocol_error,
            fmt::format("cluster batch: {} bytes after its {} records", rest.size(), count));
    }
    return bus::Status::success();
}

}  // namespace

BatchWriter::BatchWriter(std::size_t max_bytes) : max_bytes_(max_bytes) {
    clear();
}

std::size_t BatchWriter::record_bytes(std::size_t body) {
    return padded(kRecordHeaderBytes + body);
}

void BatchWriter::clear() {
    records_ = 0;
    buffer_.assign(kHeaderBytes, std::byte{0});
    std::copy(kMagic.begin(), kMagic.end(), buffer_.begin());
    put16(buffer_.data() + at::version, kVersion);
}

void BatchWriter::set_count() {
    put32(buffer_.data() + at::count, static_cast<std::uint32_t>(records_));
}

bool BatchWriter::add(const Record& r) {
    if (!known_type(static_cast<std::uint16_t>(r.type))) return false;
    const Uses u = uses(r.type);
    if (r.body.size() > kMaxBody || (!u.body && !r.body.empty())) return false;
    if (r.type == Type::credit && r.body.size() != kCreditBytes) return false;
    if (u.address && !known_kind(static_cast<std::uint8_t>(r.address.to))) return false;
    if (r.type == Type::data) {
        const bool one = r.address.to == bus::To::port || r.address.to == bus::To::anycast;
        if (one != r.target.has_value()) return false;
        if (r.target && (r.target->node == 0 || r.target->node > bus::Message::kMaxNode)) {
            return false;
        }
    }
    if (records_ == std::numeric_limits<std::uint32_t>::max()) return false;
    const std::size_t size = record_bytes(r.body.size());
    if (size > max_bytes_ || buffer_.size() > max_bytes_ - size) return false;

    const std::size_t start = buffer_.size();
    buffer_.resize(start + size, std::byte{0});
    std::byte* p = buffer_.data() + start;
    const bool creds = u.creds && r.creds.known;
    put16(p + at::type, static_cast<std::uint16_t>(r.type));
    if (u.address) {
        p[at::kind] = static_cast<std::byte>(r.address.to);
        p[at::hops] = static_cast<std::byte>(r.hops);
        put32(p + at::lower, r.address.lower);
        put32(p + at::upper, r.address.upper);
    }
    std::uint8_t flags = creds ? kCredsKnown : 0;
    if (r.type == Type::data && r.target) {
        flags |= kPlaced;
        put32(p + at::to_node, r.target->node);
        put32(p + at::to_daemon, r.target->daemon);
        put32(p + at::to_port, r.target->port);
    }
    if (r.type == Type::join) {
        if (r.presence.receives) flags |= kReceives;
        if (r.presence.instance) {
            flags |= kMember;
            put32(p + at::lower, *r.presence.instance);
        }
    }
    p[at::flags] = static_cast<std::byte>(flags);
    if (u.port) put32(p + at::port, r.port);
    if (creds) {
        put32(p + at::pid, r.creds.pid);
        put32(p + at::uid, r.creds.uid);
        put32(p + at::gid, r.creds.gid);
    }
    put32(p + at::body_length, static_cast<std::uint32_t>(r.body.size()));
    std::copy(r.body.begin(), r.body.end(), p + kRecordHeaderBytes);
    ++records_;
    set_count();
    return true;
}

std::array<std::byte, kCreditBytes> credit_body(const Credit& c) {
    std::array<std::byte, kCreditBytes> body{};
    put32(body.data(), c.node);
    put32(body.data() + 4, c.pid);
    put64(body.data() + 8, c.bytes);
    return body;
}

Credit read_credit(std::span<const std::byte> body) {
    return {get32(body.data()), get32(body.data() + 4), get64(body.data() + 8)};
}

bus::Status decode(std::span<const std::byte> batch,
                   const std::function<void(const Record&)>& each) {
    if (bus::Status s = walk(batch, nullptr); !s.ok()) return s;
    return walk(batch, &each);
}

}  // namespace ipnfs::cluster::wire
