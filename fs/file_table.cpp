#include "fs/file_table.hpp"

#include <algorithm>
#include <charconv>

namespace ipnfs::fs {

namespace {

constexpr bool rows_fit() {
    std::uint32_t last = kDirSlot;
    for (const FileRow& row : kFixedFiles) {
        if (row.slot <= last || row.slot >= kPortFiles.slot) return false;
        last = row.slot;
    }
    return true;
}
static_assert(rows_fit(),
              "fixed files: slots rise in readdir's order, between the directory's "
              "and the first port's");

}  // namespace

const FileRow* file_row(std::uint32_t slot) {
    if (slot >= kPortFiles.slot) return &kPortFiles;
    const auto* it = std::ranges::find(kFixedFiles, slot, &FileRow::slot);
    return it == kFixedFiles.end() ? nullptr : &*it;
}

const FileRow* fixed_file(std::string_view name) {
    const auto* it = std::ranges::find(kFixedFiles, name, &FileRow::name);
    return it == kFixedFiles.end() ? nullptr : &*it;
}

std::optional<bus::PortId> parse_port_name(std::string_view name) {
    constexpr std::string_view kPrefix = kPortFiles.name;
    if (!name.starts_with(kPrefix) || name.size() == kPrefix.size()) return std::nullopt;
    std::string_view digits = name.substr(kPrefix.size());
    if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
    bus::PortId port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return port;
}

}  // namespace ipnfs::fs
