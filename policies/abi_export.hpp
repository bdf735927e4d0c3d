// The C table (include/ipnfs_policy.h) of a policy written in C++ against
// bus::Policy.  The built-in policies reach the daemon this way, through the
// same table and the same checks as plugins, which keeps that interface
// complete: whatever a built-in needs, a plugin can do.
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
                   void* (*create)());
// Whether `self` is an instance of such a table whose policy routes Ethernet
// frames (bus::Policy::ethernet()); false for any other table (a plugin's).
bool ethernet(const ipnfs_policy& table, void* self);

}  // namespace abi_export

// The table for policy P (default-constructible), made once.
template <class P>
const ipnfs_policy& export_policy(const char* name, const char* summary,
                                  std::uint32_t addressing = 0) {
    static const ipnfs_policy table = abi_export::table(name, summary, addressing, [] {
        return static_cast<void*>(abi_export::adopt(std::make_unique<P>()));
    });
    return table;
}

}  // namespace ipnfs::policies
