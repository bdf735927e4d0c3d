// VDE's control protocol, as a switch serves it: the request_v3 a client
// sends on the control socket (PATH/ctl) to get a port, and the reply that
// names the switch's datagram socket for that port.  Bytes in, values out:
// no sockets here.
//
// A request is, packed, in host byte order:
//   uint32 magic (0xfeedface), uint32 version (3), uint32 type,
//   sockaddr_un (110 bytes: the client's datagram socket),
//   description (up to 128 bytes, not NUL-terminated on the wire).
// type's low byte is 0 (a new port) or 1 (port 0); for 0, type >> 8 is the
// port the client asks for, 0 meaning any.  The reply is a sockaddr_un.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bus/status.hpp"

namespace ipnfs::netdev::vde {

constexpr std::uint32_t kMagic = 0xfeedface;
constexpr std::uint32_t kVersion = 3;
constexpr std::uint32_t kNewPort = 0;   // REQ_NEW_CONTROL
constexpr std::uint32_t kNewPort0 = 1;  // REQ_NEW_PORT0
// magic, version, type, the client's address: what a request needs at least.
constexpr std::size_t kFixedSize = 3 * sizeof(std::uint32_t) + sizeof(sockaddr_un);
constexpr std::size_t kMaxDescription = 128;
constexpr std::size_t kMaxRequest = kFixedSize + kMaxDescription;

struct Request {
    std::optional<std::uint32_t> port;  // the port asked for; none: any
    sockaddr_un client{};               // where the client receives frames
    std::string description;            // printable: control bytes became '?'
};

// The start of a request, as far as it has arrived: an error as soon as the
// bytes show it is not one VDE's clients send (bad magic, a version other
// than 3, an unknown type, more than kMaxRequest bytes), else success (it may
// still be incomplete).
bus::Status check_prefix(std::span<const std::byte> bytes);

// A whole request (everything the client sent before waiting for the
// reply): check_prefix's errors, a short request, or a client address that
// is not an AF_UNIX name.
bus::Status parse_request(std::span<const std::byte> bytes, Request& out);

// The client's address for logs: the path, or "@name" for an abstract one,
// bytes outside printable ASCII shown as '?'.
std::string address_text(const sockaddr_un& addr);

// The reply: a sockaddr_un naming the switch's datagram socket `path`
// (which must fit in sun_path with its NUL), sent whole.
std::array<std::byte, sizeof(sockaddr_un)> encode_reply(std::string_view path);

}  // namespace ipnfs::netdev::vde
