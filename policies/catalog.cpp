#include "policies/catalog.hpp"

#include <fmt/format.h>

#include "policies/hub.hpp"
#include "policies/switch.hpp"

namespace ipnfs::policies {

bus::Status BuiltinCatalog::make(std::string_view name, std::unique_ptr<bus::Policy>& out) const {
    if (name == "hub") {
        out = std::make_unique<Hub>();
    } else if (name == "switch") {
        out = std::make_unique<Switch>();
    } else {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("unknown policy '{}' (known: {})", name, names()));
    }
    return bus::Status::success();
}

std::string BuiltinCatalog::names() const {
    return "hub, switch";
}

}  // namespace ipnfs::policies
