#include "bus/log.hpp"

#include <algorithm>
#include <iterator>

namespace ipnfs::bus::log {

void append_field(fmt::memory_buffer& out, std::string_view key, std::string_view value) {
    auto to = std::back_inserter(out);
    if (out.size() > 0) out.push_back(' ');
    fmt::format_to(to, "{}=", key);
    bool quote = value.empty() || std::ranges::any_of(value, [](char c) {
                     return c == ' ' || c == '"' || c == '=' || c == '\\' ||
                            static_cast<unsigned char>(c) < 0x20;
                 });
    if (!quote) {
        out.append(value);
        return;
    }
    out.push_back('"');
    for (char c : value) {
        if (c == '"' || c == '\\') out.push_back('\\');
        if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(to, "\\x{:02x}", static_cast<unsigned char>(c));
            continue;
        }
        out.push_back(c);
    }
    out.push_back('"');
}

void append_fields(fmt::memory_buffer& out, const Fields& fields) {
    if (!fields.network.empty()) append_field(out, "network", fields.network);
    if (fields.port) append_field(out, "port", fmt::format("{}", *fields.port));
    if (!fields.event.empty()) append_field(out, "event", fields.event);
    if (out.size() > 0) out.append(std::string_view(": "));
}

}  // namespace ipnfs::bus::log
