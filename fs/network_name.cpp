#include "fs/network_name.hpp"

#include <climits>

#include <algorithm>

#include <fmt/format.h>

namespace ipnfs::fs {

bus::Status check_network_name(std::string_view name) {
    if (name.empty() || name == "." || name == "..") {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("'{}' cannot name a network", name));
    }
    if (name.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos) {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("a network name has no '/': '{}'", name));
    }
    if (name.size() > NAME_MAX) {
        return bus::Status::error(
            std::errc::filename_too_long,
            fmt::format("a network name has at most {} bytes, not {}", NAME_MAX, name.size()));
    }
    // ctl lines (`cable NAME`) and config files are words separated by
    // blanks, one per line: a name must be one word of printable bytes.
    auto unprintable = [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    };
    if (const auto* bad = std::ranges::find_if(name, unprintable); bad != name.end()) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("a network name has no blanks or control characters (byte {:#04x} at {})",
                        static_cast<unsigned char>(*bad), bad - name.begin()));
    }
    return bus::Status::success();
}

}  // namespace ipnfs::fs
