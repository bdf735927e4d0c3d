// The cluster wire format's decoder (cluster/wire.cpp), fed what a peer
// daemon with a bug could multicast to the group: any bytes, at an address
// of any alignment.  decode() must refuse with EPROTO and a reason, handing
// out no record, or hand out records that are well formed and that a
// BatchWriter encodes back to exactly the input (one encoding per set of
// records), which decodes to the same records again.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "cluster/wire.hpp"
#include "fuzz_support.hpp"

namespace ipnfs::fuzz {
namespace {

namespace wire = cluster::wire;

// A decoded record, its body copied out of the batch.
struct Copy {
    wire::Record record;
    std::vector<std::byte> body;
};

std::vector<Copy> decode_copies(std::span<const std::byte> batch, bus::Status& status) {
    std::vector<Copy> out;
    status = wire::decode(batch, [&](const wire::Record& r) {
        out.push_back({r, {r.body.begin(), r.body.end()}});
    });
    for (Copy& c : out) c.record.body = c.body;
    return out;
}

bool same(const wire::Record& a, const wire::Record& b) {
    return a.type == b.type && a.port == b.port && a.address.to == b.address.to &&
           a.address.lower == b.address.lower && a.address.upper == b.address.upper &&
           a.creds.pid == b.creds.pid && a.creds.uid == b.creds.uid && a.creds.gid == b.creds.gid &&
           a.creds.known == b.creds.known && a.hops == b.hops &&
           std::equal(a.body.begin(), a.body.end(), b.body.begin(), b.body.end());
}

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs::fuzz;
    namespace wire = ipnfs::cluster::wire;
    // One byte in: CPG hands a message over at any address.
    std::vector<std::byte> buffer(size + 1);
    std::memcpy(buffer.data() + 1, data, size);
    std::span<const std::byte> batch = std::span(buffer).subspan(1);

    ipnfs::bus::Status s;
    std::vector<Copy> records = decode_copies(batch, s);
    if (!s.ok()) {
        require_error(s, {EPROTO}, "decode");
        require(records.empty(), "decode handed out records of a batch it refused");
        return 0;
    }
    wire::BatchWriter writer(batch.size());
    for (const Copy& c : records) {
        const wire::Record& r = c.record;
        require(r.type >= wire::Type::data && r.type <= wire::Type::hello, "an unknown type");
        require(r.address.to <= ipnfs::bus::To::broadcast, "an unknown address kind");
        require(r.body.size() <= wire::kMaxBody, "a body over kMaxBody");
        require(writer.add(r), "a decoded record the writer refuses");
    }
    require(writer.records() == records.size(), "records lost on the way back");
    require(std::equal(batch.begin(), batch.end(), writer.bytes().begin(), writer.bytes().end()),
            "a decoded batch that encodes to other bytes");
    std::vector<Copy> again = decode_copies(writer.bytes(), s);
    require(s.ok(), "a re-encoded batch does not decode", s.reason);
    require(again.size() == records.size(), "a re-encoded batch decodes to other records");
    for (std::size_t i = 0; i < again.size(); ++i) {
        require(same(again[i].record, records[i].record),
                "a re-encoded batch decodes to other records");
    }
    return 0;
}
