// The files of a network directory, one row each: what a name is, which
// inode slot it has, what mode it takes from the directory and what opening
// it does.  lookup, readdir, getattr, open, read and write all read these
// rows, so a new file is one row here (and what its reads and writes do).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "bus/message.hpp"

namespace ipnfs::fs {

// What an inode names.
enum class Kind : std::uint8_t {
    root,
    network,
    ctl,
    stats,
    clone,
    events,
    capture,
    metrics,       // a network's series in the exposition format
    root_metrics,  // ipnfs.prom at the mount root: every network the opener may see
    port
};

// What open() makes of a file, and so what its reads and writes are.
enum class Opens : std::uint8_t {
    text,      // reads a snapshot of rendered text (ctl's writes are commands)
    port,      // connects to its port
    any_port,  // connects to the lowest free port
    observer,  // an events reader: an observer of the network, given events only
    capture,   // a capture reader, read as a pcap stream
};

struct FileRow {
    std::string_view name;  // the ports' row: the prefix of portN
    std::uint32_t slot;     // the ports' row: port 0's
    Kind kind;
    // Takes only the directory's r bits (else its r and w bits), and opens
    // only for reading, even for root.
    bool read_only;
    Opens opens;

    [[nodiscard]] bool connects() const { return opens != Opens::text; }
    // Its writes are messages: it reports the largest one as its size (see
    // Tree::stat).
    [[nodiscard]] bool carries_messages() const {
        return opens == Opens::port || opens == Opens::any_port;
    }
};

// Slot 0 is the directory itself; 7..15 are kept for files to come.
inline constexpr std::uint32_t kDirSlot = 0;

// The fixed files, in readdir's order.
inline constexpr std::array kFixedFiles{
    FileRow{.name = "ctl", .slot = 1, .kind = Kind::ctl, .read_only = false, .opens = Opens::text},
    FileRow{
        .name = "stats", .slot = 2, .kind = Kind::stats, .read_only = true, .opens = Opens::text},
    FileRow{.name = "clone",
            .slot = 3,
            .kind = Kind::clone,
            .read_only = false,
            .opens = Opens::any_port},
    FileRow{.name = "events",
            .slot = 4,
            .kind = Kind::events,
            .read_only = true,
            .opens = Opens::observer},
    FileRow{.name = "capture",
            .slot = 5,
            .kind = Kind::capture,
            .read_only = true,
            .opens = Opens::capture},
    FileRow{.name = "metrics",
            .slot = 6,
            .kind = Kind::metrics,
            .read_only = true,
            .opens = Opens::text},
};

// portN, at slot kPortFiles.slot + N, one per port of the network.
inline constexpr FileRow kPortFiles{
    .name = "port", .slot = 16, .kind = Kind::port, .read_only = false, .opens = Opens::port};

// ipnfs.prom, the one file of the mount root (node_exporter's textfile
// collector reads the *.prom files of a directory).  Its inode is
// kRootMetricsIno (fs/tree.hpp); `slot` is unused.
inline constexpr FileRow kRootMetricsFile{.name = "ipnfs.prom",
                                          .slot = 0,
                                          .kind = Kind::root_metrics,
                                          .read_only = true,
                                          .opens = Opens::text};

// The row of the file in `slot`: a fixed file's or the ports'; null for the
// directory and the slots kept.  Whether the port exists is the caller's.
[[nodiscard]] const FileRow* file_row(std::uint32_t slot);
// The fixed file called `name`, or null.
[[nodiscard]] const FileRow* fixed_file(std::string_view name);
// "port17" -> 17; rejects leading zeros so every port has exactly one name.
[[nodiscard]] std::optional<bus::PortId> parse_port_name(std::string_view name);

// A fixed file's slot, for code that names one (ctl's access rights).
[[nodiscard]] constexpr std::uint32_t fixed_slot(Kind kind) {
    for (const FileRow& row : kFixedFiles) {
        if (row.kind == kind) return row.slot;
    }
    return kDirSlot;
}

}  // namespace ipnfs::fs
