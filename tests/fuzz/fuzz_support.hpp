// What every fuzz target shares: a failed invariant ends the run (libFuzzer
// saves the input that broke it), and the policies to test, made by the
// daemon's own catalog.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "bus/status.hpp"
#include "policies/catalog.hpp"

namespace ipnfs::fuzz {

// abort(), not an exception: an invariant broken is a finding, and abort is
// what libFuzzer reports as a crash with its input saved.
[[noreturn]] inline void fail(std::string_view what, std::string_view detail = {}) {
    std::fprintf(stderr, "invariant broken: %.*s\n%.*s\n", static_cast<int>(what.size()),
                 what.data(), static_cast<int>(detail.size()), detail.data());
    std::abort();
}

inline void require(bool ok, std::string_view what, std::string_view detail = {}) {
    if (!ok) fail(what, detail);
}

// A failure carries an errno its caller documents and a sentence saying why.
inline void require_error(const bus::Status& s, std::initializer_list<int> documented,
                          std::string_view what) {
    require(!s.ok(), what, "expected an error");
    require(!s.reason.empty(), what, "an error without a reason");
    int code = static_cast<int>(s.code);
    for (int e : documented) {
        if (code == e) return;
    }
    fail(what, "undocumented errno " + std::to_string(code) + ": " + s.reason);
}

// The plugin directory of this build, if its topic.so is there.
inline std::string plugin_dir() {
    std::string dir = IPNFS_PLUGIN_DIR;
    std::error_code ec;
    return std::filesystem::exists(dir + "/topic.so", ec) ? dir : std::string();
}

// The daemon's catalog, with the example plugin when it was built.
inline const policies::Catalog& catalog() {
    static const policies::Catalog c(plugin_dir());
    return c;
}

// The policies a target picks from with one byte.
inline const std::vector<std::string>& policy_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n{"hub", "switch", "group"};
        if (!plugin_dir().empty()) n.emplace_back("topic");
        return n;
    }();
    return names;
}

}  // namespace ipnfs::fuzz
