#include "policies/catalog.hpp"

#include "policies/hub.hpp"

namespace ipnfs::policies {

std::unique_ptr<bus::Policy> BuiltinCatalog::make(std::string_view name) const {
    if (name == "hub") return std::make_unique<Hub>();
    return nullptr;
}

std::string BuiltinCatalog::names() const {
    return "hub";
}

}  // namespace ipnfs::policies
