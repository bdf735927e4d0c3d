// The C table (include/ipnfs_policy.h) of a policy written in C++ against
// bus::Policy, for a plugin written in C++.  The daemon runs its built-ins
// directly; the tests build them as plugins this way
// (tests/plugins/builtin_plugin.cpp) and check that both answer alike
// (tests/unit/policy_conformance_test.cpp), which keeps the table complete:
// whatever a built-in does, a plugin can do.
#pragma once

#include <cstdint>
#include <memory>

#include "bus/policy.hpp"
#include "include/ipnfs_policy.h"

namespace ipnfs::policies {

namespace abi_export {

// One instance behind the table: the policy and the C views of its verbs.
struct Instance;
Instance* adopt(std::unique_ptr<bus::Policy> policy);
// The table's functions, for any Instance.
ipnfs_policy table(const char* name, const char* summary, std::uint32_t addressing,
                   std::uint32_t link_type, void* (*create)());

}  // namespace abi_export

// The table for policy P (default-constructible), made once.  `addressing`
// is what P's route() takes (the table's field); the link type is P's
// ethernet().
template <class P>
const ipnfs_policy& export_policy(const char* name, const char* summary,
                                  std::uint32_t addressing = 0) {
    static const ipnfs_policy table = abi_export::table(
        name, summary, addressing, P().ethernet() ? IPNFS_LINK_ETHERNET : IPNFS_LINK_OPAQUE,
        [] { return static_cast<void*>(abi_export::adopt(std::make_unique<P>())); });
    return table;
}

}  // namespace ipnfs::policies
