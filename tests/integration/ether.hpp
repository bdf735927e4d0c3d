// Ethernet frames as a test writes them into a port file and reads them back:
// MAC addresses, 802.1Q tags, ARP and ICMP echo.  Built by hand from the
// RFCs so the tests depend on nothing but bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ipnfs_it {

using Mac = std::array<std::uint8_t, 6>;
inline constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

std::optional<Mac> parse_mac(std::string_view text);  // "02:00:00:00:00:01"
std::string mac_text(const Mac& mac);
// An IPv4 address in dotted form, in host order (0 if malformed).
std::uint32_t ipv4(const std::string& dotted);

inline constexpr std::uint16_t kEtherArp = 0x0806;
inline constexpr std::uint16_t kEtherIpv4 = 0x0800;

struct Frame {
    Mac dst{}, src{};
    std::optional<std::uint16_t> vid;  // 802.1Q tag (TPID 0x8100), if any
    std::uint16_t type = 0;            // EtherType after the tag
    std::string payload;
    [[nodiscard]] bool unicast() const { return (dst[0] & 1) == 0; }
};

// The bytes on the wire, padded to the 60-byte minimum (64 when tagged).
std::string build_frame(const Frame& frame);
std::optional<Frame> parse_frame(std::string_view bytes);

struct Arp {
    std::uint16_t op = 0;  // 1 request, 2 reply
    Mac sha{}, tha{};
    std::uint32_t spa = 0, tpa = 0;
};
std::string arp_payload(const Arp& arp);
std::optional<Arp> parse_arp(std::string_view payload);

// An IPv4 packet holding an ICMP echo request.
std::string icmp_echo_request(std::uint32_t src, std::uint32_t dst, std::uint16_t id,
                              std::uint16_t seq, std::string_view data);
// True if payload is an IPv4 ICMP echo reply from `src` with this id and seq.
bool is_icmp_echo_reply(std::string_view payload, std::uint32_t src, std::uint16_t id,
                        std::uint16_t seq);

}  // namespace ipnfs_it
