// Which address kinds a policy takes (include/ipnfs.h enum ipnfs_to), as the
// C table's `addressing` bits say: a built-in and a plugin refuse a message
// addressed some other way with the same error.
#pragma once

#include <cstdint>
#include <string_view>

#include "bus/policy.hpp"

namespace ipnfs::policies {

// Whether a policy that takes the kinds in `addressing` (1u << IPNFS_TO_*
// for each besides the default) takes out.address; if not, refuses the
// message in `out` (EOPNOTSUPP, naming the policy).
bool takes_address(std::string_view policy, std::uint32_t addressing, bus::Route& out);

}  // namespace ipnfs::policies
