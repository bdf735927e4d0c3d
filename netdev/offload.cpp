#include "netdev/offload.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace ipnfs::netdev {

namespace {

// struct virtio_net_hdr (see kVnetHeaderSize).
struct RawVnetHeader {
    std::uint8_t flags;
    std::uint8_t gso_type;
    std::uint16_t hdr_len;
    std::uint16_t gso_size;
    std::uint16_t csum_start;
    std::uint16_t csum_offset;
};
static_assert(sizeof(RawVnetHeader) == kVnetHeaderSize);

constexpr std::size_t kEthHeader = 14;
constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinQ = 0x88a8;
constexpr std::size_t kTag = 4;
constexpr std::size_t kIpv4Header = 20;
constexpr std::size_t kIpv6Header = 40;
constexpr std::size_t kTcpHeader = 20;
constexpr std::size_t kUdpHeader = 8;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
// IPv6 extension headers a GSO packet may carry before its transport
// header (hop-by-hop, routing, destination options); a fragment header
// means it is no superframe.
constexpr std::array<std::uint8_t, 3> kIpv6Extensions{0, 43, 60};
constexpr int kMaxIpv6Extensions = 8;
constexpr std::uint16_t kIpv4MoreFragments = 0x2000;
constexpr std::uint16_t kIpv4FragmentBits = 0x3fff;  // MF and the offset
constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpCwr = 0x80;

std::uint16_t be16(std::span<const std::byte> f, std::size_t at) {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(f[at]) << 8) |
                                      std::to_integer<unsigned>(f[at + 1]));
}
std::uint32_t be32(std::span<const std::byte> f, std::size_t at) {
    return (std::uint32_t{be16(f, at)} << 16) | be16(f, at + 2);
}
void put16(std::span<std::byte> f, std::size_t at, std::uint16_t v) {
    f[at] = std::byte(v >> 8);
    f[at + 1] = std::byte(v & 0xff);
}
void put32(std::span<std::byte> f, std::size_t at, std::uint32_t v) {
    put16(f, at, static_cast<std::uint16_t>(v >> 16));
    put16(f, at + 2, static_cast<std::uint16_t>(v & 0xffff));
}

// RFC 1071's ones' complement sum, eight bytes at a time in the machine's
// order (the sum does not depend on the order words are read in, up to one
// byte swap at the end).  Each span added starts a new 16-bit word: only
// the last may have an odd length.
class Sum {
  public:
    void add(std::span<const std::byte> bytes) {
        const std::byte* p = bytes.data();
        std::size_t n = bytes.size();
        for (; n >= 8; p += 8, n -= 8) {
            std::uint64_t v = 0;
            std::memcpy(&v, p, 8);
            carry(v);
        }
        if (n >= 4) {
            std::uint32_t v = 0;
            std::memcpy(&v, p, 4);
            carry(v);
            p += 4;
            n -= 4;
        }
        if (n >= 2) {
            std::uint16_t v = 0;
            std::memcpy(&v, p, 2);
            carry(v);
            p += 2;
            n -= 2;
        }
        if (n == 1) {
            std::array<std::byte, 2> last{*p, std::byte{0}};
            std::uint16_t v = 0;
            std::memcpy(&v, last.data(), 2);
            carry(v);
        }
    }
    // A 16-bit word of the packet, given as a number.
    void add_word(std::uint16_t v) { carry(htons(v)); }
    // The checksum field's value (as a number): the sum's complement.
    [[nodiscard]] std::uint16_t checksum() const {
        std::uint64_t a = acc_;
        a = (a & 0xffffffffU) + (a >> 32);
        a = (a & 0xffffffffU) + (a >> 32);
        a = (a & 0xffffU) + (a >> 16);
        a = (a & 0xffffU) + (a >> 16);
        return static_cast<std::uint16_t>(~ntohs(static_cast<std::uint16_t>(a)));
    }

  private:
    void carry(std::uint64_t v) {
        acc_ += v;
        acc_ += acc_ < v ? 1 : 0;
    }
    std::uint64_t acc_ = 0;
};

// UDP sends a computed 0 as 0xffff: 0 means "no checksum".
std::uint16_t udp_checksum(const Sum& s) {
    std::uint16_t c = s.checksum();
    return c == 0 ? 0xffff : c;
}

bus::Status refuse(std::string reason) {
    return bus::Status::error(std::errc::invalid_argument, std::move(reason));
}

}  // namespace

VnetHeader VnetHeader::parse(std::span<const std::byte> bytes) {
    RawVnetHeader raw{};
    if (!bytes.empty()) std::memcpy(&raw, bytes.data(), std::min(bytes.size(), sizeof raw));
    return {raw.flags, raw.gso_type, raw.hdr_len, raw.gso_size, raw.csum_start, raw.csum_offset};
}

void VnetHeader::write(std::span<std::byte> out) const {
    RawVnetHeader raw{flags, gso_type, hdr_len, gso_size, csum_start, csum_offset};
    if (!out.empty()) std::memcpy(out.data(), &raw, std::min(out.size(), sizeof raw));
}

bool complete_checksum(std::span<std::byte> frame, const VnetHeader& hdr) {
    if (!hdr.needs_csum()) return true;
    std::size_t field = std::size_t{hdr.csum_start} + hdr.csum_offset;
    if (field + 2 > frame.size()) return false;
    Sum s;
    s.add(frame.subspan(hdr.csum_start));
    // As the kernel's skb_checksum_help: a computed 0 goes out as 0xffff,
    // the same value for TCP and the only valid one for UDP.
    put16(frame, field, udp_checksum(s));
    return true;
}

bus::Status Segmenter::start(std::span<const std::byte> frame, const VnetHeader& hdr) {
    frame_ = frame;
    hdr_ = hdr;
    kind_ = Kind::whole;
    index_ = 0;
    count_ = 0;
    max_frame_ = 0;
    if (frame.empty()) return refuse("an empty frame");
    const std::uint8_t gso = hdr.gso();
    if (gso == VnetHeader::kGsoNone) {
        if (hdr.needs_csum() && std::size_t{hdr.csum_start} + hdr.csum_offset + 2 > frame.size()) {
            return refuse(fmt::format(
                "its checksum (from byte {}, field at +{}) falls outside the {}-byte frame",
                hdr.csum_start, hdr.csum_offset, frame.size()));
        }
        count_ = 1;
        max_frame_ = frame.size();
        return bus::Status::success();
    }
    const bool tcp = gso == VnetHeader::kGsoTcpV4 || gso == VnetHeader::kGsoTcpV6;
    if (!tcp && gso != VnetHeader::kGsoUdpL4 && gso != VnetHeader::kGsoUdp) {
        return bus::Status::error(std::errc::not_supported,
                                  fmt::format("GSO type {} is not one that can be segmented", gso));
    }
    if (hdr.gso_size == 0) return refuse("a GSO frame with a gso_size of 0");

    // Ethernet, then at most two VLAN tags.
    if (frame.size() < kEthHeader) return refuse("a GSO frame shorter than an Ethernet header");
    std::uint16_t type = be16(frame, kEthHeader - 2);
    std::size_t at = kEthHeader;
    for (int tags = 0; (type == kEtherVlan || type == kEtherQinQ) && tags < 2; ++tags) {
        if (frame.size() < at + kTag) return refuse("a GSO frame cut short in its VLAN tag");
        type = be16(frame, at + 2);
        at += kTag;
    }
    net_off_ = at;
    std::uint8_t proto = 0;
    std::size_t ip_length = 0;  // the IP header's own idea, 0: the frame's
    if (type == kEtherIpv4) {
        ipv4_ = true;
        if (frame.size() < at + kIpv4Header)
            return refuse("a GSO frame cut short in its IPv4 header");
        const auto vihl = std::to_integer<unsigned>(frame[at]);
        const std::size_t ihl = std::size_t{vihl & 0xfU} * 4;
        if ((vihl >> 4) != 4 || ihl < kIpv4Header || frame.size() < at + ihl) {
            return refuse("a GSO frame whose IPv4 header is not one");
        }
        if ((be16(frame, at + 6) & kIpv4FragmentBits) != 0) {
            return refuse("a GSO frame that is an IPv4 fragment");
        }
        proto = std::to_integer<std::uint8_t>(frame[at + 9]);
        l4_off_ = at + ihl;
        ip_length = be16(frame, at + 2);  // 0 with BIG TCP
    } else if (type == kEtherIpv6) {
        ipv4_ = false;
        if (frame.size() < at + kIpv6Header || (std::to_integer<unsigned>(frame[at]) >> 4) != 6) {
            return refuse("a GSO frame whose IPv6 header is cut short or not one");
        }
        proto = std::to_integer<std::uint8_t>(frame[at + 6]);
        std::size_t off = at + kIpv6Header;
        for (int n = 0; std::find(kIpv6Extensions.begin(), kIpv6Extensions.end(), proto) !=
                        kIpv6Extensions.end();
             ++n) {
            if (n == kMaxIpv6Extensions || frame.size() < off + 8) {
                return refuse("a GSO frame whose IPv6 extension headers run past it");
            }
            proto = std::to_integer<std::uint8_t>(frame[off]);
            off += (std::to_integer<std::size_t>(frame[off + 1]) + 1) * 8;
        }
        if (off > frame.size())
            return refuse("a GSO frame whose IPv6 extension headers run past it");
        l4_off_ = off;
        std::size_t payload = be16(frame, at + 4);  // 0 with a jumbogram
        ip_length = payload == 0 ? 0 : kIpv6Header + payload;
    } else {
        return refuse(fmt::format("a GSO frame of EtherType {:#06x}, neither IPv4 nor IPv6", type));
    }
    end_ = ip_length == 0 ? frame.size() : net_off_ + ip_length;
    if (end_ > frame.size() || end_ < l4_off_) {
        return refuse("a GSO frame whose IP length disagrees with the frame");
    }
    if ((gso == VnetHeader::kGsoTcpV4 && !ipv4_) || (gso == VnetHeader::kGsoTcpV6 && ipv4_)) {
        return refuse("a GSO frame whose GSO type names the other IP version");
    }
    if (proto != (tcp ? kProtoTcp : kProtoUdp)) {
        return refuse(fmt::format("a GSO frame of type {} carrying IP protocol {}", gso, proto));
    }

    if (tcp) {
        if (end_ < l4_off_ + kTcpHeader) return refuse("a GSO frame cut short in its TCP header");
        const std::size_t doff = (std::to_integer<std::size_t>(frame[l4_off_ + 12]) >> 4) * 4;
        if (doff < kTcpHeader || end_ < l4_off_ + doff) {
            return refuse("a GSO frame whose TCP header length is not its own");
        }
        kind_ = Kind::tcp;
        headers_end_ = l4_off_ + doff;
        unit_ = hdr.gso_size;
    } else {
        if (end_ < l4_off_ + kUdpHeader) return refuse("a GSO frame cut short in its UDP header");
        if (end_ - l4_off_ > 0xffff) return refuse("a GSO frame's UDP datagram is over 64 KiB");
        if (gso == VnetHeader::kGsoUdp) {
            if (!ipv4_) {
                return bus::Status::error(std::errc::not_supported,
                                          "UFO over IPv6 (fragment headers) is not segmented");
            }
            kind_ = Kind::ufo;
            headers_end_ = l4_off_;
            unit_ = hdr.gso_size & ~std::size_t{7};  // fragment offsets count 8-byte units
            if (unit_ == 0) return refuse("a UFO frame whose gso_size is below 8");
            // One datagram, one checksum, carried by the first fragment.
            const auto length = static_cast<std::uint16_t>(end_ - l4_off_);
            Sum s;
            s.add(frame.subspan(net_off_ + 12, 8));
            s.add_word(kProtoUdp);
            s.add_word(length);
            std::array<std::byte, kUdpHeader> udp{};
            std::memcpy(udp.data(), frame.data() + l4_off_, kUdpHeader);
            put16(udp, 4, length);
            put16(udp, 6, 0);
            s.add(udp);
            s.add(frame.subspan(l4_off_ + kUdpHeader, end_ - l4_off_ - kUdpHeader));
            ufo_csum_ = udp_checksum(s);
        } else {
            kind_ = Kind::udp;
            headers_end_ = l4_off_ + kUdpHeader;
            unit_ = hdr.gso_size;
        }
    }
    const std::size_t payload = end_ - headers_end_;
    count_ = std::max<std::size_t>(1, (payload + unit_ - 1) / unit_);
    max_frame_ = headers_end_ + std::min(unit_, payload);
    if (max_frame_ - net_off_ > 0xffff) return refuse("a GSO frame whose segments exceed 64 KiB");
    return bus::Status::success();
}

std::size_t Segmenter::next(std::span<std::byte> out) {
    if (done() || out.size() < max_frame_) return 0;
    switch (kind_) {
        case Kind::whole: {
            std::memcpy(out.data(), frame_.data(), frame_.size());
            // start() checked the offsets: this cannot fail.
            complete_checksum(out.first(frame_.size()), hdr_);
            ++index_;
            return frame_.size();
        }
        case Kind::ufo:
            return next_fragment(out);
        case Kind::tcp:
        case Kind::udp:
            break;
    }
    return next_segment(out);
}

std::size_t Segmenter::next_segment(std::span<std::byte> out) {
    const std::size_t i = index_++;
    const std::size_t from = headers_end_ + i * unit_;
    const std::size_t len = std::min(unit_, end_ - from);
    const std::size_t total = headers_end_ + len;
    std::memcpy(out.data(), frame_.data(), headers_end_);
    std::memcpy(out.data() + headers_end_, frame_.data() + from, len);
    std::span<std::byte> seg = out.first(total);

    if (ipv4_) {
        put16(seg, net_off_ + 2, static_cast<std::uint16_t>(total - net_off_));
        put16(seg, net_off_ + 4, static_cast<std::uint16_t>(be16(frame_, net_off_ + 4) + i));
        put16(seg, net_off_ + 10, 0);
        Sum ip;
        ip.add(seg.subspan(net_off_, l4_off_ - net_off_));
        put16(seg, net_off_ + 10, ip.checksum());
    } else {
        put16(seg, net_off_ + 4, static_cast<std::uint16_t>(total - net_off_ - kIpv6Header));
    }

    const auto l4_length = static_cast<std::uint16_t>(total - l4_off_);
    Sum s;
    if (ipv4_) {
        s.add(seg.subspan(net_off_ + 12, 8));  // source and destination
    } else {
        s.add(seg.subspan(net_off_ + 8, 32));
    }
    s.add_word(l4_length);
    std::size_t check = 0;
    if (kind_ == Kind::tcp) {
        s.add_word(kProtoTcp);
        put32(seg, l4_off_ + 4, be32(frame_, l4_off_ + 4) + static_cast<std::uint32_t>(i * unit_));
        auto flags = std::to_integer<std::uint8_t>(seg[l4_off_ + 13]);
        if (i + 1 < count_) flags &= static_cast<std::uint8_t>(~(kTcpFin | kTcpPsh));
        if (i > 0) flags &= static_cast<std::uint8_t>(~kTcpCwr);
        seg[l4_off_ + 13] = std::byte{flags};
        check = l4_off_ + 16;
    } else {
        s.add_word(kProtoUdp);
        put16(seg, l4_off_ + 4, l4_length);
        check = l4_off_ + 6;
    }
    put16(seg, check, 0);
    s.add(seg.subspan(l4_off_));
    put16(seg, check, kind_ == Kind::tcp ? s.checksum() : udp_checksum(s));
    return total;
}

std::size_t Segmenter::next_fragment(std::span<std::byte> out) {
    const std::size_t i = index_++;
    const std::size_t offset = i * unit_;  // into the datagram, UDP header included
    const std::size_t len = std::min(unit_, end_ - l4_off_ - offset);
    const std::size_t total = l4_off_ + len;
    std::memcpy(out.data(), frame_.data(), l4_off_);
    std::memcpy(out.data() + l4_off_, frame_.data() + l4_off_ + offset, len);
    std::span<std::byte> frag = out.first(total);
    if (i == 0) {
        put16(frag, l4_off_ + 4, static_cast<std::uint16_t>(end_ - l4_off_));
        put16(frag, l4_off_ + 6, ufo_csum_);
    }
    put16(frag, net_off_ + 2, static_cast<std::uint16_t>(total - net_off_));
    auto bits = static_cast<std::uint16_t>(offset / 8);
    if (i + 1 < count_) bits |= kIpv4MoreFragments;
    put16(frag, net_off_ + 6, bits);
    put16(frag, net_off_ + 10, 0);
    Sum ip;
    ip.add(frag.subspan(net_off_, l4_off_ - net_off_));
    put16(frag, net_off_ + 10, ip.checksum());
    return total;
}

bus::Status segment(std::span<const std::byte> frame, const VnetHeader& hdr,
                    const std::function<void(std::span<const std::byte>)>& emit) {
    Segmenter cut;
    if (bus::Status s = cut.start(frame, hdr); !s.ok()) return s;
    // One buffer per thread, grown to the longest segment seen (at most
    // 64 KiB and headers), so that no frame allocates.
    thread_local std::vector<std::byte> scratch;
    if (scratch.size() < cut.max_frame()) scratch.resize(cut.max_frame());
    while (!cut.done()) {
        std::size_t n = cut.next(scratch);
        emit(std::span<const std::byte>(scratch.data(), n));
    }
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
