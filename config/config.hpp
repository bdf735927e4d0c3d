// Declarative networks (-o config=FILE, ipnfs --dump): the file's format,
// parsed and rendered without the tree or FUSE.
//
//   network lan          a section: the network (directory) lan
//   mode 0770            the directory's permission bits, owner and group
//   owner root
//   group netdev
//   policy switch        any other line: a ctl command, as written to lan/ctl
//   cable wan 1 0        (cable lines run once every network exists)
//   mode port3 0600      one file's permission bits, owner or group
//
// docs/usage.md, "Declarative networks", is the user's description.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/status.hpp"

namespace ipnfs::config {

// A ctl command of a section and the line it came from.
struct Command {
    std::size_t line = 0;
    std::string text;

    // Compares what it does, not where it was written.
    bool operator==(const Command& other) const { return text == other.text; }
};

enum class FileAttr { mode, owner, group };

// `mode|owner|group FILE VALUE`: one file of the network (chmod/chown).
struct FileSetting {
    std::size_t line = 0;
    std::string file;  // "port3", "ctl", ...
    FileAttr attr = FileAttr::mode;
    std::uint32_t value = 0;  // permission bits, uid or gid

    bool operator==(const FileSetting& other) const {
        return file == other.file && attr == other.attr && value == other.value;
    }
};

struct Network {
    std::size_t line = 0;  // of its `network` line
    std::string name;
    std::optional<mode_t> mode;     // unset: 0755
    std::optional<uid_t> owner;     // unset: the daemon's user
    std::optional<gid_t> group;     // unset: the daemon's group
    std::vector<Command> commands;  // in file order, cables among them
    std::vector<FileSetting> files;

    bool operator==(const Network& other) const {
        return name == other.name && mode == other.mode && owner == other.owner &&
               group == other.group && commands == other.commands && files == other.files;
    }
};

struct Config {
    std::vector<Network> networks;
    bool operator==(const Config& other) const = default;
};

// What went wrong and on which line (from 1).
struct Error {
    std::size_t line = 0;
    std::string reason;
};

// Parses a whole file: blank lines and lines starting with '#' are skipped,
// users and groups are looked up by name (or taken as numbers).  False with
// the first error.
bool parse(std::string_view text, Config& out, Error& error);

// The text parse() reads back as the same Config; users and groups by name
// where they have one.  EINVAL if a name cannot be written (it has a blank).
bus::Status render(const Config& config, std::string& out);

// A `cable` line: runs in the second pass, once every network exists.
bool is_cable(const Command& command);

}  // namespace ipnfs::config
