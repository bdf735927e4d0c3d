// The VDE control protocol's request parser (netdev/vde_protocol.cpp), fed
// what any local user may write to an endpoint's ctl socket, in the pieces
// the engine thread reads it in.  check_prefix must refuse a prefix as soon
// as its bytes show it is not a request and never accept a longer input it
// refused shorter; parse_request must accept only what VDE's clients send
// (magic, version 3, a new-port type, an AF_UNIX address that is not empty),
// give a printable, bounded description and the port asked for, and fail
// with a documented errno and a reason otherwise.
//
// Input: byte 0 is the size of the first read (the rest arrives whole), the
// rest is the bytes of the connection.
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "fuzz_support.hpp"
#include "netdev/vde_protocol.hpp"

namespace ipnfs::fuzz {
namespace {

namespace vde = netdev::vde;

constexpr std::initializer_list<int> kPrefixErrors = {EMSGSIZE, EPROTO, EPROTONOSUPPORT};
constexpr std::initializer_list<int> kRequestErrors = {EMSGSIZE, EPROTO, EPROTONOSUPPORT,
                                                       EAFNOSUPPORT, EDESTADDRREQ};

bool printable(const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::uint32_t word(std::span<const std::byte> bytes, std::size_t index) {
    std::uint32_t w = 0;
    std::memcpy(&w, bytes.data() + index * 4, 4);
    return w;
}

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs::fuzz;
    if (size < 1) return 0;
    std::span<const std::byte> all(reinterpret_cast<const std::byte*>(data + 1), size - 1);
    const std::size_t first = std::min<std::size_t>(data[0], all.size());

    // As the engine thread reads it: the first piece, then everything.
    ipnfs::bus::Status early = vde::check_prefix(all.first(first));
    ipnfs::bus::Status whole = vde::check_prefix(all);
    if (!early.ok()) {
        require_error(early, kPrefixErrors, "check_prefix of the first read");
        require(!whole.ok(), "check_prefix accepted more after refusing less");
    }
    if (!whole.ok()) require_error(whole, kPrefixErrors, "check_prefix");

    vde::Request r;
    ipnfs::bus::Status s = vde::parse_request(all, r);
    if (!s.ok()) {
        require_error(s, kRequestErrors, "parse_request");
        return 0;
    }
    require(whole.ok(), "parse_request accepted what check_prefix refused");
    require(all.size() >= vde::kFixedSize && all.size() <= vde::kMaxRequest,
            "parse_request accepted a request of the wrong size");
    require(word(all, 0) == vde::kMagic && word(all, 1) == vde::kVersion,
            "parse_request accepted a bad magic or version");
    const std::uint32_t type = word(all, 2);
    require((type & 0xff) == vde::kNewPort || (type & 0xff) == vde::kNewPort0,
            "parse_request accepted an unknown type");
    if ((type & 0xff) == vde::kNewPort0) {
        require(r.port == 0U, "REQ_NEW_PORT0 did not ask for port 0");
    } else {
        require(r.port.has_value() == ((type >> 8) != 0), "the port asked for is lost");
        if (r.port) require(*r.port == (type >> 8), "the port asked for is wrong");
    }
    require(r.client.sun_family == AF_UNIX, "a client address that is not AF_UNIX");
    require(r.description.size() <= vde::kMaxDescription, "a description over 128 bytes");
    require(printable(r.description), "a description that could break a log line", r.description);
    // What the log shows of the client's address is one line.
    std::string shown = vde::address_text(r.client);
    require(shown.find('\n') == std::string::npos, "an address that breaks a log line", shown);
    return 0;
}
