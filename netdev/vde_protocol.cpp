#include "netdev/vde_protocol.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include <fmt/format.h>

namespace ipnfs::netdev::vde {

namespace {

constexpr std::size_t kWord = sizeof(std::uint32_t);
constexpr std::size_t kAddressAt = 3 * kWord;

std::uint32_t word(std::span<const std::byte> bytes, std::size_t index) {
    std::uint32_t w = 0;
    std::memcpy(&w, bytes.data() + index * kWord, kWord);
    return w;
}

// Stats rows and log lines show it: nothing that could break a line.
std::string printable(std::span<const std::byte> bytes) {
    std::string out;
    for (std::byte b : bytes) {
        auto c = std::to_integer<unsigned char>(b);
        if (c == 0) break;
        out += (c < 0x20 || c >= 0x7f) ? '?' : static_cast<char>(c);
    }
    return out;
}

}  // namespace

bus::Status check_prefix(std::span<const std::byte> bytes) {
    if (bytes.size() > kMaxRequest) {
        return bus::Status::error(
            std::errc::message_size,
            fmt::format("VDE request of {} bytes or more, at most {}", bytes.size(), kMaxRequest));
    }
    if (bytes.size() >= kWord) {
        if (std::uint32_t magic = word(bytes, 0); magic != kMagic) {
            return bus::Status::error(
                std::errc::protocol_error,
                fmt::format("not a VDE request: magic {:#010x}, not {:#010x}", magic, kMagic));
        }
    }
    if (bytes.size() >= 2 * kWord) {
        if (std::uint32_t version = word(bytes, 1); version != kVersion) {
            return bus::Status::error(
                std::errc::protocol_not_supported,
                fmt::format("VDE request version {}: only version {} is served", version,
                            kVersion));
        }
    }
    if (bytes.size() >= 3 * kWord) {
        if (std::uint32_t type = word(bytes, 2) & 0xff; type != kNewPort && type != kNewPort0) {
            return bus::Status::error(
                std::errc::protocol_not_supported,
                fmt::format("VDE request type {}: only new-port requests (0, 1) are served", type));
        }
    }
    return bus::Status::success();
}

bus::Status parse_request(std::span<const std::byte> bytes, Request& out) {
    if (bus::Status s = check_prefix(bytes); !s.ok()) return s;
    if (bytes.size() < kFixedSize) {
        return bus::Status::error(
            std::errc::protocol_error,
            fmt::format("short VDE request: {} bytes, at least {}", bytes.size(), kFixedSize));
    }
    Request r;
    std::uint32_t type = word(bytes, 2);
    if ((type & 0xff) == kNewPort0) {
        r.port = 0;
    } else if ((type >> 8) != 0) {
        r.port = type >> 8;
    }
    std::memcpy(&r.client, bytes.data() + kAddressAt, sizeof r.client);
    if (r.client.sun_family != AF_UNIX) {
        return bus::Status::error(
            std::errc::address_family_not_supported,
            fmt::format("the client's address family is {}, not AF_UNIX", r.client.sun_family));
    }
    const auto* name = r.client.sun_path;
    if (std::all_of(name, name + sizeof r.client.sun_path, [](char c) { return c == 0; })) {
        return bus::Status::error(std::errc::destination_address_required,
                                  "the client's address is empty");
    }
    r.description = printable(bytes.subspan(kFixedSize));
    out = std::move(r);
    return bus::Status::success();
}

std::string address_text(const sockaddr_un& addr) {
    const char* name = addr.sun_path;
    constexpr std::size_t room = sizeof addr.sun_path;
    if (name[0] != 0) {
        // The client chose it: a newline in it would forge a log line.
        return printable({reinterpret_cast<const std::byte*>(name), strnlen(name, room)});
    }
    std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(name + 1), room - 1);
    return "@" + printable(rest);
}

std::array<std::byte, sizeof(sockaddr_un)> encode_reply(std::string_view path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    std::array<std::byte, sizeof(sockaddr_un)> out{};
    std::memcpy(out.data(), &addr, sizeof addr);
    return out;
}

}  // namespace ipnfs::netdev::vde
