#include "policies/vlan_members.hpp"

namespace ipnfs::policies {

void VlanMembers::add(ethernet::Vid vlan, bus::PortId port) {
    Members& m = vlans_[vlan];
    if (!m.slot.emplace(port, m.ports.size()).second) return;
    m.ports.push_back(port);
}

void VlanMembers::remove(ethernet::Vid vlan, bus::PortId port) {
    auto v = vlans_.find(vlan);
    if (v == vlans_.end()) return;
    Members& m = v->second;
    auto s = m.slot.find(port);
    if (s == m.slot.end()) return;
    std::size_t at = s->second;
    m.slot.erase(s);
    bus::PortId last = m.ports.back();
    m.ports.pop_back();
    if (last != port) {
        m.ports[at] = last;
        m.slot[last] = at;
    }
    if (m.ports.empty()) vlans_.erase(v);
}

std::span<const bus::PortId> VlanMembers::ports(ethernet::Vid vlan) const {
    auto v = vlans_.find(vlan);
    if (v == vlans_.end()) return {};
    return v->second.ports;
}

}  // namespace ipnfs::policies
