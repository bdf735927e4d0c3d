#include "daemon/journal_sink.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <syslog.h>
// Else sd_journal_sendv() adds CODE_FILE, CODE_LINE and CODE_FUNC naming
// this sink, the same on every line.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>

#include "bus/log.hpp"

namespace ipnfs::daemon {

namespace {

// Where libsystemd's sd_journal_sendv() sends (systemd-journald.service(8)).
constexpr const char* kJournalSocket = "/run/systemd/journal/socket";
constexpr std::size_t kMaxFieldName = 64;
constexpr std::size_t kMaxFields = 4;  // event, network, port, uid

int syslog_priority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::trace:
        case spdlog::level::debug:
            return LOG_DEBUG;
        case spdlog::level::warn:
            return LOG_WARNING;
        case spdlog::level::err:
            return LOG_ERR;
        case spdlog::level::critical:
            return LOG_CRIT;
        default:
            return LOG_INFO;
    }
}

// sd_journal_sendv() is thread-safe and the sink keeps no state of its own,
// so the logging threads need not wait for one another here.
class JournalSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        // Every field is "NAME=value" in one iovec: sd_journal_sendv() sends
        // a value holding a newline in the native protocol's length-prefixed
        // form, so any byte a user put in a network name arrives as it is,
        // and no user text is ever a format.
        std::string message = "MESSAGE=";
        message.append(msg.payload.data(), msg.payload.size());
        std::string priority = fmt::format("PRIORITY={}", syslog_priority(msg.level));
        std::array<std::string, kMaxFields> fields;
        std::size_t n_fields = 0;
        if (const bus::log::Fields* f = bus::log::current_fields(); f != nullptr) {
            auto add = [&](std::string_view key, std::string_view value) {
                std::string& field = fields.at(n_fields++);
                field = journal_field_name(key);
                field += '=';
                field += value;
            };
            if (!f->event.empty()) add("event", f->event);
            if (!f->network.empty()) add("network", f->network);
            if (f->port) add("port", fmt::format("{}", *f->port));
            if (f->uid) add("uid", fmt::format("{}", *f->uid));
        }
        static constexpr std::string_view kIdentifier = "SYSLOG_IDENTIFIER=ipnfs";
        std::array<iovec, 3 + kMaxFields> iov{};
        std::size_t n = 0;
        auto push = [&](std::string_view s) {
            iov.at(n++) = iovec{const_cast<char*>(s.data()), s.size()};
        };
        push(message);
        push(priority);
        push(kIdentifier);
        for (std::size_t i = 0; i < n_fields; ++i) push(fields.at(i));
        // A line journald does not take (it is gone, restarting) is lost,
        // as one syslog(3) cannot deliver is.
        (void)sd_journal_sendv(iov.data(), static_cast<int>(n));
    }
    void flush_() override {}
};

}  // namespace

std::string journal_field_name(std::string_view key) {
    std::string name = "IPNFS_";
    for (char c : key) {
        if (name.size() >= kMaxFieldName) break;
        if (c >= 'a' && c <= 'z') {
            name += static_cast<char>(c - 'a' + 'A');
        } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            name += c;
        } else {
            name += '_';
        }
    }
    return name;
}

std::string journal_problem() {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fmt::format("socket: {}", std::strerror(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, kJournalSocket, sizeof(addr.sun_path) - 1);
    int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
    int err = errno;
    close(fd);
    if (rc == 0) return {};
    return fmt::format("journald's socket {}: {}", kJournalSocket, std::strerror(err));
}

bool stderr_is_journal() {
    // systemd.exec(5), $JOURNAL_STREAM: systemd sets it to "DEVICE:INODE" of
    // the journal stream it connected stdout or stderr to (stderr's when
    // both), and "the device and inode numbers of the file descriptors
    // should be compared with the values set in the environment variable to
    // determine whether the process output is still connected to the
    // journal": the variable alone may have been inherited past a
    // redirection.
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) return false;
    std::string_view text(stream);
    std::size_t colon = text.find(':');
    if (colon == std::string_view::npos) return false;
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    auto parse = [](std::string_view s, unsigned long long& out) {
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && end == s.data() + s.size() && !s.empty();
    };
    if (!parse(text.substr(0, colon), dev) || !parse(text.substr(colon + 1), ino)) return false;
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) return false;
    return st.st_dev == dev && st.st_ino == ino;
}

std::shared_ptr<spdlog::sinks::sink> make_journal_sink() {
    return std::make_shared<JournalSink>();
}

}  // namespace ipnfs::daemon
