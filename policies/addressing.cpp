#include "policies/addressing.hpp"

#include <fmt/format.h>

#include "include/ipnfs.h"

namespace ipnfs::policies {

bool takes_address(std::string_view policy, std::uint32_t addressing, bus::Route& out) {
    auto to = static_cast<std::uint32_t>(out.address.to);
    if (to == IPNFS_TO_DEFAULT || (to < 32 && (addressing & (1U << to)) != 0)) return true;
    out.refused = bus::Status::error(
        std::errc::operation_not_supported,
        fmt::format("the {} policy takes no addressed messages (IPNFS_TO {})", policy, to));
    return false;
}

}  // namespace ipnfs::policies
