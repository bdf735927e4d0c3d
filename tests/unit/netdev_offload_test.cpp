// Offloads (netdev/offload): a partial checksum is completed, a GSO
// superframe becomes the wire frames it stands for, each checked here with
// a checksum routine of its own (bytewise, RFC 1071), and a frame whose
// header or lengths do not add up is refused without a byte read or
// written outside it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "netdev/offload.hpp"

namespace ipnfs::test {
namespace {

using netdev::Segmenter;
using netdev::VnetHeader;
using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kEth = 14;

std::uint16_t get16(const Bytes& b, std::size_t at) {
    return static_cast<std::uint16_t>((b.at(at) << 8) | b.at(at + 1));
}
std::uint32_t get32(const Bytes& b, std::size_t at) {
    return (std::uint32_t{get16(b, at)} << 16) | get16(b, at + 2);
}
void set16(Bytes& b, std::size_t at, std::uint32_t v) {
    b.at(at) = static_cast<std::uint8_t>(v >> 8);
    b.at(at + 1) = static_cast<std::uint8_t>(v);
}

// The plain 32-bit sum of big-endian words, an odd last byte padded.
std::uint32_t add_words(const Bytes& b, std::size_t from, std::size_t to, std::uint32_t sum = 0) {
    for (std::size_t i = from; i < to; i += 2) {
        sum += static_cast<std::uint32_t>(b.at(i) << 8) + (i + 1 < to ? b.at(i + 1) : 0);
    }
    return sum;
}
std::uint16_t fold(std::uint32_t sum) {
    while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(sum);
}

struct Ip {
    bool v4 = true;
    std::size_t net = kEth;  // IP header offset
    std::size_t l4 = 0;      // transport header offset
};

// The pseudo-header's sum for `l4_length` bytes of `proto`.
std::uint32_t pseudo(const Bytes& f, const Ip& ip, std::uint8_t proto, std::size_t l4_length) {
    std::uint32_t s =
        ip.v4 ? add_words(f, ip.net + 12, ip.net + 20) : add_words(f, ip.net + 8, ip.net + 40);
    return s + proto + static_cast<std::uint32_t>(l4_length >> 16) +
           static_cast<std::uint32_t>(l4_length & 0xffff);
}

// True when the transport checksum of the IP packet that ends at `end` is right.
bool l4_valid(const Bytes& f, const Ip& ip, std::uint8_t proto, std::size_t end) {
    if (proto == 17 && get16(f, ip.l4 + 6) == 0) return false;  // 0 is "none": not completed
    return fold(add_words(f, ip.l4, end, pseudo(f, ip, proto, end - ip.l4))) == 0xffff;
}
bool ipv4_header_valid(const Bytes& f, const Ip& ip) {
    return fold(add_words(f, ip.net, ip.l4)) == 0xffff;
}

// An Ethernet frame with an IPv4 or IPv6 header, a TCP (20 + `options`
// bytes) or UDP header and `payload` bytes of a counting pattern, its
// transport checksum partial (the pseudo-header's sum, as a kernel leaves
// it), its lengths true unless the caller changes them.
struct Built {
    Bytes frame;
    Ip ip;
    VnetHeader hdr;
    std::size_t payload_at = 0;
};

Built build(bool v4, std::uint8_t proto, std::size_t payload, std::size_t options = 0,
            std::size_t tags = 0) {
    Built b;
    Bytes& f = b.frame;
    f = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
    for (std::size_t t = 0; t < tags; ++t) {
        f.insert(f.end(), {t == 0 && tags == 2 ? std::uint8_t{0x88} : std::uint8_t{0x81},
                           t == 0 && tags == 2 ? std::uint8_t{0xa8} : std::uint8_t{0x00}, 0x00,
                           static_cast<std::uint8_t>(10 + t)});
    }
    f.insert(f.end(), {v4 ? std::uint8_t{0x08} : std::uint8_t{0x86},
                       v4 ? std::uint8_t{0} : std::uint8_t{0xdd}});
    b.ip.v4 = v4;
    b.ip.net = f.size();
    const std::size_t l4_header = proto == 6 ? 20 + options : 8;
    const std::size_t l4_length = l4_header + payload;
    if (v4) {
        f.insert(f.end(), {0x45, 0x00, 0,  0, 0x12, 0x34, 0x40, 0x00, 64, proto,
                           0,    0,    10, 0, 0,    1,    10,   0,    0,  2});
        set16(f, b.ip.net + 2, 20 + l4_length);
    } else {
        f.insert(f.end(), {0x60, 0, 0, 0, 0, 0, proto, 64});
        for (int i = 0; i < 16; ++i) f.push_back(i == 0 ? 0xfd : (i == 15 ? 1 : 0));
        for (int i = 0; i < 16; ++i) f.push_back(i == 0 ? 0xfd : (i == 15 ? 2 : 0));
        set16(f, b.ip.net + 4, l4_length);
    }
    b.ip.l4 = f.size();
    if (proto == 6) {
        f.insert(f.end(), {0x9c,
                           0x40,
                           0x14,
                           0x51,
                           0xde,
                           0xad,
                           0xbe,
                           0xef,
                           0,
                           0,
                           0,
                           1,
                           static_cast<std::uint8_t>(((20 + options) / 4) << 4),
                           0x18,
                           0xff,
                           0xff,
                           0,
                           0,
                           0,
                           0});
        for (std::size_t i = 0; i < options; ++i) f.push_back(i % 4 == 3 ? 0 : 1);  // NOPs, EOL
    } else {
        f.insert(f.end(), {0x30, 0x39, 0x14, 0x51, 0, 0, 0, 0});
        set16(f, b.ip.l4 + 4, l4_length);
    }
    b.payload_at = f.size();
    for (std::size_t i = 0; i < payload; ++i)
        f.push_back(static_cast<std::uint8_t>(i * 7 + i / 251));
    const std::size_t check = b.ip.l4 + (proto == 6 ? 16 : 6);
    set16(f, check, fold(pseudo(f, b.ip, proto, l4_length)));
    b.hdr.flags = VnetHeader::kNeedsCsum;
    b.hdr.csum_start = static_cast<std::uint16_t>(b.ip.l4);
    b.hdr.csum_offset = proto == 6 ? 16 : 6;
    b.hdr.hdr_len = static_cast<std::uint16_t>(b.payload_at);
    if (v4)
        set16(f, b.ip.net + 10, static_cast<std::uint16_t>(~fold(add_words(f, b.ip.net, b.ip.l4))));
    return b;
}

std::span<const std::byte> bytes(const Bytes& b) {
    return std::as_bytes(std::span<const std::uint8_t>(b));
}

std::vector<Bytes> run(const Bytes& frame, const VnetHeader& hdr, bus::Status* status = nullptr) {
    std::vector<Bytes> out;
    bus::Status s = netdev::segment(bytes(frame), hdr, [&](std::span<const std::byte> f) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(f.data());
        out.emplace_back(p, p + f.size());
    });
    if (status != nullptr) *status = s;
    return out;
}

TEST(NetdevOffload, TheHeaderReadsAndWritesStructVirtioNetHdrInHostOrder) {
    // struct virtio_net_hdr on this (little-endian) host: flags NEEDS_CSUM,
    // gso_type TCPV6 | ECN, hdr_len 66, gso_size 1448, csum_start 54,
    // csum_offset 16.
    std::array<std::uint8_t, netdev::kVnetHeaderSize> raw{1, 0x84, 66, 0, 0xa8, 0x05, 54, 0, 16, 0};
    std::array<std::byte, netdev::kVnetHeaderSize> wire{};
    std::memcpy(wire.data(), raw.data(), raw.size());
    VnetHeader h = VnetHeader::parse(wire);
    EXPECT_EQ(h.flags, VnetHeader::kNeedsCsum);
    EXPECT_EQ(h.gso(), VnetHeader::kGsoTcpV6);
    EXPECT_EQ(h.gso_type & VnetHeader::kGsoEcn, VnetHeader::kGsoEcn);
    EXPECT_EQ(h.hdr_len, 66);
    EXPECT_EQ(h.gso_size, 1448);
    EXPECT_EQ(h.csum_start, 54);
    EXPECT_EQ(h.csum_offset, 16);
    std::array<std::byte, netdev::kVnetHeaderSize> back{};
    h.write(back);
    EXPECT_EQ(std::memcmp(back.data(), wire.data(), wire.size()), 0);
    // A short span: what is missing reads as 0, nothing past it is touched.
    EXPECT_EQ(VnetHeader::parse(std::span(wire).first(2)), (VnetHeader{h.flags, h.gso_type}));
    EXPECT_EQ(VnetHeader::parse({}), VnetHeader{});
}

TEST(NetdevOffload, APartialChecksumIsCompleted) {
    for (bool v4 : {true, false}) {
        for (std::uint8_t proto : {std::uint8_t{6}, std::uint8_t{17}}) {
            for (std::size_t payload : {0U, 1U, 5U, 1000U, 1460U}) {
                Built b = build(v4, proto, payload, proto == 6 ? 12 : 0);
                SCOPED_TRACE(testing::Message()
                             << "v4 " << v4 << " proto " << int(proto) << " payload " << payload);
                EXPECT_FALSE(l4_valid(b.frame, b.ip, proto, b.frame.size()));
                auto span = std::as_writable_bytes(std::span(b.frame));
                ASSERT_TRUE(netdev::complete_checksum(span, b.hdr));
                EXPECT_TRUE(l4_valid(b.frame, b.ip, proto, b.frame.size()));
                // The Segmenter's copy of a plain frame is the same.
                Built again = build(v4, proto, payload, proto == 6 ? 12 : 0);
                std::vector<Bytes> out = run(again.frame, again.hdr);
                ASSERT_EQ(out.size(), 1U);
                EXPECT_EQ(out[0], b.frame);
            }
        }
    }
}

TEST(NetdevOffload, AChecksumOutsideTheFrameIsRefusedAndTheFrameLeftAlone) {
    Built b = build(true, 6, 100);
    const Bytes before = b.frame;
    auto span = std::as_writable_bytes(std::span(b.frame));
    VnetHeader h = b.hdr;
    h.csum_offset = static_cast<std::uint16_t>(b.frame.size() - h.csum_start - 1);  // field cut
    EXPECT_FALSE(netdev::complete_checksum(span, h));
    h.csum_start = 0xffff;
    h.csum_offset = 0xffff;
    EXPECT_FALSE(netdev::complete_checksum(span, h));
    EXPECT_EQ(b.frame, before);
    bus::Status s;
    EXPECT_TRUE(run(b.frame, h, &s).empty());
    EXPECT_EQ(s.code, std::errc::invalid_argument) << s.reason;
    // No NEEDS_CSUM: nothing to do, whatever the offsets say.
    h.flags = 0;
    EXPECT_TRUE(netdev::complete_checksum(span, h));
    EXPECT_EQ(b.frame, before);
}

// Checks `out` as the segments of `b` cut at `mss`: lengths, checksums,
// sequence numbers, flags and ids, and that their payloads put together
// are the superframe's.
void expect_tcp_segments(const Built& b, const std::vector<Bytes>& out, std::size_t mss) {
    const std::size_t header = b.payload_at;
    const std::size_t payload = b.frame.size() - header;
    ASSERT_EQ(out.size(), std::max<std::size_t>(1, (payload + mss - 1) / mss));
    Bytes joined;
    const std::uint8_t flags = b.frame[b.ip.l4 + 13];
    for (std::size_t i = 0; i < out.size(); ++i) {
        SCOPED_TRACE(testing::Message() << "segment " << i);
        const Bytes& s = out[i];
        const std::size_t len = std::min(mss, payload - i * mss);
        ASSERT_EQ(s.size(), header + len);
        EXPECT_TRUE(std::equal(s.begin(), s.begin() + static_cast<long>(b.ip.net), b.frame.begin()))
            << "Ethernet header and tags kept";
        if (b.ip.v4) {
            EXPECT_EQ(get16(s, b.ip.net + 2), s.size() - b.ip.net);
            EXPECT_EQ(get16(s, b.ip.net + 4), 0x1234 + i);
            EXPECT_TRUE(ipv4_header_valid(s, b.ip));
        } else {
            EXPECT_EQ(get16(s, b.ip.net + 4), s.size() - b.ip.net - 40);
        }
        EXPECT_EQ(get32(s, b.ip.l4 + 4), 0xdeadbeef + i * mss);
        std::uint8_t want = flags;
        if (i + 1 < out.size()) want &= static_cast<std::uint8_t>(~0x09);  // FIN, PSH
        if (i > 0) want &= static_cast<std::uint8_t>(~0x80);               // CWR
        EXPECT_EQ(s[b.ip.l4 + 13], want);
        EXPECT_TRUE(std::equal(s.begin() + static_cast<long>(b.ip.l4 + 20),
                               s.begin() + static_cast<long>(header),
                               b.frame.begin() + static_cast<long>(b.ip.l4 + 20)))
            << "TCP options kept";
        EXPECT_TRUE(l4_valid(s, b.ip, 6, s.size()));
        joined.insert(joined.end(), s.begin() + static_cast<long>(header), s.end());
    }
    EXPECT_TRUE(std::equal(joined.begin(), joined.end(),
                           b.frame.begin() + static_cast<long>(header), b.frame.end()));
}

TEST(NetdevOffload, ATcpV4SuperframeBecomesWireSegments) {
    Built b = build(true, 6, 4000, 12);
    b.frame[b.ip.l4 + 13] = 0x80 | 0x10 | 0x08 | 0x01;  // CWR ACK PSH FIN
    b.hdr.gso_type = VnetHeader::kGsoTcpV4 | VnetHeader::kGsoEcn;
    b.hdr.gso_size = 1448;
    expect_tcp_segments(b, run(b.frame, b.hdr), 1448);
}

TEST(NetdevOffload, ATcpV6SuperframeBecomesWireSegmentsEvenAtAnOddSize) {
    for (std::size_t mss : {1001U, 1440U, 65000U}) {
        Built b = build(false, 6, 7777, 12);
        b.frame[b.ip.l4 + 13] = 0x80 | 0x10 | 0x01;
        b.hdr.gso_type = VnetHeader::kGsoTcpV6;
        b.hdr.gso_size = static_cast<std::uint16_t>(mss);
        SCOPED_TRACE(testing::Message() << "mss " << mss);
        expect_tcp_segments(b, run(b.frame, b.hdr), mss);
    }
}

TEST(NetdevOffload, ATaggedSuperframeKeepsItsTags) {
    for (std::size_t tags : {1U, 2U}) {
        Built b = build(true, 6, 3000, 0, tags);
        b.hdr.gso_type = VnetHeader::kGsoTcpV4;
        b.hdr.gso_size = 1400;
        expect_tcp_segments(b, run(b.frame, b.hdr), 1400);
    }
}

TEST(NetdevOffload, ASuperframeOfOneSegmentComesOutWhole) {
    Built b = build(true, 6, 500);
    b.hdr.gso_type = VnetHeader::kGsoTcpV4;
    b.hdr.gso_size = 1448;
    expect_tcp_segments(b, run(b.frame, b.hdr), 1448);
}

TEST(NetdevOffload, AUdpL4SuperframeBecomesDatagrams) {
    for (bool v4 : {true, false}) {
        Built b = build(v4, 17, 3333);
        b.hdr.gso_type = VnetHeader::kGsoUdpL4;
        b.hdr.gso_size = 1200;
        SCOPED_TRACE(testing::Message() << "v4 " << v4);
        std::vector<Bytes> out = run(b.frame, b.hdr);
        ASSERT_EQ(out.size(), 3U);
        Bytes joined;
        for (std::size_t i = 0; i < out.size(); ++i) {
            const Bytes& s = out[i];
            const std::size_t len = std::min<std::size_t>(1200, 3333 - i * 1200);
            ASSERT_EQ(s.size(), b.payload_at + len);
            EXPECT_EQ(get16(s, b.ip.l4 + 4), 8 + len) << "UDP length";
            if (v4) {
                EXPECT_EQ(get16(s, b.ip.net + 2), s.size() - b.ip.net);
                EXPECT_EQ(get16(s, b.ip.net + 4), 0x1234 + i);
                EXPECT_TRUE(ipv4_header_valid(s, b.ip));
            } else {
                EXPECT_EQ(get16(s, b.ip.net + 4), 8 + len);
            }
            EXPECT_TRUE(l4_valid(s, b.ip, 17, s.size())) << "datagram " << i;
            joined.insert(joined.end(), s.begin() + static_cast<long>(b.payload_at), s.end());
        }
        EXPECT_TRUE(std::equal(joined.begin(), joined.end(),
                               b.frame.begin() + static_cast<long>(b.payload_at), b.frame.end()));
    }
}

TEST(NetdevOffload, AUfoSuperframeBecomesIpFragmentsOfOneValidDatagram) {
    Built b = build(true, 17, 4000);
    b.hdr.gso_type = VnetHeader::kGsoUdp;
    b.hdr.gso_size = 1475;  // fragments carry multiples of 8: 1472
    std::vector<Bytes> out = run(b.frame, b.hdr);
    ASSERT_EQ(out.size(), 3U);  // 4008 bytes of datagram: 1472 + 1472 + 1064
    Bytes datagram;
    for (std::size_t i = 0; i < out.size(); ++i) {
        const Bytes& s = out[i];
        SCOPED_TRACE(testing::Message() << "fragment " << i);
        ASSERT_EQ(s.size(), b.ip.l4 + std::min<std::size_t>(1472, 4008 - i * 1472));
        EXPECT_EQ(get16(s, b.ip.net + 2), s.size() - b.ip.net);
        EXPECT_EQ(get16(s, b.ip.net + 4), 0x1234) << "one id for all fragments";
        const std::uint16_t frag = get16(s, b.ip.net + 6);
        EXPECT_EQ(frag & 0x1fff, i * 1472 / 8);
        EXPECT_EQ((frag & 0x2000) != 0, i + 1 < out.size()) << "more fragments";
        EXPECT_TRUE(ipv4_header_valid(s, b.ip));
        datagram.insert(datagram.end(), s.begin() + static_cast<long>(b.ip.l4), s.end());
    }
    // Reassembled, the datagram is the original one with a valid checksum.
    Bytes whole(b.frame.begin(), b.frame.begin() + static_cast<long>(b.ip.l4));
    whole.insert(whole.end(), datagram.begin(), datagram.end());
    EXPECT_EQ(get16(whole, b.ip.l4 + 4), 4008);
    EXPECT_TRUE(l4_valid(whole, b.ip, 17, whole.size()));
    EXPECT_TRUE(std::equal(whole.begin() + static_cast<long>(b.payload_at), whole.end(),
                           b.frame.begin() + static_cast<long>(b.payload_at)));

    Built v6 = build(false, 17, 4000);
    v6.hdr.gso_type = VnetHeader::kGsoUdp;
    v6.hdr.gso_size = 1400;
    bus::Status s;
    EXPECT_TRUE(run(v6.frame, v6.hdr, &s).empty());
    EXPECT_EQ(s.code, std::errc::not_supported) << s.reason;
}

TEST(NetdevOffload, SuperframesThatDoNotAddUpAreRefused) {
    auto refused = [](const Bytes& frame, const VnetHeader& hdr) {
        bus::Status s;
        std::vector<Bytes> out = run(frame, hdr, &s);
        return !s.ok() && out.empty();
    };
    Built b = build(true, 6, 3000);
    b.hdr.gso_type = VnetHeader::kGsoTcpV4;
    b.hdr.gso_size = 1000;
    ASSERT_FALSE(refused(b.frame, b.hdr));
    VnetHeader h = b.hdr;
    h.gso_size = 0;
    EXPECT_TRUE(refused(b.frame, h)) << "gso_size 0";
    h = b.hdr;
    h.gso_type = 42;
    EXPECT_TRUE(refused(b.frame, h)) << "unknown GSO type";
    h.gso_type = VnetHeader::kGsoTcpV6;
    EXPECT_TRUE(refused(b.frame, h)) << "TCPV6 over IPv4";
    h.gso_type = VnetHeader::kGsoUdpL4;
    EXPECT_TRUE(refused(b.frame, h)) << "UDP_L4 over TCP";
    Bytes f = b.frame;
    set16(f, b.ip.net + 2, 0xffff);
    EXPECT_TRUE(refused(f, b.hdr)) << "IPv4 length past the frame";
    f = b.frame;
    f[b.ip.net] = 0x44;
    EXPECT_TRUE(refused(f, b.hdr)) << "IHL below 5";
    f = b.frame;
    f[b.ip.l4 + 12] = 0xf0;  // 60-byte TCP header where there is 20, then payload
    set16(f, b.ip.net + 2, 20 + 40);
    EXPECT_TRUE(refused(f, b.hdr)) << "TCP header past the IP packet";
    f = b.frame;
    set16(f, b.ip.net + 6, 0x2000);
    EXPECT_TRUE(refused(f, b.hdr)) << "a fragment";
    f = b.frame;
    f[12] = 0x08;
    f[13] = 0x06;
    EXPECT_TRUE(refused(f, b.hdr)) << "ARP";
    // Every cut of the frame: refused (its IP length says more) or at most
    // what it holds, never a crash.
    for (std::size_t n = 0; n < b.frame.size(); n += (n < 200 ? 1 : 97)) {
        Bytes cut(b.frame.begin(), b.frame.begin() + static_cast<long>(n));
        EXPECT_TRUE(refused(cut, b.hdr)) << "cut at " << n;
    }
    // IPv6 extension headers that run past the frame.
    Built v6 = build(false, 6, 100);
    v6.hdr.gso_type = VnetHeader::kGsoTcpV6;
    v6.hdr.gso_size = 50;
    f = v6.frame;
    f[v6.ip.net + 6] = 0;    // hop-by-hop first ...
    f[v6.ip.l4 + 1] = 0xff;  // ... 2 KiB long
    EXPECT_TRUE(refused(f, v6.hdr));
}

TEST(NetdevOffload, RandomHeadersAndBytesNeverReachOutsideTheFrame) {
    std::mt19937 rng(19);
    Built b = build(true, 6, 2000, 12);
    for (int round = 0; round < 20000; ++round) {
        Bytes f = b.frame;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) f[rng() % std::min<std::size_t>(f.size(), 80)] = rng();
        f.resize(rng() % (f.size() + 1));
        VnetHeader h;
        h.flags = static_cast<std::uint8_t>(rng() % 4);
        const std::array<std::uint8_t, 6> types{0, 1, 3, 4, 5, 0x81};
        h.gso_type = types[rng() % types.size()];
        h.gso_size = static_cast<std::uint16_t>(rng() % 3 == 0 ? rng() : rng() % 2000);
        h.csum_start = static_cast<std::uint16_t>(rng() % 2 == 0 ? rng() : rng() % 80);
        h.csum_offset = static_cast<std::uint16_t>(rng() % 2 == 0 ? rng() : rng() % 20);
        Segmenter cut;
        if (!cut.start(bytes(f), h).ok()) continue;
        // A buffer exactly max_frame() long, fenced: nothing written past it.
        std::vector<std::byte> out(cut.max_frame() + 16, std::byte{0xa5});
        std::size_t frames = 0;
        while (!cut.done()) {
            std::size_t n = cut.next(std::span(out).first(cut.max_frame()));
            ASSERT_GT(n, 0U);
            ASSERT_LE(n, cut.max_frame());
            ASSERT_LT(++frames, 70000U);
        }
        for (std::size_t i = cut.max_frame(); i < out.size(); ++i)
            ASSERT_EQ(out[i], std::byte{0xa5});
    }
}

TEST(NetdevOffload, ABufferShorterThanTheLongestFrameGetsNothing) {
    Built b = build(true, 6, 3000);
    b.hdr.gso_type = VnetHeader::kGsoTcpV4;
    b.hdr.gso_size = 1448;
    Segmenter cut;
    ASSERT_TRUE(cut.start(bytes(b.frame), b.hdr).ok());
    EXPECT_EQ(cut.max_frame(), b.payload_at + 1448);
    std::vector<std::byte> small(cut.max_frame() - 1);
    EXPECT_EQ(cut.next(small), 0U);
    EXPECT_FALSE(cut.done());
}

}  // namespace
}  // namespace ipnfs::test
