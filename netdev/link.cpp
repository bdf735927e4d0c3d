#include "netdev/link.hpp"

#include <net/if.h>
#include <unistd.h>

#include <fmt/format.h>

namespace ipnfs::netdev {

Link::~Link() {
    ::close(fd_);
}

bus::Status Link::set_rcvbuf(std::uint64_t /*bytes*/) {
    return bus::Status::error(std::errc::invalid_argument,
                              fmt::format("{} {} has no receive buffer to set", kind(), name_));
}

bus::Status check_name(std::string_view name) {
    bool ok = !name.empty() && name.size() < IFNAMSIZ && name != "." && name != ".." &&
              name.find_first_of("/: \t") == std::string_view::npos;
    if (ok) return bus::Status::success();
    return bus::Status::error(
        std::errc::invalid_argument,
        fmt::format("'{}' is not an interface name (1-{} characters, no '/', ':' or blanks)", name,
                    IFNAMSIZ - 1));
}

}  // namespace ipnfs::netdev
