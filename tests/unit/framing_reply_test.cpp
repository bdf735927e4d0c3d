// fs::FramedReply, the iovecs of a framed read's reply: the bytes a client
// parses are the records of include/ipnfs.h whether a payload is copied or
// pointed at, the pointed-at payloads are the messages' own buffers (held
// by the reply), and a batch never needs more iovecs than writev() takes.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "bus_test_support.hpp"
#include "fs/framing.hpp"
#include "include/ipnfs.h"

namespace ipnfs::test {
namespace {

using fs::FramedReply;
constexpr std::size_t kBig = FramedReply::kCopyBelow;  // the smallest payload pointed at

// A message as a network would hand it to a reader: numbered, from `port`.
bus::MessageRef message(std::size_t size, std::uint64_t seq, bus::PortId port = 3,
                        bus::Kind kind = bus::Kind::data) {
    std::vector<std::byte> payload(size);
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<std::byte>(seq * 31 + i);
    bus::MessageRef m = bus::Message::make(port, payload, kind);
    m->set_seq(seq);
    return m;
}

// One record as a client parses it.
struct Parsed {
    ipnfs_record header{};
    std::optional<ipnfs_creds> creds;
    std::optional<ipnfs_node> node;
    std::string payload;  // the bytes present (a cut record's first ones)
};

// A client's parse of a reply: header, credentials, node, payload, padding
// that must be zero; a cut record runs to the end.
std::vector<Parsed> parse(const std::string& reply) {
    std::vector<Parsed> out;
    std::size_t at = 0;
    while (at < reply.size()) {
        Parsed r;
        EXPECT_GE(reply.size() - at, sizeof r.header) << "a header at " << at;
        if (reply.size() - at < sizeof r.header) break;
        std::memcpy(&r.header, reply.data() + at, sizeof r.header);
        EXPECT_EQ(r.header.version, IPNFS_FRAME_VERSION);
        std::size_t next = at + sizeof r.header;
        if ((r.header.flags & IPNFS_FLAG_CREDS) != 0) {
            r.creds.emplace();
            std::memcpy(&*r.creds, reply.data() + next, sizeof *r.creds);
            next += sizeof *r.creds;
        }
        if ((r.header.flags & IPNFS_FLAG_NODE) != 0) {
            r.node.emplace();
            std::memcpy(&*r.node, reply.data() + next, sizeof *r.node);
            next += sizeof *r.node;
        }
        std::size_t end = std::min(at + IPNFS_RECORD_FULL_SIZE(&r.header), reply.size());
        std::size_t present = std::min<std::size_t>(r.header.len, end - next);
        r.payload = reply.substr(next, present);
        for (std::size_t i = next + present; i < end; ++i) {
            EXPECT_EQ(reply[i], '\0') << "padding at " << i;
        }
        out.push_back(r);
        at = end;
    }
    return out;
}

std::string payload_of(const bus::MessageRef& m, std::size_t n) {
    return text(m).substr(0, n);
}

// Whether some iovec of `reply` points into `m`'s own buffer.
bool points_at(FramedReply& reply, const bus::MessageRef& m) {
    for (const iovec& piece : reply.iov()) {
        if (piece.iov_base == m->payload().data()) return true;
    }
    return false;
}

// Adds records of `payload` bytes while they fit whole: the messages added.
std::vector<bus::MessageRef> fill(FramedReply& reply, std::size_t payload) {
    std::vector<bus::MessageRef> sent;
    for (std::uint64_t seq = 1;; ++seq) {
        bus::MessageRef m = message(payload, seq);
        if (!reply.fits(*m)) return sent;
        reply.add(m);
        sent.push_back(std::move(m));
    }
}

// The reply holds exactly `sent`'s payloads, in order.
void expect_payloads(FramedReply& reply, const std::vector<bus::MessageRef>& sent) {
    std::vector<Parsed> got = parse(reply.flatten());
    ASSERT_EQ(got.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        ASSERT_EQ(got[i].payload, text(sent[i])) << "record " << i;
    }
}

TEST(FramedReply, ByteForByteTheRecordFormat) {
    bus::MessageRef m = message(3, 42);
    m->set_address({bus::To::anycast, 5, 5});
    FramedReply reply(1024);
    reply.add(m);
    ipnfs_record header{3, IPNFS_DATA, IPNFS_FRAME_VERSION, 3, IPNFS_FLAGS_TO(IPNFS_TO_ANYCAST),
                        42};
    std::string want(reinterpret_cast<const char*>(&header), sizeof header);
    want += text(m);
    want += std::string(5, '\0');  // padded to IPNFS_RECORD_ALIGN
    EXPECT_EQ(reply.size(), 32u);
    EXPECT_EQ(reply.flatten(), want);
}

TEST(FramedReply, MixedSizesLargePayloadsPointedAtSmallOnesCopied) {
    const std::vector<std::size_t> sizes = {1, 64, kBig - 1, kBig, 7, 2 * kBig + 1};
    std::vector<bus::MessageRef> sent;
    FramedReply reply(64 * 1024);
    std::size_t total = 0;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        sent.push_back(message(sizes[i], i + 1));
        ASSERT_TRUE(reply.fits(*sent.back()));
        reply.add(sent.back());
        total += IPNFS_RECORD_SIZE(sizes[i]);
    }
    EXPECT_EQ(reply.size(), total);
    for (const bus::MessageRef& m : sent) {
        EXPECT_EQ(points_at(reply, m), m->payload().size() >= kBig)
            << m->payload().size() << " bytes";
    }
    // Own bytes, then each pointed-at payload and the own bytes after it.
    EXPECT_EQ(reply.iov().size(), 5u);
    std::string flat = reply.flatten();
    ASSERT_EQ(flat.size(), total);
    std::vector<Parsed> got = parse(flat);
    ASSERT_EQ(got.size(), sent.size());
    for (std::size_t i = 0; i < sent.size(); ++i) {
        EXPECT_EQ(got[i].header.len, sizes[i]);
        EXPECT_EQ(got[i].header.seq, i + 1);
        EXPECT_EQ(got[i].header.port, 3u);
        EXPECT_EQ(got[i].header.flags, 0u);
        EXPECT_EQ(got[i].payload, text(sent[i])) << "record " << i;
    }
}

TEST(FramedReply, HoldsTheMessagesItPointsAt) {
    FramedReply reply(4 * kBig);
    bus::MessageRef m = message(kBig + 1, 1);  // padded: header, payload, padding
    const std::byte* payload = m->payload().data();
    std::string want = text(m);
    reply.add(std::move(m));  // the reply's reference is the only one left
    ASSERT_EQ(reply.iov().size(), 3u);
    EXPECT_EQ(reply.iov()[1].iov_base, payload);
    std::vector<Parsed> got = parse(reply.flatten());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].payload, want);
}

TEST(FramedReply, LastRecordIsCutToWhatIsLeft) {
    bus::MessageRef first = message(2 * kBig, 1);
    bus::MessageRef last = message(2 * kBig, 2);
    const std::size_t left = kBig + 8;  // of the second record's payload
    const std::size_t size = IPNFS_RECORD_SIZE(2 * kBig) + sizeof(ipnfs_record) + left;
    FramedReply reply(size);
    reply.add(first);
    EXPECT_TRUE(reply.has_room());
    EXPECT_FALSE(reply.fits(*last));
    reply.add(last);
    EXPECT_EQ(reply.size(), size);
    EXPECT_FALSE(reply.has_room());
    ASSERT_EQ(reply.iov().size(), 4u);
    EXPECT_EQ(reply.iov()[3].iov_base, last->payload().data());
    EXPECT_EQ(reply.iov()[3].iov_len, left) << "the cut payload is pointed at as far as it goes";
    std::vector<Parsed> got = parse(reply.flatten());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].header.flags, 0u);
    EXPECT_EQ(got[1].header.flags, IPNFS_FLAG_TRUNCATED);
    EXPECT_EQ(got[1].header.len, 2 * kBig) << "a cut record says how long the message was";
    EXPECT_EQ(got[1].payload, payload_of(last, left));
}

TEST(FramedReply, ShortCutIsCopied) {
    bus::MessageRef m = message(2 * kBig, 1);
    const std::size_t size = sizeof(ipnfs_record) + 10;
    FramedReply reply(size);
    reply.add(m);
    EXPECT_EQ(reply.iov().size(), 1u) << "ten bytes are copied, not pointed at";
    std::vector<Parsed> got = parse(reply.flatten());
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].header.flags, IPNFS_FLAG_TRUNCATED);
    EXPECT_EQ(got[0].payload, payload_of(m, 10));
}

TEST(FramedReply, FirstRecordMayLoseItsPaddingAlone) {
    bus::MessageRef m = message(kBig + 3, 1);
    const std::size_t size = sizeof(ipnfs_record) + m->payload().size();
    FramedReply reply(size);
    reply.add(m);
    std::string flat = reply.flatten();
    EXPECT_EQ(flat.size(), size) << "the read's size ends the padding";
    std::vector<Parsed> got = parse(flat);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].header.flags, 0u) << "the whole payload is there: not cut";
    EXPECT_EQ(got[0].payload, text(m));
}

TEST(FramedReply, CredentialsAndNodeSitBetweenHeaderAndPayload) {
    bus::MessageRef both = message(kBig, 1);
    both->set_credentials({4242, 1000, 100, true});
    both->set_node(7);
    bus::MessageRef node_only = message(20, 2);  // a kernel interface's: no credentials
    node_only->set_node(9);
    for (bool creds : {true, false}) {
        FramedReply reply(4 * kBig, creds);
        reply.add(both);
        reply.add(node_only);
        EXPECT_TRUE(points_at(reply, both));
        const std::size_t extra = creds ? sizeof(ipnfs_creds) : 0;
        EXPECT_EQ(reply.size(), extra + sizeof(ipnfs_node) + IPNFS_RECORD_SIZE(kBig) +
                                    sizeof(ipnfs_node) + IPNFS_RECORD_SIZE(20));
        std::vector<Parsed> got = parse(reply.flatten());
        ASSERT_EQ(got.size(), 2u);
        EXPECT_EQ(got[0].header.flags, IPNFS_FLAG_NODE | (creds ? IPNFS_FLAG_CREDS : 0));
        ASSERT_EQ(got[0].creds.has_value(), creds);
        if (creds) {
            EXPECT_EQ(got[0].creds->pid, 4242u);
            EXPECT_EQ(got[0].creds->uid, 1000u);
            EXPECT_EQ(got[0].creds->gid, 100u);
            EXPECT_EQ(got[0].creds->pad, 0u);
        }
        ASSERT_TRUE(got[0].node.has_value());
        EXPECT_EQ(got[0].node->node, 7u);
        EXPECT_EQ(got[0].node->pad, 0u);
        EXPECT_EQ(got[0].payload, text(both));
        EXPECT_EQ(got[1].header.flags, IPNFS_FLAG_NODE) << "unknown credentials are left out";
        EXPECT_EQ(got[1].node->node, 9u);
        EXPECT_EQ(got[1].payload, text(node_only));
    }
}

TEST(FramedReply, EmptyPayloadIsAHeaderAlone) {
    bus::MessageRef join = message(0, 1, 5, bus::Kind::join);
    bus::MessageRef data = message(kBig + 4, 2);
    FramedReply reply(4 * kBig);
    reply.add(join);
    reply.add(data);
    EXPECT_EQ(reply.size(), sizeof(ipnfs_record) + IPNFS_RECORD_SIZE(kBig + 4));
    ASSERT_EQ(reply.iov().size(), 3u);
    EXPECT_EQ(reply.iov()[0].iov_len, 2 * sizeof(ipnfs_record)) << "both headers in one piece";
    std::vector<Parsed> got = parse(reply.flatten());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].header.kind, IPNFS_JOIN);
    EXPECT_EQ(got[0].header.len, 0u);
    EXPECT_EQ(got[0].header.port, 5u);
    EXPECT_EQ(got[1].payload, text(data));
}

// The largest batches a read can ask for (1 MiB, FUSE's largest): of the
// smallest records, all copied into one piece; of the smallest payloads
// pointed at, two iovecs each.
TEST(FramedReply, MaxBatch) {
    const std::size_t size = 1024 * 1024;
    for (std::size_t payload : {std::size_t{1}, kBig}) {
        SCOPED_TRACE(payload);
        FramedReply reply(size);
        std::vector<bus::MessageRef> sent = fill(reply, payload);
        EXPECT_EQ(sent.size(), size / IPNFS_RECORD_SIZE(payload));
        EXPECT_EQ(reply.iov().size(), payload == 1 ? 1 : 2 * sent.size());
        EXPECT_LE(reply.iov().size(), FramedReply::kMaxIov);
        expect_payloads(reply, sent);
    }
}

// Were smaller payloads pointed at, a batch would need several thousand
// iovecs: past writev()'s limit the rest is copied.
TEST(FramedReply, ManyPointedAtPayloadsStayWithinWritevsIovecs) {
    const std::size_t copy_below = 256;
    FramedReply reply(1024 * 1024, false, copy_below);
    std::vector<bus::MessageRef> sent = fill(reply, copy_below);
    ASSERT_GT(sent.size(), 2 * FramedReply::kMaxIov);
    EXPECT_LE(reply.iov().size(), FramedReply::kMaxIov);
    EXPECT_TRUE(points_at(reply, sent.front()));
    EXPECT_FALSE(points_at(reply, sent.back()));
    expect_payloads(reply, sent);
}

TEST(FramedReply, PointsAtPayloadsOnlyWhileTwoIovecsAreLeft) {
    FramedReply reply(64 * 1024, false, 256, 5);
    std::vector<bus::MessageRef> sent;
    for (std::uint64_t seq = 1; seq <= 4; ++seq) {
        sent.push_back(message(1000, seq));
        reply.add(sent.back());
    }
    // own, payload 1, own, payload 2, own: then no more pointing.
    EXPECT_EQ(reply.iov().size(), 5u);
    EXPECT_TRUE(points_at(reply, sent[0]));
    EXPECT_TRUE(points_at(reply, sent[1]));
    EXPECT_FALSE(points_at(reply, sent[2]));
    expect_payloads(reply, sent);
}

TEST(FramedReply, SmallRecordsAreOnePiece) {
    FramedReply reply(64 * 1024);
    std::vector<bus::MessageRef> sent = fill(reply, 64);
    EXPECT_EQ(sent.size(), 64 * 1024 / IPNFS_RECORD_SIZE(64));
    EXPECT_EQ(reply.iov().size(), 1u);
    expect_payloads(reply, sent);
}

class FramedReplyOfAPort : public HubNetworkTest {};

// framed_reply takes what fits whole after the first record and leaves the
// rest queued, in order.
TEST_F(FramedReplyOfAPort, TakesWhileRecordsFitWhole) {
    bus::Connection w = writer(0);
    bus::Connection r = reader(1);
    const std::vector<std::string> sent = {std::string(1000, 'a'), std::string(10, 'b'),
                                           std::string(1000, 'c'), std::string(3, 'd')};
    for (const std::string& m : sent) send(w, m);
    bus::Received first = net_->receive(r, nullptr);
    ASSERT_EQ(first.outcome, bus::Outcome::message);
    const std::size_t size = IPNFS_RECORD_SIZE(1000) + IPNFS_RECORD_SIZE(10) + 100;
    FramedReply reply = fs::framed_reply(*net_, r, first.message, size);
    std::vector<Parsed> got = parse(reply.flatten());
    ASSERT_EQ(got.size(), 2u) << "the third record does not fit whole";
    EXPECT_EQ(got[0].payload, sent[0]);
    EXPECT_EQ(got[1].payload, sent[1]);
    EXPECT_EQ(drain(r), (std::vector<std::string>{sent[2], sent[3]}));
}

}  // namespace
}  // namespace ipnfs::test
