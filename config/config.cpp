#include "config/config.hpp"

#include <grp.h>
#include <pwd.h>

#include <charconv>
#include <iterator>
#include <span>

#include <fmt/format.h>

#include "bus/commands.hpp"
#include "fs/network_name.hpp"

namespace ipnfs::config {

namespace {

constexpr std::uint32_t kMaxMode = 07777;

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

std::optional<std::uint32_t> parse_mode(std::string_view word) {
    std::uint32_t value = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value, 8);
    if (ec != std::errc{} || end != word.data() + word.size() || value > kMaxMode) {
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint32_t> parse_id(std::string_view word) {
    std::uint32_t value = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (ec != std::errc{} || end != word.data() + word.size()) return std::nullopt;
    return value;
}

// A user by name, else by number, as chown(1) takes it.
std::optional<uid_t> find_user(std::string_view word) {
    std::string name(word);
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
        return found->pw_uid;
    }
    return parse_id(word);
}

std::optional<gid_t> find_group(std::string_view word) {
    std::string name(word);
    group entry{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
        return found->gr_gid;
    }
    return parse_id(word);
}

std::string user_name(uid_t uid) {
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwuid_r(uid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
        return found->pw_name;
    }
    return std::to_string(uid);
}

std::string group_name(gid_t gid) {
    group entry{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    if (getgrgid_r(gid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
        return found->gr_name;
    }
    return std::to_string(gid);
}

// The value of a mode, owner or group word, or the reason it is none.
bus::Status attr_value(FileAttr attr, std::string_view word, std::uint32_t& out) {
    std::optional<std::uint32_t> value;
    switch (attr) {
        case FileAttr::mode:
            value = parse_mode(word);
            if (!value) {
                return bus::Status::error(
                    std::errc::invalid_argument,
                    fmt::format("mode must be octal permission bits (0-7777), not '{}'", word));
            }
            break;
        case FileAttr::owner:
            value = find_user(word);
            if (!value) {
                return bus::Status::error(std::errc::invalid_argument,
                                          fmt::format("no such user: {}", word));
            }
            break;
        case FileAttr::group:
            value = find_group(word);
            if (!value) {
                return bus::Status::error(std::errc::invalid_argument,
                                          fmt::format("no such group: {}", word));
            }
            break;
    }
    out = *value;
    return bus::Status::success();
}

std::optional<FileAttr> attr_of(std::string_view verb) {
    if (verb == "mode") return FileAttr::mode;
    if (verb == "owner") return FileAttr::owner;
    if (verb == "group") return FileAttr::group;
    return std::nullopt;
}

std::string_view word_of(FileAttr attr) {
    switch (attr) {
        case FileAttr::mode:
            return "mode";
        case FileAttr::owner:
            return "owner";
        case FileAttr::group:
            return "group";
    }
    return "";
}

std::string value_text(FileAttr attr, std::uint32_t value) {
    switch (attr) {
        case FileAttr::mode:
            return fmt::format("{:04o}", value);
        case FileAttr::owner:
            return user_name(value);
        case FileAttr::group:
            return group_name(value);
    }
    return "";
}

// Parses one line of a section that is not a ctl command: `network`, and
// `mode`/`owner`/`group` with one word (the directory) or two (a file).
class Parser {
  public:
    explicit Parser(Config& out) : out_(out) {}

    bus::Status line(std::size_t number, std::string_view text) {
        auto words = bus::split_words(text);
        if (words.empty()) return bus::Status::success();
        if (words[0] == "network") return network(number, bus::split_words(text, false));
        if (out_.networks.empty()) {
            return bus::Status::error(
                std::errc::invalid_argument,
                fmt::format("'{}' before any 'network NAME' line", fmt::join(words, " ")));
        }
        Network& net = out_.networks.back();
        if (auto attr = attr_of(words[0])) {
            if (words.size() == 2) return dir_attr(net, *attr, words[1]);
            if (words.size() == 3) return file_attr(net, number, *attr, words[1], words[2]);
            return bus::Status::error(
                std::errc::invalid_argument,
                fmt::format("{0} takes VALUE (the directory) or FILE VALUE", words[0]));
        }
        net.commands.push_back({number, std::string(trim(text))});
        return bus::Status::success();
    }

  private:
    static std::string_view trim(std::string_view text) {
        while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
        while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
        return text;
    }

    bus::Status network(std::size_t number, std::span<const std::string_view> words) {
        if (words.size() != 2) {
            return bus::Status::error(std::errc::invalid_argument,
                                      "network takes one word: the network's name");
        }
        if (bus::Status s = fs::check_network_name(words[1]); !s.ok()) return s;
        for (const Network& other : out_.networks) {
            if (other.name == words[1]) {
                return bus::Status::error(
                    std::errc::file_exists,
                    fmt::format("network {} exists (from line {})", other.name, other.line));
            }
        }
        Network net;
        net.line = number;
        net.name = std::string(words[1]);
        out_.networks.push_back(std::move(net));
        return bus::Status::success();
    }

    static bus::Status dir_attr(Network& net, FileAttr attr, std::string_view word) {
        std::uint32_t value = 0;
        if (bus::Status s = attr_value(attr, word, value); !s.ok()) return s;
        switch (attr) {
            case FileAttr::mode:
                return set_once(net.mode, value, attr, net.name);
            case FileAttr::owner:
                return set_once(net.owner, value, attr, net.name);
            case FileAttr::group:
                return set_once(net.group, value, attr, net.name);
        }
        return bus::Status::success();
    }

    template <typename T>
    static bus::Status set_once(std::optional<T>& field, std::uint32_t value, FileAttr attr,
                                std::string_view name) {
        if (field) {
            return bus::Status::error(
                std::errc::invalid_argument,
                fmt::format("{} of network {} is given twice", word_of(attr), name));
        }
        field = static_cast<T>(value);
        return bus::Status::success();
    }

    static bus::Status file_attr(Network& net, std::size_t number, FileAttr attr,
                                 std::string_view file, std::string_view word) {
        std::uint32_t value = 0;
        if (bus::Status s = attr_value(attr, word, value); !s.ok()) return s;
        net.files.push_back({number, std::string(file), attr, value});
        return bus::Status::success();
    }

    Config& out_;
};

}  // namespace

bool parse(std::string_view text, Config& out, Error& error) {
    out = {};
    Parser parser(out);
    std::size_t number = 0;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        ++number;
        if (bus::Status s = parser.line(number, text.substr(start, end - start)); !s.ok()) {
            error = {number, std::move(s.reason)};
            return false;
        }
        start = end + 1;
    }
    return true;
}

bus::Status render(const Config& config, std::string& out) {
    out.clear();
    auto add = std::back_inserter(out);
    for (const Network& net : config.networks) {
        if (net.name.find_first_of(" \t\r\n") != std::string::npos) {
            return bus::Status::error(
                std::errc::invalid_argument,
                fmt::format("network '{}': a name with blanks cannot be written here", net.name));
        }
        if (&net != &config.networks.front()) out += '\n';
        fmt::format_to(add, "network {}\n", net.name);
        if (net.mode) fmt::format_to(add, "mode {}\n", value_text(FileAttr::mode, *net.mode));
        if (net.owner) fmt::format_to(add, "owner {}\n", value_text(FileAttr::owner, *net.owner));
        if (net.group) fmt::format_to(add, "group {}\n", value_text(FileAttr::group, *net.group));
        for (const Command& cmd : net.commands) fmt::format_to(add, "{}\n", cmd.text);
        for (const FileSetting& f : net.files) {
            fmt::format_to(add, "{} {} {}\n", word_of(f.attr), f.file, value_text(f.attr, f.value));
        }
    }
    return bus::Status::success();
}

bool is_cable(const Command& command) {
    auto words = bus::split_words(command.text);
    return !words.empty() && words[0] == "cable";
}

}  // namespace ipnfs::config
