// Log lines with the same leading fields everywhere, in logfmt, so that
// `journalctl -t ipnfs -g 'network=lan'` or grep picks out one network, one
// port or one kind of event:
//   network=lan port=0 event=tap-attach: tap tap0 attached
// Fields that do not apply are left out; a value with a space, a quote or an
// equals sign is quoted.  `event` is a fixed word per kind of event
// (docs/usage.md, "Logging", lists them).
#pragma once

#include <optional>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/message.hpp"

namespace ipnfs::bus::log {

// {"mount"}, {"lan", "network-create"}, {"lan", 3, "port-open"}.
struct Fields {
    // NOLINTBEGIN(google-explicit-constructor): written as braces at each call
    Fields(std::string_view ev) : event(ev) {}
    Fields(std::string_view net, std::string_view ev) : network(net), event(ev) {}
    Fields(std::string_view net, PortId p, std::string_view ev)
        : network(net), port(p), event(ev) {}
    // NOLINTEND(google-explicit-constructor)

    std::string_view network;  // empty: not about one network
    std::optional<PortId> port;
    std::string_view event;
};

// Appends ` key=value` (quoted when it must be) to out.
void append_field(fmt::memory_buffer& out, std::string_view key, std::string_view value);
// The fields, then ": ", as every line starts.
void append_fields(fmt::memory_buffer& out, const Fields& fields);

// Never throws, as spdlog's own calls do not: a line that cannot be made
// (out of memory) is lost, not the request or thread that logged it.
template <typename... Args>
void write(spdlog::level::level_enum level, const Fields& fields, fmt::format_string<Args...> text,
           Args&&... args) noexcept {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    try {
        fmt::memory_buffer line;
        append_fields(line, fields);
        fmt::format_to(std::back_inserter(line), text, std::forward<Args>(args)...);
        logger->log(level, std::string_view(line.data(), line.size()));
    } catch (...) {  // NOLINT(bugprone-empty-catch): nowhere left to report it
    }
}

template <typename... Args>
void debug(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::debug, f, text, std::forward<Args>(args)...);
}
template <typename... Args>
void info(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::info, f, text, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::warn, f, text, std::forward<Args>(args)...);
}
template <typename... Args>
void error(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::err, f, text, std::forward<Args>(args)...);
}

}  // namespace ipnfs::bus::log
