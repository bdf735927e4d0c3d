// spdlog set-up: where the daemon's log goes (-o log=, -o log_file=).
#pragma once

#include <string>

namespace ipnfs::daemon {

// -o log=WHERE.  automatic: log_file= if given, else the journal if stderr
// is systemd's journal stream, else stderr in the foreground and syslog once
// daemonized.
enum class LogTarget { automatic, journal, syslog, stderr_stream };

// "journal" -> LogTarget::journal; false if the word is not one of them.
bool parse_log_target(const std::string& word, LogTarget& out);

// Returns false with a message if the level is unknown, the file unusable,
// or the target asked for cannot be had (no journald to take the lines).
bool setup_logging(const std::string& level, LogTarget target, const std::string& file,
                   bool foreground, std::string& error);

}  // namespace ipnfs::daemon
