// spdlog set-up: stderr in the foreground, syslog (or a file) once daemonized.
#pragma once

#include <string>

namespace ipnfs::daemon {

// Returns false with a message if the level is unknown or the file unusable.
bool setup_logging(const std::string& level, const std::string& file, bool foreground,
                   std::string& error);

}  // namespace ipnfs::daemon
