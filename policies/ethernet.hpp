// Just enough of Ethernet and 802.1Q for a switch: the addresses and VLAN tag
// of a frame, and the two edits made at a port's edge (adding or removing
// the tag).  Nothing here keeps state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ipnfs::policies::ethernet {

// A MAC address in the low 48 bits, first octet most significant, so it
// hashes and sorts as a number and prints in wire order.
using Mac = std::uint64_t;

using Vid = std::uint16_t;
inline constexpr Vid kMinVid = 1;
inline constexpr Vid kMaxVid = 4094;  // 0 and 4095 are reserved by 802.1Q

inline constexpr std::size_t kHeader = 14;      // dst, src, ethertype
inline constexpr std::size_t kTagOffset = 12;   // where an 802.1Q tag sits
inline constexpr std::size_t kTag = 4;          // TPID and TCI
inline constexpr std::uint16_t kTpid = 0x8100;  // ethertype of a tagged frame
inline constexpr std::uint16_t kVidMask = 0x0fff;
inline constexpr std::uint16_t kPriorityMask = 0xf000;  // PCP and DEI

struct Frame {
    Mac dst = 0;
    Mac src = 0;
    bool tagged = false;
    std::uint16_t tci = 0;  // meaningful only when tagged

    [[nodiscard]] Vid vid() const { return tci & kVidMask; }
};

// The frame's header, or nullopt when it is too short to hold one (a tagged
// frame needs its whole tag and the ethertype after it).
std::optional<Frame> parse(std::span<const std::byte> frame);

// Group addresses (broadcast and multicast) have the I/G bit set: the lowest
// bit of the first octet.
inline bool is_group(Mac mac) {
    return (mac & (Mac{1} << 40)) != 0;
}

// The frame with its tag removed; `frame` must be a tagged frame.
void strip_tag(std::span<const std::byte> frame, std::vector<std::byte>& out);
// The frame with a tag carrying `tci` inserted; `frame` must be untagged.
void insert_tag(std::span<const std::byte> frame, std::uint16_t tci, std::vector<std::byte>& out);
// The tagged frame with its TCI replaced.
void replace_tci(std::span<const std::byte> frame, std::uint16_t tci, std::vector<std::byte>& out);

// The frame (parsed as `parsed`) tagged with `vlan`: a tag inserted if it had
// none, else its VID replaced; the PCP and DEI it carried travel with it.
void tag_with(std::span<const std::byte> frame, const Frame& parsed, std::uint16_t vlan,
              std::vector<std::byte>& out);

// "02:00:00:00:00:01": lowercase, as ip(8) and bridge(8) print them.
std::string format_mac(Mac mac);

}  // namespace ipnfs::policies::ethernet
