#include "bus/commands.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace ipnfs::bus {

std::vector<std::string_view> split_words(std::string_view line, bool comments) {
    std::vector<std::string_view> words;
    constexpr std::string_view kSpace = " \t\r";
    std::size_t pos = 0;
    while ((pos = line.find_first_not_of(kSpace, pos)) != std::string_view::npos) {
        std::size_t end = line.find_first_of(kSpace, pos);
        if (end == std::string_view::npos) end = line.size();
        if (comments && line[pos] == '#') break;
        words.push_back(line.substr(pos, end - pos));
        pos = end;
    }
    return words;
}

const Command* find_command(std::span<const CommandTable* const> tables, std::string_view line) {
    auto words = split_words(line);
    if (words.empty()) return nullptr;
    for (const CommandTable* table : tables) {
        for (const Command& cmd : *table) {
            if (cmd.verb == words[0]) return &cmd;
        }
    }
    return nullptr;
}

Status dispatch(std::span<const CommandTable* const> tables, std::string_view line,
                const Caller& caller) {
    auto words = split_words(line);
    if (words.empty()) return Status::success();
    const Command* cmd = find_command(tables, line);
    if (cmd == nullptr) {
        return Status::error(std::errc::invalid_argument,
                             fmt::format("unknown command '{}' (read ctl for the list)", words[0]));
    }
    std::size_t given = words.size() - 1;
    if (given < cmd->nargs || given > cmd->nargs + cmd->optional) {
        return Status::error(std::errc::invalid_argument,
                             fmt::format("usage: {} {}", cmd->verb, cmd->args));
    }
    if (cmd->net_admin && !caller.net_admin) {
        return Status::error(std::errc::operation_not_permitted,
                             fmt::format("{} needs CAP_NET_ADMIN", cmd->verb));
    }
    Words args = Words(words).subspan(1);
    return cmd->run_as ? cmd->run_as(args, caller) : cmd->run(args);
}

bool Caller::may(mode_t mode, uid_t owner, gid_t group, int want) const {
    if (dac_override) return true;
    mode_t bits = mode & 07;
    if (uid == owner) {
        bits = (mode >> 6) & 07;
    } else if (gid == group || std::find(groups.begin(), groups.end(), group) != groups.end()) {
        bits = (mode >> 3) & 07;
    }
    return (static_cast<int>(bits) & want) == want;
}

void append_help(const CommandTable& table, std::string& out) {
    for (const Command& cmd : table) {
        out += fmt::format("#   {:<28} {}\n", fmt::format("{} {}", cmd.verb, cmd.args), cmd.help);
    }
}

Status parse_uint(std::string_view word, std::uint64_t min, std::uint64_t max,
                  std::string_view what, std::uint64_t& out) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (ec != std::errc{} || end != word.data() + word.size() || value < min || value > max) {
        return Status::error(
            std::errc::invalid_argument,
            fmt::format("{} must be a whole number from {} to {}, not '{}'", what, min, max, word));
    }
    out = value;
    return Status::success();
}

Status parse_on_off(std::string_view word, std::string_view what, bool& out) {
    if (word == "on") {
        out = true;
    } else if (word == "off") {
        out = false;
    } else {
        return Status::error(std::errc::invalid_argument,
                             fmt::format("{} must be 'on' or 'off', not '{}'", what, word));
    }
    return Status::success();
}

}  // namespace ipnfs::bus
