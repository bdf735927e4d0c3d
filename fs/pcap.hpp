// The classic pcap file format (libpcap's savefile, as tcpdump -r and
// Wireshark read it): a 24-byte global header, then one record per packet.
// Written in host byte order with the microsecond magic; readers tell the
// order from the magic.  No FUSE or bus types, so it is tested on its own.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace ipnfs::fs::pcap {

constexpr std::uint32_t kMagic = 0xa1b2c3d4;  // time stamps in microseconds
constexpr std::uint16_t kVersionMajor = 2;
constexpr std::uint16_t kVersionMinor = 4;
constexpr std::uint32_t kSnapLen = 65535;   // the largest MTU: records are never cut
constexpr std::uint32_t kLinkEthernet = 1;  // LINKTYPE_ETHERNET
constexpr std::uint32_t kLinkUser0 = 147;   // LINKTYPE_USER0: opaque messages

constexpr std::size_t kHeaderSize = 24;
constexpr std::size_t kRecordHeaderSize = 16;

// The global header of a stream of `link_type` packets.
std::array<std::byte, kHeaderSize> header(std::uint32_t link_type);

// Appends one record: its header (time stamp from `time_ns`, nanoseconds
// since the epoch, cut to microseconds) and the packet, cut to kSnapLen.
void append_record(std::string& out, std::uint64_t time_ns, std::span<const std::byte> packet);

// The bytes append_record() adds for a packet of `size` bytes.
constexpr std::size_t record_size(std::size_t size) {
    return kRecordHeaderSize + (size < kSnapLen ? size : kSnapLen);
}

}  // namespace ipnfs::fs::pcap
