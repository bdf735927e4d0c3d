// The declarative networks file (-o config=FILE, config/config.hpp): any bytes
// either parse, or fail on a line of the input with a reason; whatever
// parses and can be written renders to text that parses back to the same
// networks, and rendering that again changes nothing (what `ipnfs --dump`
// writes, a mount reads back).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "fuzz_support.hpp"

namespace {

using ipnfs::config::Config;
using ipnfs::config::Error;
using ipnfs::fuzz::require;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    Config config;
    Error error;
    if (!ipnfs::config::parse(text, config, error)) {
        std::size_t lines =
            static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
        require(error.line >= 1 && error.line <= lines, "an error names a line of the input",
                std::to_string(error.line));
        require(!error.reason.empty(), "an error says why");
        return 0;
    }
    std::string rendered;
    ipnfs::bus::Status s = ipnfs::config::render(config, rendered);
    if (!s.ok()) {
        require(s.code == std::errc::invalid_argument && !s.reason.empty(),
                "a config that cannot be written is EINVAL with a reason", s.reason);
        return 0;
    }
    Config again;
    require(ipnfs::config::parse(rendered, again, error), "what render wrote parses",
            error.reason + "\n" + rendered);
    require(again == config, "render then parse gives the same networks", rendered);
    std::string twice;
    require(ipnfs::config::render(again, twice).ok() && twice == rendered,
            "rendering is a fixed point", rendered + "\n---\n" + twice);
    return 0;
}
