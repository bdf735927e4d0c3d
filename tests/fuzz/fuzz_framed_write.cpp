// The framed record parser on the write path: the buffer of a framed write()
// as a client could fill it, parsed record by record as fs/ops.cpp does,
// each record sent into a group network (the policy that takes every
// address).  parse_record must accept exactly the records include/ipnfs.h
// and docs/usage.md call well formed, never look past the buffer, always
// move forward, and a record it accepts must encode back to itself.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bus/network.hpp"
#include "fs/framing.hpp"
#include "fuzz_support.hpp"
#include "include/ipnfs.h"

namespace ipnfs::fuzz {
namespace {

using Bytes = std::span<const std::byte>;

// The rules of a written record, restated from the docs rather than the
// code: the fuzzer checks one against the other.
bool well_formed(Bytes buf, bus::Address& address) {
    ipnfs_record h{};
    if (buf.size() < sizeof h) return false;
    std::memcpy(&h, buf.data(), sizeof h);
    std::uint32_t to = IPNFS_FLAGS_GET_TO(h.flags);
    if (h.version != IPNFS_FRAME_VERSION || h.kind != IPNFS_DATA) return false;
    if ((h.flags & ~IPNFS_TO_MASK) != 0 || to > IPNFS_TO_BROADCAST) return false;
    if (to == IPNFS_TO_MULTICAST && (h.seq < h.port || h.seq > UINT32_MAX)) return false;
    if (h.len == 0) return false;  // an empty message would read as end of file
    if (buf.size() - sizeof h < h.len) return false;
    address = {};
    if (to == IPNFS_TO_MULTICAST) {
        address = {bus::To::multicast, h.port, static_cast<std::uint32_t>(h.seq)};
    } else if (to == IPNFS_TO_PORT) {
        // seq names the port's node (0: this host); past 32 bits, no node.
        address = {bus::To::port, h.port,
                   static_cast<std::uint32_t>(std::min<std::uint64_t>(h.seq, UINT32_MAX))};
    } else if (to != IPNFS_TO_DEFAULT) {
        address = {static_cast<bus::To>(to), h.port, h.port};
    }
    return true;
}

bool same(const bus::Address& a, const bus::Address& b) {
    return a.to == b.to && a.lower == b.lower && a.upper == b.upper;
}

// A record as a client encodes one (tests/integration/ipnfs_client.cpp).
std::vector<std::byte> encode(Bytes payload, const bus::Address& a) {
    ipnfs_record h{};
    h.len = static_cast<std::uint32_t>(payload.size());
    h.version = IPNFS_FRAME_VERSION;
    h.kind = IPNFS_DATA;
    h.flags = IPNFS_FLAGS_TO(static_cast<std::uint32_t>(a.to));
    h.port = a.lower;
    h.seq = a.to == bus::To::multicast || a.to == bus::To::port ? a.upper : 0;
    std::vector<std::byte> out(IPNFS_RECORD_SIZE(payload.size()));
    std::memcpy(out.data(), &h, sizeof h);
    if (!payload.empty()) std::memcpy(out.data() + sizeof h, payload.data(), payload.size());
    return out;
}

void check_record(Bytes rest, const fs::Record& r, const bus::Address& expected) {
    const std::byte* end = rest.data() + rest.size();
    require(r.payload.data() == rest.data() + sizeof(ipnfs_record), "payload after the header");
    require(r.payload.data() + r.payload.size() <= end, "payload inside the write");
    require(r.size == std::min(IPNFS_RECORD_SIZE(r.payload.size()), rest.size()),
            "a record's size is its padded size, or what is left");
    require(r.size >= sizeof(ipnfs_record) + r.payload.size(), "a record moves past its payload");
    require(same(r.address, expected), "the address of the record");

    std::vector<std::byte> again = encode(r.payload, r.address);
    fs::Record back{};
    require(fs::parse_record(again, back).ok(), "an encoded record parses");
    require(back.size == again.size() && same(back.address, r.address) &&
                std::ranges::equal(back.payload, r.payload),
            "a record round-trips");
}

// Ports 1 and 3 hold instance 7, port 2 instance 8, port 0 writes.
struct GroupNet {
    GroupNet() {
        require(bus::Network::create("framed", {}, catalog(), "group", net).ok(), "a network");
        require(net->control("ports 4\nmtu 65535\nmember 1 7\nmember 2 8\nmember 3 7").ok(),
                "settings");
        require(net->connect(0, false, true, writer).ok(), "writer");
        for (bus::PortId p = 1; p < 4; ++p)
            require(net->connect(p, true, false, readers[p - 1]).ok(), "reader");
    }
    ~GroupNet() {
        net->disconnect(writer);
        for (const auto& r : readers) net->disconnect(r);
    }
    GroupNet(const GroupNet&) = delete;
    GroupNet& operator=(const GroupNet&) = delete;

    // Every copy delivered is the record's payload, from port 0.
    void send(const fs::Record& r) const {
        bus::Status s = net->send(writer, r.payload, r.address);
        if (!s.ok()) {
            require_error(s, {EHOSTUNREACH, EMSGSIZE}, "a record sent");
            return;
        }
        for (const auto& conn : readers) {
            for (;;) {
                bus::Received got = net->receive(conn, nullptr);
                if (got.outcome != bus::Outcome::message) break;
                require(got.message->from() == 0 &&
                            std::ranges::equal(got.message->payload(), r.payload),
                        "a delivered record is the one written");
            }
        }
    }

    std::shared_ptr<bus::Network> net;
    bus::Connection writer;
    bus::Connection readers[3];
};

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs;
    using namespace ipnfs::fuzz;
    // A copy of exactly `size` bytes: ASan then catches a read one byte past.
    std::vector<std::byte> write(size);
    if (size > 0) std::memcpy(write.data(), data, size);
    static const GroupNet group;
    Bytes buf(write);
    std::size_t done = 0;
    while (done < buf.size()) {
        Bytes rest = buf.subspan(done);
        bus::Address expected;
        bool valid = well_formed(rest, expected);
        fs::Record record{};
        bus::Status s = fs::parse_record(rest, record);
        require(s.ok() == valid,
                valid ? "a well-formed record refused" : "a malformed record taken", s.reason);
        if (!s.ok()) {
            require_error(s, {EINVAL}, "a malformed record");
            break;  // as write_framed: the write ends before it
        }
        check_record(rest, record, expected);
        group.send(record);
        done += record.size;
    }
    return 0;
}
