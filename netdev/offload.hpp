// Work a sending kernel left for whoever takes its frames (checksum and
// segmentation offloads), described by the virtio_net_hdr that AF_PACKET
// (PACKET_VNET_HDR) and TAP (IFF_VNET_HDR) put before each frame: a
// checksum only started (CHECKSUM_PARTIAL) and GSO superframes of up to
// 64 KiB.  This turns such a frame into the wire frames it stands for.
// Pure computation: no sockets.  A frame is hostile input: every offset
// and length read from it or its header is checked against the frame, and
// one that does not add up is refused, never read or written past.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "bus/status.hpp"

namespace ipnfs::netdev {

// sizeof(struct virtio_net_hdr): linux/virtio_net.h itself does not
// compile as C++ (a member is named `class`), so its layout and constants
// are repeated here, from the same ABI.
constexpr std::size_t kVnetHeaderSize = 10;

// struct virtio_net_hdr, fields in host byte order: the order the kernel
// uses for AF_PACKET, and for TAP unless TUNSETVNETLE/BE chose another.
struct VnetHeader {
    static constexpr std::uint8_t kNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
    static constexpr std::uint8_t kDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
    static constexpr std::uint8_t kGsoNone = 0;
    static constexpr std::uint8_t kGsoTcpV4 = 1;
    static constexpr std::uint8_t kGsoUdp = 3;  // UFO: IP fragments
    static constexpr std::uint8_t kGsoTcpV6 = 4;
    static constexpr std::uint8_t kGsoUdpL4 = 5;  // USO
    static constexpr std::uint8_t kGsoEcn = 0x80;

    std::uint8_t flags = 0;
    std::uint8_t gso_type = 0;
    std::uint16_t hdr_len = 0;
    std::uint16_t gso_size = 0;
    std::uint16_t csum_start = 0;
    std::uint16_t csum_offset = 0;

    // From the first kVnetHeaderSize bytes; bytes past a shorter span read
    // as 0 (a short header describes a plain frame as far as it goes).
    static VnetHeader parse(std::span<const std::byte> bytes);
    // Into the first kVnetHeaderSize bytes of out, or as many as it has.
    void write(std::span<std::byte> out) const;

    // The GSO type without the ECN bit.
    [[nodiscard]] std::uint8_t gso() const {
        return static_cast<std::uint8_t>(gso_type & ~kGsoEcn);
    }
    [[nodiscard]] bool needs_csum() const { return (flags & kNeedsCsum) != 0; }

    bool operator==(const VnetHeader&) const = default;
};

// Finishes a partial checksum in place: the ones' complement sum from
// csum_start to the frame's end (the field at csum_start + csum_offset
// holds the pseudo-header's sum) goes into that field.  True when done or
// when the header asks for nothing; false, leaving the frame as it was,
// when the offsets fall outside the frame (the caller drops it).
bool complete_checksum(std::span<std::byte> frame, const VnetHeader& hdr);

// Cuts one frame into wire frames, one at a time into the caller's
// buffer, so that nothing is allocated per frame.  A GSO superframe (TCP
// over IPv4 or IPv6, UDP_L4 over either, legacy UFO over IPv4) yields
// frames of at most gso_size bytes of payload: IPv4 total length, id and
// header checksum, IPv6 payload length, TCP sequence number and flags
// (FIN and PSH on the last only, CWR on the first only) or UDP length
// fixed, and every L4 checksum computed whole.  Any other frame yields
// itself, its partial checksum completed.  Up to one 802.1Q or 802.1ad tag
// pair may precede the IP header.
class Segmenter {
  public:
    // Checks `frame` against `hdr` (an empty frame is refused too); on
    // success next() has at least one frame to give.
    // The frame must stay where it is until done().
    bus::Status start(std::span<const std::byte> frame, const VnetHeader& hdr);
    [[nodiscard]] bool done() const { return index_ >= count_; }
    // The bytes the longest wire frame of this frame needs.
    [[nodiscard]] std::size_t max_frame() const { return max_frame_; }
    // Writes the next wire frame into out, which holds at least max_frame()
    // bytes; returns its length (0 once done or when out is too short).
    std::size_t next(std::span<std::byte> out);

  private:
    enum class Kind : std::uint8_t { whole, tcp, udp, ufo };

    std::size_t next_segment(std::span<std::byte> out);
    std::size_t next_fragment(std::span<std::byte> out);

    std::span<const std::byte> frame_;
    VnetHeader hdr_;
    Kind kind_ = Kind::whole;
    bool ipv4_ = false;
    std::size_t net_off_ = 0;      // IP header
    std::size_t l4_off_ = 0;       // TCP or UDP header
    std::size_t headers_end_ = 0;  // what each output repeats (UFO: the IP header)
    std::size_t end_ = 0;          // past the IP packet (Ethernet padding excluded)
    std::size_t unit_ = 0;         // payload per output
    std::size_t count_ = 0;
    std::size_t index_ = 0;
    std::size_t max_frame_ = 0;
    std::uint16_t ufo_csum_ = 0;  // UFO: the whole datagram's UDP checksum
};

// The same as a Segmenter, one callback per wire frame (valid during the
// call only; emit must not segment in turn, the buffer is the thread's).
// Nothing is emitted for a frame that is refused.
bus::Status segment(std::span<const std::byte> frame, const VnetHeader& hdr,
                    const std::function<void(std::span<const std::byte>)>& emit);

}  // namespace ipnfs::netdev
