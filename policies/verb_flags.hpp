// A verb's IPNFS_VERB_* flags (include/ipnfs_policy.h) and what the holder of
// a port needs to run it (bus::Holder), both ways: a plugin's verbs come in
// through the C table (AbiPolicy), and a C++ policy built as a plugin
// (abi_export) hands its verbs out through it.
#pragma once

#include <cstdint>

#include "bus/commands.hpp"
#include "include/ipnfs_policy.h"

namespace ipnfs::policies {

inline std::uint32_t verb_flags(bus::Holder holder) {
    switch (holder) {
        case bus::Holder::none:
            return 0;
        case bus::Holder::reader:
            return IPNFS_VERB_PORT;
        case bus::Holder::writer:
            return IPNFS_VERB_PORT | IPNFS_VERB_PORT_SENDS;
        case bus::Holder::manager:
            return IPNFS_VERB_PORT | IPNFS_VERB_PORT_MANAGE;
    }
    return 0;
}

// Manage wins over sends: a verb that says both can lose data.
inline bus::Holder holder_of(std::uint32_t flags) {
    if ((flags & IPNFS_VERB_PORT) == 0) return bus::Holder::none;
    if ((flags & IPNFS_VERB_PORT_MANAGE) != 0) return bus::Holder::manager;
    if ((flags & IPNFS_VERB_PORT_SENDS) != 0) return bus::Holder::writer;
    return bus::Holder::reader;
}

}  // namespace ipnfs::policies
