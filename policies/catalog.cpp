#include "policies/catalog.hpp"

#include "policies/hub.hpp"
#include "policies/switch.hpp"

namespace ipnfs::policies {

std::unique_ptr<bus::Policy> BuiltinCatalog::make(std::string_view name) const {
    if (name == "hub") return std::make_unique<Hub>();
    if (name == "switch") return std::make_unique<Switch>();
    return nullptr;
}

std::string BuiltinCatalog::names() const {
    return "hub, switch";
}

}  // namespace ipnfs::policies
