// The attached ports of each VLAN, so that flooding a frame walks only the
// ports that can take it, never the idle ones.
#pragma once

#include <cstddef>
#include <span>
#include <unordered_map>
#include <vector>

#include "bus/message.hpp"
#include "policies/ethernet.hpp"

namespace ipnfs::policies {

class VlanMembers {
  public:
    // Both are no-ops when the port already is / is not a member.
    void add(ethernet::Vid vlan, bus::PortId port);
    void remove(ethernet::Vid vlan, bus::PortId port);

    // In no particular order.
    [[nodiscard]] std::span<const bus::PortId> ports(ethernet::Vid vlan) const;

  private:
    struct Members {
        std::vector<bus::PortId> ports;
        std::unordered_map<bus::PortId, std::size_t> slot;  // port -> index in ports
    };
    std::unordered_map<ethernet::Vid, Members> vlans_;  // only VLANs with members
};

}  // namespace ipnfs::policies
