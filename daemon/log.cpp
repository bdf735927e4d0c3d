#include "daemon/log.hpp"

#include <syslog.h>

#include <memory>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include "bus/log.hpp"
#include "daemon/journal_sink.hpp"

namespace ipnfs::daemon {

bool parse_log_target(const std::string& word, LogTarget& out) {
    if (word == "auto") {
        out = LogTarget::automatic;
    } else if (word == "journal") {
        out = LogTarget::journal;
    } else if (word == "syslog") {
        out = LogTarget::syslog;
    } else if (word == "stderr") {
        out = LogTarget::stderr_stream;
    } else {
        return false;
    }
    return true;
}

bool setup_logging(const std::string& level, LogTarget target, const std::string& file,
                   bool foreground, std::string& error) {
    auto lvl = spdlog::level::from_str(level);
    // from_str answers "off" for anything it does not know.
    if (lvl == spdlog::level::off && level != "off") {
        error = "log_level must be one of trace, debug, info, warn, error, critical, off";
        return false;
    }
    if (!file.empty() && target != LogTarget::automatic) {
        error = "log_file= and log= name two places to log: give one";
        return false;
    }
    if (target == LogTarget::stderr_stream && !foreground) {
        error = "log=stderr: the daemon leaves its stderr once mounted; add -f";
        return false;
    }
    // Under detection, a journal stream without a journald to take native
    // lines leaves the log where it would have gone, and says why.
    std::string fallback;
    if (target == LogTarget::journal) {
        if (std::string problem = journal_problem(); !problem.empty()) {
            error = "log=journal: " + problem;
            return false;
        }
    } else if (target == LogTarget::automatic && file.empty() && stderr_is_journal()) {
        fallback = journal_problem();
        if (fallback.empty()) target = LogTarget::journal;
    }
    if (target == LogTarget::automatic)
        target = foreground ? LogTarget::stderr_stream : LogTarget::syslog;
    std::shared_ptr<spdlog::logger> logger;
    try {
        if (!file.empty()) {
            logger = spdlog::basic_logger_mt("ipnfs", file);
        } else if (target == LogTarget::journal) {
            logger = std::make_shared<spdlog::logger>("ipnfs", make_journal_sink());
            spdlog::register_logger(logger);
        } else if (target == LogTarget::stderr_stream) {
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
    if (!fallback.empty()) {
        bus::log::warn({"log-fallback"}, "stderr is the journal stream, but {}: logging to {}",
                       fallback, foreground ? "stderr" : "syslog");
    }
    return true;
}

}  // namespace ipnfs::daemon
