#include "policies/ethernet.hpp"

#include <fmt/format.h>

namespace ipnfs::policies::ethernet {

namespace {

Mac read_mac(std::span<const std::byte> bytes) {
    Mac mac = 0;
    for (std::byte b : bytes.first(6)) mac = (mac << 8) | std::to_integer<Mac>(b);
    return mac;
}

std::uint16_t read_u16(std::span<const std::byte> bytes) {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(bytes[0]) << 8) |
                                      std::to_integer<unsigned>(bytes[1]));
}

void append_u16(std::vector<std::byte>& out, std::uint16_t v) {
    out.push_back(static_cast<std::byte>(v >> 8));
    out.push_back(static_cast<std::byte>(v & 0xff));
}

}  // namespace

std::optional<Frame> parse(std::span<const std::byte> frame) {
    if (frame.size() < kHeader) return std::nullopt;
    Frame f;
    f.dst = read_mac(frame.subspan(0, 6));
    f.src = read_mac(frame.subspan(6, 6));
    if (read_u16(frame.subspan(kTagOffset, 2)) == kTpid) {
        if (frame.size() < kHeader + kTag) return std::nullopt;
        f.tagged = true;
        f.tci = read_u16(frame.subspan(kTagOffset + 2, 2));
    }
    return f;
}

void strip_tag(std::span<const std::byte> frame, std::vector<std::byte>& out) {
    out.clear();
    out.reserve(frame.size() - kTag);
    out.insert(out.end(), frame.begin(), frame.begin() + kTagOffset);
    out.insert(out.end(), frame.begin() + kTagOffset + kTag, frame.end());
}

void insert_tag(std::span<const std::byte> frame, std::uint16_t tci, std::vector<std::byte>& out) {
    out.clear();
    out.reserve(frame.size() + kTag);
    out.insert(out.end(), frame.begin(), frame.begin() + kTagOffset);
    append_u16(out, kTpid);
    append_u16(out, tci);
    out.insert(out.end(), frame.begin() + kTagOffset, frame.end());
}

void replace_tci(std::span<const std::byte> frame, std::uint16_t tci, std::vector<std::byte>& out) {
    out.assign(frame.begin(), frame.end());
    out[kTagOffset + 2] = static_cast<std::byte>(tci >> 8);
    out[kTagOffset + 3] = static_cast<std::byte>(tci & 0xff);
}

void tag_with(std::span<const std::byte> frame, const Frame& parsed, std::uint16_t vlan,
              std::vector<std::byte>& out) {
    auto tci = static_cast<std::uint16_t>((parsed.tagged ? parsed.tci & kPriorityMask : 0) | vlan);
    if (parsed.tagged) {
        replace_tci(frame, tci, out);
    } else {
        insert_tag(frame, tci, out);
    }
}

std::string format_mac(Mac mac) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (mac >> 40) & 0xff,
                       (mac >> 32) & 0xff, (mac >> 24) & 0xff, (mac >> 16) & 0xff,
                       (mac >> 8) & 0xff, mac & 0xff);
}

}  // namespace ipnfs::policies::ethernet
