// The policies built into ipnfs, by the names ctl and mount options use.
#pragma once

#include "bus/policy.hpp"

namespace ipnfs::policies {

class BuiltinCatalog final : public bus::PolicyCatalog {
  public:
    [[nodiscard]] bus::Status make(std::string_view name,
                                   std::unique_ptr<bus::Policy>& out) const override;
    [[nodiscard]] std::string names() const override;
};

}  // namespace ipnfs::policies
