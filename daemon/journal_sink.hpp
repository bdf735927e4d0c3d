// The daemon's log through journald's native protocol (-o log=journal): each
// line keeps its text as MESSAGE, and its logfmt fields become journal fields
// of their own (IPNFS_NETWORK, IPNFS_PORT, IPNFS_EVENT), so that
// `journalctl IPNFS_NETWORK=lan` picks out one network exactly.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/sinks/sink.h>

namespace ipnfs::daemon {

// "network" -> "IPNFS_NETWORK": a valid journal field name for any key
// (A-Z, 0-9 and _, not starting with _, at most 64 bytes).
std::string journal_field_name(std::string_view key);

// Empty if journald's native socket takes datagrams, else why not.
std::string journal_problem();

// Whether stderr is the journal stream systemd connected (JOURNAL_STREAM).
bool stderr_is_journal();

// A sink for a synchronous logger: it reads the line's fields on the
// logging thread (bus::log::current_fields()).
std::shared_ptr<spdlog::sinks::sink> make_journal_sink();

}  // namespace ipnfs::daemon
