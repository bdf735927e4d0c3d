// Errors the bus reports: a standard error code for the caller to hand back
// (the fs layer turns it into an errno) and a sentence for the user.
#pragma once

#include <string>
#include <system_error>
#include <utility>

namespace ipnfs::bus {

struct Status {
    std::errc code{};
    std::string reason;

    [[nodiscard]] bool ok() const { return code == std::errc{}; }
    static Status success() { return {}; }
    static Status error(std::errc code, std::string reason) { return {code, std::move(reason)}; }
};

}  // namespace ipnfs::bus
