// The cluster wire format (cluster/wire.hpp): batches a daemon packs and
// every member of the group decodes.  Whatever bytes arrive, decode() either
// refuses the batch whole or hands out records that encode back to exactly
// those bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus_test_support.hpp"
#include "cluster/wire.hpp"

namespace ipnfs::test {
namespace {

namespace wire = cluster::wire;

constexpr std::size_t kBig = 1U << 20;

// A decoded record, with its body copied out of the batch.
struct Seen {
    wire::Type type;
    bus::PortId port;
    bus::To to;
    std::uint32_t lower, upper;
    std::uint32_t pid, uid, gid;
    bool known;
    std::uint8_t hops;
    std::vector<std::byte> body;
    std::optional<bus::Origin> target;
    bus::Presence presence;
    bool operator==(const Seen&) const = default;
};

Seen seen(const wire::Record& r) {
    return {r.type,
            r.port,
            r.address.to,
            r.address.lower,
            r.address.upper,
            r.creds.pid,
            r.creds.uid,
            r.creds.gid,
            r.creds.known,
            r.hops,
            {r.body.begin(), r.body.end()},
            r.target,
            r.presence};
}

bus::Status decode_all(std::span<const std::byte> batch, std::vector<Seen>& out) {
    out.clear();
    return wire::decode(batch, [&](const wire::Record& r) { out.push_back(seen(r)); });
}

wire::Record as_record(const Seen& s) {
    wire::Record r;
    r.type = s.type;
    r.port = s.port;
    r.address = {s.to, s.lower, s.upper};
    r.creds = {s.pid, s.uid, s.gid, s.known};
    r.hops = s.hops;
    r.body = s.body;
    r.target = s.target;
    r.presence = s.presence;
    return r;
}

std::vector<std::byte> encode(const std::vector<Seen>& records) {
    wire::BatchWriter w(kBig);
    for (const Seen& s : records) EXPECT_TRUE(w.add(as_record(s)));
    return {w.bytes().begin(), w.bytes().end()};
}

std::vector<std::byte> body_of(std::size_t n, std::uint8_t seed = 1) {
    std::vector<std::byte> b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(seed + i * 7);
    return b;
}

const std::vector<std::byte> kPayload = body_of(13);
const std::string kSettings = "policy hub\nmtu 1514\nlossless 1\n";

// One record of every type, each field set that its type carries.
std::vector<wire::Record> every_type() {
    wire::Record data;
    data.type = wire::Type::data;
    data.port = 0x01020304;
    data.address = {bus::To::multicast, 7, 0xfffffff0};
    data.creds = {4242, 1000, 100, true};
    data.hops = 3;
    data.body = kPayload;
    wire::Record join;
    join.type = wire::Type::join;
    join.port = 65535;
    join.creds = {1, 0, 0, true};
    join.presence.receives = true;
    wire::Record leave;
    leave.type = wire::Type::leave;
    leave.port = 9;
    wire::Record hello;
    hello.type = wire::Type::hello;
    hello.body = bytes(kSettings);
    return {data, join, leave, hello};
}

std::vector<std::byte> valid_batch() {
    wire::BatchWriter w(kBig);
    for (const wire::Record& r : every_type()) EXPECT_TRUE(w.add(r));
    return {w.bytes().begin(), w.bytes().end()};
}

::testing::AssertionResult RefusedSaying(const bus::Status& s, const std::string& words) {
    if (s.ok()) return ::testing::AssertionFailure() << "decoded";
    if (s.code != std::errc::protocol_error) {
        return ::testing::AssertionFailure() << "not EPROTO: " << s.reason;
    }
    if (s.reason.find(words) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "the reason \"" << s.reason << "\" lacks \"" << words << "\"";
    }
    return ::testing::AssertionSuccess();
}

// Writes a little-endian field into a batch under test.
void poke32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

constexpr std::size_t kFirst = wire::kHeaderBytes;  // where record 0 starts

TEST(ClusterWire, EveryTypeDecodesAsItWasAdded) {
    std::vector<Seen> out;
    ASSERT_TRUE(IsOk(decode_all(valid_batch(), out)));
    std::vector<Seen> want;
    for (const wire::Record& r : every_type()) want.push_back(seen(r));
    EXPECT_EQ(out, want);
}

TEST(ClusterWire, FieldsATypeDoesNotCarryAreWrittenAsZero) {
    wire::Record leave;
    leave.type = wire::Type::leave;
    leave.port = 5;
    leave.address = {bus::To::port, 1, 2};
    leave.creds = {1, 2, 3, true};
    leave.hops = 4;
    wire::Record hello;
    hello.type = wire::Type::hello;
    hello.port = 6;
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(leave));
    ASSERT_TRUE(w.add(hello));
    std::vector<Seen> out;
    ASSERT_TRUE(IsOk(decode_all(w.bytes(), out)));
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0],
              (Seen{wire::Type::leave, 5, bus::To::standard, 0, 0, 0, 0, 0, false, 0, {}, {}, {}}));
    EXPECT_EQ(out[1],
              (Seen{wire::Type::hello, 0, bus::To::standard, 0, 0, 0, 0, 0, false, 0, {}, {}, {}}));
}

TEST(ClusterWire, ACreditRoundTripsAndAnyOtherLengthIsRefused) {
    const wire::Credit credit{0xabcdef, 4242, 0x0102030405060708ULL};
    auto body = wire::credit_body(credit);
    wire::Record r;
    r.type = wire::Type::credit;
    r.body = body;
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(r));
    std::vector<wire::Credit> got;
    ASSERT_TRUE(IsOk(wire::decode(w.bytes(), [&](const wire::Record& rec) {
        ASSERT_EQ(rec.type, wire::Type::credit);
        got.push_back(wire::read_credit(rec.body));
    })));
    EXPECT_EQ(got, std::vector<wire::Credit>{credit});

    // A writer never packs a credit of another length.
    std::array<std::byte, wire::kCreditBytes + 8> longer{};
    r.body = longer;
    EXPECT_FALSE(w.add(r));
    // A peer that sends one is refused whole: the length field says 24.
    std::vector<std::byte> batch(w.bytes().begin(), w.bytes().end());
    batch[wire::kHeaderBytes + 32] = std::byte{24};
    batch.resize(batch.size() + 8);
    EXPECT_TRUE(
        FailsWith(wire::decode(batch, [](const wire::Record&) {}), std::errc::protocol_error));
}

// The layout docs and peers rely on, whatever the host: little-endian
// fields at fixed places, the record padded to 8 bytes.
TEST(ClusterWire, ABatchIsLaidOutLittleEndianByteForByte) {
    wire::Record r;
    r.port = 0x11223344;
    r.address = {bus::To::port, 0x55667788, 0};
    r.creds = {0x01020304, 1000, 0xa0b0c0d0, true};
    r.hops = 2;
    r.target = bus::Origin{0x00070809, 0x11121314, 0x21222324};
    const std::vector<std::byte> body = {std::byte{0xee}};
    r.body = body;
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(r));
    const std::vector<std::uint8_t> want = {
        'I',  'P',  'N',  'C',  2,    0,    0,    0,    1,    0,    0,    0,  // header
        1,    0,    1,    3,    2,    0,    0,    0,  // type, kind, flags, hops
        0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, 0,    0,    0,    0,  // port, lower, upper
        4,    3,    2,    1,    0xe8, 3,    0,    0,    0xd0, 0xc0, 0xb0, 0xa0,  // pid, uid, gid
        1,    0,    0,    0,    9,    8,    7,    0,    0x14, 0x13, 0x12, 0x11,  // length, target
        0x24, 0x23, 0x22, 0x21, 0xee, 0,    0,    0,    0,    0,    0,    0};    // port, body, pad
    std::vector<std::uint8_t> got;
    for (std::byte b : w.bytes()) got.push_back(std::to_integer<std::uint8_t>(b));
    EXPECT_EQ(got, want);
    EXPECT_EQ(wire::BatchWriter::record_bytes(1), 56U);
    EXPECT_EQ(wire::BatchWriter::record_bytes(8), 56U);
    EXPECT_EQ(wire::BatchWriter::record_bytes(9), 64U);
}

TEST(ClusterWire, EmptyAndLargestBodiesRoundTrip) {
    const std::vector<std::byte> largest = body_of(wire::kMaxBody, 3);
    wire::Record empty;
    wire::Record full;
    full.body = largest;
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(empty));
    ASSERT_TRUE(w.add(full));
    std::vector<Seen> out;
    ASSERT_TRUE(IsOk(decode_all(w.bytes(), out)));
    ASSERT_EQ(out.size(), 2U);
    EXPECT_TRUE(out[0].body.empty());
    EXPECT_EQ(out[1].body, largest);
    EXPECT_EQ(w.bytes().size(), wire::kHeaderBytes + wire::BatchWriter::record_bytes(0) +
                                    wire::BatchWriter::record_bytes(wire::kMaxBody));
}

TEST(ClusterWire, AnEmptyBatchDecodesToNoRecords) {
    wire::BatchWriter w(kBig);
    EXPECT_TRUE(w.empty());
    EXPECT_EQ(w.bytes().size(), wire::kHeaderBytes);
    std::vector<Seen> out;
    EXPECT_TRUE(IsOk(decode_all(w.bytes(), out)));
    EXPECT_TRUE(out.empty());
}

TEST(ClusterWire, AddRefusesWhatNoBatchCanHoldAndKeepsTheBatch) {
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(every_type()[0]));
    const std::vector<std::byte> before(w.bytes().begin(), w.bytes().end());
    const std::vector<std::byte> too_long = body_of(wire::kMaxBody + 1);
    wire::Record over;
    over.body = too_long;
    EXPECT_FALSE(w.add(over));
    wire::Record join_with_body = every_type()[1];
    join_with_body.body = kPayload;
    EXPECT_FALSE(w.add(join_with_body));
    wire::Record leave_with_body = every_type()[2];
    leave_with_body.body = kPayload;
    EXPECT_FALSE(w.add(leave_with_body));
    wire::Record bad_type;
    bad_type.type = static_cast<wire::Type>(9);
    EXPECT_FALSE(w.add(bad_type));
    wire::Record bad_kind;
    bad_kind.address.to = static_cast<bus::To>(5);
    EXPECT_FALSE(w.add(bad_kind));
    EXPECT_EQ(w.records(), 1U);
    EXPECT_EQ(std::vector<std::byte>(w.bytes().begin(), w.bytes().end()), before);
}

TEST(ClusterWire, ABatchFillsToMaxBytesExactlyAndRefusesTheNextRecord) {
    // Bodies whose records need padding, and one that ends on the boundary.
    const std::vector<std::byte> b1 = body_of(5);
    const std::vector<std::byte> b2 = body_of(12);
    const std::vector<std::byte> b3 = body_of(100);
    const std::size_t max = wire::kHeaderBytes + wire::BatchWriter::record_bytes(b1.size()) +
                            wire::BatchWriter::record_bytes(b2.size()) +
                            wire::BatchWriter::record_bytes(b3.size());
    wire::BatchWriter w(max);
    for (const auto* b : {&b1, &b2, &b3}) {
        wire::Record r;
        r.body = *b;
        ASSERT_TRUE(w.add(r));
    }
    EXPECT_EQ(w.bytes().size(), max);
    const std::vector<std::byte> before(w.bytes().begin(), w.bytes().end());
    wire::Record smallest;
    smallest.type = wire::Type::leave;
    EXPECT_FALSE(w.add(smallest));
    EXPECT_EQ(w.records(), 3U);
    EXPECT_EQ(std::vector<std::byte>(w.bytes().begin(), w.bytes().end()), before);
    std::vector<Seen> out;
    ASSERT_TRUE(IsOk(decode_all(w.bytes(), out)));
    ASSERT_EQ(out.size(), 3U);
    EXPECT_EQ(out[2].body, b3);

    // One byte less and the third record no longer fits.
    wire::BatchWriter tight(max - 1);
    wire::Record r;
    r.body = b1;
    ASSERT_TRUE(tight.add(r));
    r.body = b2;
    ASSERT_TRUE(tight.add(r));
    r.body = b3;
    EXPECT_FALSE(tight.add(r));
    EXPECT_EQ(tight.records(), 2U);
}

TEST(ClusterWire, AWarmWriterKeepsItsBuffer) {
    wire::BatchWriter w(kBig);
    const std::vector<std::byte> body = body_of(1000);
    wire::Record r;
    r.body = body;
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(w.add(r));
    const std::byte* buffer = w.bytes().data();
    w.clear();
    EXPECT_TRUE(w.empty());
    EXPECT_EQ(w.bytes().size(), wire::kHeaderBytes);
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(w.add(r));
    EXPECT_EQ(w.bytes().data(), buffer);
    EXPECT_EQ(w.records(), 50U);
}

TEST(ClusterWire, EveryTruncationIsRefused) {
    const std::vector<std::byte> batch = valid_batch();
    for (std::size_t n = 0; n < batch.size(); ++n) {
        std::vector<Seen> out;
        bus::Status s = decode_all(std::span(batch).first(n), out);
        EXPECT_FALSE(s.ok()) << "a batch cut to " << n << " bytes decoded";
        EXPECT_EQ(s.code, std::errc::protocol_error) << n;
        EXPECT_TRUE(out.empty()) << "records handed out from a batch cut to " << n;
    }
}

// A flipped bit is refused, or the batch decodes to records that encode
// back to exactly those bytes (one encoding per set of records).
TEST(ClusterWire, EverySingleBitFlipIsRefusedOrDecodesToWellFormedRecords) {
    const std::vector<std::byte> batch = valid_batch();
    int decoded = 0;
    for (std::size_t bit = 0; bit < batch.size() * 8; ++bit) {
        std::vector<std::byte> flipped = batch;
        flipped[bit / 8] ^= static_cast<std::byte>(1U << (bit % 8));
        std::vector<Seen> out;
        bus::Status s = decode_all(flipped, out);
        if (!s.ok()) {
            EXPECT_EQ(s.code, std::errc::protocol_error) << s.reason;
            EXPECT_FALSE(s.reason.empty());
            EXPECT_TRUE(out.empty()) << "bit " << bit;
            continue;
        }
        ++decoded;
        EXPECT_EQ(encode(out), flipped) << "bit " << bit;
    }
    // Payload bits, ports, ids: plenty of flips are well formed.
    EXPECT_GT(decoded, 0);
}

TEST(ClusterWire, ABatchDecodesAtAnyAddress) {
    const std::vector<std::byte> batch = valid_batch();
    std::vector<Seen> want;
    ASSERT_TRUE(IsOk(decode_all(batch, want)));
    for (std::size_t offset = 1; offset < 16; ++offset) {
        std::vector<std::byte> shifted(offset + batch.size());
        std::copy(batch.begin(), batch.end(), std::span(shifted).subspan(offset).begin());
        std::vector<Seen> out;
        ASSERT_TRUE(IsOk(decode_all(std::span(shifted).subspan(offset), out))) << offset;
        EXPECT_EQ(out, want) << offset;
    }
}

TEST(ClusterWire, TheHeaderIsChecked) {
    std::vector<Seen> out;
    std::vector<std::byte> b = valid_batch();
    b[0] = std::byte{'X'};
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "magic"));
    b = valid_batch();
    b[4] = std::byte{1};
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "version 1"));
    b = valid_batch();
    b[7] = std::byte{1};
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "reserved"));
    b = valid_batch();
    poke32(b, 8, 5);
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "counts 5 records, it holds 4"));
    b = valid_batch();
    poke32(b, 8, 3);
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "after its 3 records"));
    b = valid_batch();
    b.resize(b.size() + 8);
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "8 bytes after its 4 records"));
    EXPECT_TRUE(out.empty());
}

// Each fault in the second record (a join) refuses the batch, names the
// record, and hands out nothing, not even the well-formed first record.
TEST(ClusterWire, AFaultyRecordRefusesTheWholeBatchAndIsNamed) {
    const std::size_t second = kFirst + wire::BatchWriter::record_bytes(kPayload.size());
    struct Fault {
        const char* says;
        std::function<void(std::vector<std::byte>&)> make;
    };
    const std::vector<Fault> faults = {
        {"unknown type 0", [&](auto& b) { b[second] = std::byte{0}; }},
        {"unknown type 6", [&](auto& b) { b[second] = std::byte{6}; }},
        {"unknown address kind 5", [&](auto& b) { b[second + 2] = std::byte{5}; }},
        {"undefined flag bits 0x10", [&](auto& b) { b[second + 3] |= std::byte{0x10}; }},
        {"a placed join", [&](auto& b) { b[second + 3] |= std::byte{2}; }},
        {"a target but not placed", [&](auto& b) { b[second + 36] = std::byte{1}; }},
        {"reserved byte", [&](auto& b) { b[second + 6] = std::byte{1}; }},
        {"a join with an address", [&](auto& b) { b[second + 2] = std::byte{1}; }},
        {"a join with an address", [&](auto& b) { b[second + 4] = std::byte{1}; }},
        {"a join with a body", [&](auto& b) { b[second + 32] = std::byte{4}; }},
        {"over 65535", [&](auto& b) { poke32(b, second + 32, 65536); }},
        {"a body of 200 bytes, only 128 left", [&](auto& b) { poke32(b, second + 32, 200); }},
        {"set but not marked known",
         [&](auto& b) {
             b[second + 3] = std::byte{0};
             b[second + 20] = std::byte{1};
         }},
    };
    for (const Fault& f : faults) {
        std::vector<std::byte> b = valid_batch();
        f.make(b);
        std::vector<Seen> out;
        bus::Status s = decode_all(b, out);
        EXPECT_TRUE(RefusedSaying(s, "record 1")) << f.says;
        EXPECT_TRUE(RefusedSaying(s, f.says));
        EXPECT_TRUE(out.empty()) << f.says;
    }
}

TEST(ClusterWire, FieldsALeaveOrHelloDoesNotCarryAreRefused) {
    const std::size_t third = kFirst + wire::BatchWriter::record_bytes(kPayload.size()) +
                              wire::BatchWriter::record_bytes(0);
    const std::size_t fourth = third + wire::BatchWriter::record_bytes(0);
    std::vector<Seen> out;
    std::vector<std::byte> b = valid_batch();
    b[third + 3] = std::byte{1};  // credentials on a leave
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "record 2: a leave with credentials"));
    b = valid_batch();
    b[fourth + 8] = std::byte{1};  // a port on a hello
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "record 3: a hello with a port"));
}

TEST(ClusterWire, NonZeroPaddingIsRefused) {
    // The data record's 13-byte body leaves 7 bytes of padding.
    std::vector<std::byte> b = valid_batch();
    b[kFirst + wire::kRecordHeaderBytes + kPayload.size() + 2] = std::byte{0x80};
    std::vector<Seen> out;
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "record 0: non-zero padding"));
}

TEST(ClusterWire, PaddingPastTheEndIsRefused) {
    wire::Record r;
    r.body = kPayload;
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(r));
    std::vector<std::byte> b(w.bytes().begin(), w.bytes().end());
    b.resize(b.size() - 3);  // the body is whole, its padding is not
    std::vector<Seen> out;
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "record 0: its padding runs 3 bytes past"));
}

// A unicast or anycast travels with the port its sender's daemon placed it
// at, a join with whether its port receives and its instance; each is
// refused where it does not belong.
TEST(ClusterWire, PlacedMessagesAndPresenceRoundTripAndAreRefusedElsewhere) {
    wire::Record any;
    any.address = {bus::To::anycast, 7, 7};
    any.target = bus::Origin{3, 4242, 9};
    any.body = kPayload;
    wire::Record join;
    join.type = wire::Type::join;
    join.port = 2;
    join.presence = {true, 0xfffffffe};
    wire::BatchWriter w(kBig);
    ASSERT_TRUE(w.add(any));
    ASSERT_TRUE(w.add(join));
    std::vector<std::byte> batch(w.bytes().begin(), w.bytes().end());
    std::vector<Seen> out;
    ASSERT_TRUE(IsOk(decode_all(batch, out)));
    ASSERT_EQ(out.size(), 2U);
    EXPECT_EQ(out[0], seen(any));
    EXPECT_EQ(out[1], seen(join));
    EXPECT_EQ(encode(out), batch);

    // The writer refuses what a reader would: a unicast not placed, a
    // broadcast placed, a target at node 0.
    wire::Record bad = any;
    bad.target.reset();
    EXPECT_FALSE(w.add(bad));
    bad = any;
    bad.address = {bus::To::broadcast, 0, 0};
    EXPECT_FALSE(w.add(bad));
    bad = any;
    bad.target->node = 0;
    EXPECT_FALSE(w.add(bad));

    const std::size_t flags = kFirst + 3;
    std::vector<std::byte> b = batch;
    b[flags] &= ~std::byte{2};
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "a data with a target but not placed"));
    b = batch;
    poke32(b, kFirst + 36, 0);
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "placed at node 0"));
    b = batch;
    b[kFirst + 2] = std::byte{4};  // broadcast
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "no unicast or anycast"));
    b = batch;
    b[kFirst + 3] |= std::byte{4};
    EXPECT_TRUE(RefusedSaying(decode_all(b, out), "a data with a presence"));
}

}  // namespace
}  // namespace ipnfs::test
