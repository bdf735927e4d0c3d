#include "daemon/log.hpp"

#include <memory>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

namespace ipnfs::daemon {

bool setup_logging(const std::string& level, const std::string& file, bool foreground,
                   std::string& error) {
    auto lvl = spdlog::level::from_str(level);
    // from_str answers "off" for anything it does not know.
    if (lvl == spdlog::level::off && level != "off") {
        error = "log_level must be one of trace, debug, info, warn, error, critical, off";
        return false;
    }
    std::shared_ptr<spdlog::logger> logger;
    try {
        if (!file.empty()) {
            logger = spdlog::basic_logger_mt("ipnfs", file);
        } else if (foreground) {
            logger = spdlog::stderr_color_mt("ipnfs");
        } else {
            logger = spdlog::syslog_logger_mt("ipnfs", "ipnfs", LOG_PID, LOG_DAEMON);
        }
    } catch (const spdlog::spdlog_ex& e) {
        error = e.what();
        return false;
    }
    logger->set_level(lvl);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    return true;
}

}  // namespace ipnfs::daemon
