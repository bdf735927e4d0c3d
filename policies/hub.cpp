#include "policies/hub.hpp"

#include <fmt/format.h>

#include "policies/addressing.hpp"

namespace ipnfs::policies {

Hub::Hub() {
    commands_ = {
        {.verb = "loopback",
         .args = "PORT on|off",
         .nargs = 2,
         .help = "the port also receives the messages it sends",
         .run =
             [this](bus::Words w) {
                 std::uint64_t port = 0;
                 if (auto s = bus::parse_uint(w[0], 0, loopback_.size() - 1, "port", port);
                     !s.ok()) {
                     return s;
                 }
                 bool on = false;
                 if (auto s = bus::parse_on_off(w[1], "loopback", on); !s.ok()) return s;
                 loopback_[port] = on;
                 return bus::Status::success();
             },
         .holder = bus::Holder::reader},
    };
}

void Hub::on_ports(bus::PortId count) {
    slot_.resize(count, kAbsent);
    loopback_.resize(count, false);
}

void Hub::on_attach(bus::PortId port) {
    slot_[port] = members_.size();
    members_.push_back(port);
}

void Hub::on_detach(bus::PortId port) {
    std::size_t at = slot_[port];
    bus::PortId last = members_.back();
    members_[at] = last;
    slot_[last] = at;
    members_.pop_back();
    slot_[port] = kAbsent;
}

void Hub::route(bus::PortId from, std::span<const std::byte> /*payload*/, bus::Route& out) {
    if (takes_address(name(), 0, out)) fan_out(from, out.to);
}

void Hub::place(bus::PortId /*from*/, std::span<const std::byte> /*payload*/, bus::Route& out) {
    takes_address(name(), 0, out);
}

bool Hub::reach(bus::PortId from, bool /*framed*/, bus::Reach& out) const {
    fan_out(from, out.ports);
    return true;
}

void Hub::fan_out(bus::PortId from, std::vector<bus::PortId>& out) const {
    bool self = from < loopback_.size() && loopback_[from];
    for (bus::PortId port : members_) {
        if (port != from || self) out.push_back(port);
    }
}

void Hub::describe(std::string& out) const {
    for (bus::PortId port = 0; port < loopback_.size(); ++port) {
        if (loopback_[port]) out += fmt::format("loopback {} on\n", port);
    }
}

}  // namespace ipnfs::policies
