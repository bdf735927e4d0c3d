// Log lines with the same leading fields everywhere, in logfmt, so that
// `journalctl -t ipnfs -g 'network=lan'` or grep picks out one network, one
// port, one user or one kind of event:
//   network=lan port=0 event=tap-attach: tap tap0 attached
//   network=lan uid=1000 event=network-create: created
// Fields that do not apply are left out; a value with a space, a quote or an
// equals sign is quoted.  `event` is a fixed word per kind of event
// (docs/usage.md, "Logging", lists them).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/message.hpp"
#include "bus/thread_safety.hpp"

namespace ipnfs::bus::log {

// {"mount"}, {"lan", "network-create"}, {"lan", 3, "port-open"}.
struct Fields {
    // NOLINTBEGIN(google-explicit-constructor): written as braces at each call
    Fields(std::string_view ev) : event(ev) {}
    Fields(std::string_view net, std::string_view ev) : network(net), event(ev) {}
    Fields(std::string_view net, PortId p, std::string_view ev)
        : network(net), port(p), event(ev) {}
    // NOLINTEND(google-explicit-constructor)

    // The same fields about what user `u` did: the request's caller, the
    // file's opener, the VDE client.
    [[nodiscard]] Fields by(std::uint32_t u) const {
        Fields f = *this;
        f.uid = u;
        return f;
    }

    std::string_view network;  // empty: not about one network
    std::optional<PortId> port;
    std::optional<std::uint32_t> uid;
    std::string_view event;
};

// Appends ` key=value` (quoted when it must be) to out.
void append_field(fmt::memory_buffer& out, std::string_view key, std::string_view value);
// The fields, then ": ", as every line starts.
void append_fields(fmt::memory_buffer& out, const Fields& fields);

// The fields of the line this thread is logging, for a sink that keeps them
// apart from the text (the journal's, daemon/journal_sink.hpp); null outside
// write().  Sinks run on the logging thread: the daemon's loggers are
// synchronous.
const Fields* current_fields() noexcept;

// Names the fields of the lines logged while it lives.
class CurrentFields {
  public:
    explicit CurrentFields(const Fields& f) noexcept;
    ~CurrentFields();
    CurrentFields(const CurrentFields&) = delete;
    CurrentFields& operator=(const CurrentFields&) = delete;

  private:
    const Fields* previous_;
};

// The most of one line that goes to the log: a line can quote what a client
// wrote (a 64 KiB ctl line), and the rate limiter counts lines, not bytes.
constexpr std::size_t kMaxLine = 1024;

// Never throws, as spdlog's own calls do not: a line that cannot be made
// (out of memory) is lost, not the request or thread that logged it.  A
// line longer than kMaxLine is cut there and says how long it was.
template <typename... Args>
void write(spdlog::level::level_enum level, const Fields& fields, fmt::format_string<Args...> text,
           Args&&... args) noexcept {
    spdlog::logger* logger = spdlog::default_logger_raw();
    if (!logger->should_log(level)) return;
    try {
        fmt::memory_buffer line;
        append_fields(line, fields);
        fmt::format_to(std::back_inserter(line), text, std::forward<Args>(args)...);
        if (line.size() > kMaxLine) {
            const std::size_t full = line.size();
            line.resize(kMaxLine);
            fmt::format_to(std::back_inserter(line), "... ({} bytes in all)", full);
        }
        CurrentFields current(fields);
        logger->log(level, std::string_view(line.data(), line.size()));
    } catch (...) {  // NOLINT(bugprone-empty-catch): nowhere left to report it
    }
}

template <typename... Args>
void debug(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::debug, f, text, std::forward<Args>(args)...);
}
template <typename... Args>
void info(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::info, f, text, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::warn, f, text, std::forward<Args>(args)...);
}
template <typename... Args>
void error(const Fields& f, fmt::format_string<Args...> text, Args&&... args) noexcept {
    write(spdlog::level::err, f, text, std::forward<Args>(args)...);
}

// What a client can make the daemon log as often as it likes (a refused ctl
// line, a bad mkdir) goes through a Limiter: at most kPerKey lines a second
// per event and network, kPerEvent per event over all networks.  What is
// held back is counted, and said with the fields of its kind, in one line
// before the next line of that kind that goes out (or when its key is swept):
//   network=lan event=ctl-error: 99871 more lines like this were suppressed
class Limiter {
  public:
    using Clock = std::chrono::steady_clock;
    static constexpr unsigned kPerKey = 10;
    static constexpr unsigned kPerEvent = 50;
    static constexpr std::chrono::seconds kWindow{1};
    // Keys (event, network) kept; a new key past this finds the event's
    // network-less key once the expired ones are swept.
    static constexpr std::size_t kMaxKeys = 256;

    // A held-back count to report.
    struct Report {
        std::string network;
        std::string event;
        std::uint64_t suppressed = 0;
    };
    // Whether a line with these fields may go out now; reports of held-back
    // lines (this key's previous window, or swept keys) go to `reports`,
    // to be logged before it.
    bool admit(const Fields& f, Clock::time_point now, std::vector<Report>& reports) EXCLUDES(mu_);

  private:
    struct Bucket {
        Clock::time_point start;
        unsigned lines = 0;
        std::uint64_t suppressed = 0;
    };
    static void roll(Bucket& b, Clock::time_point now);
    void sweep(Clock::time_point now, std::vector<Report>& reports) REQUIRES(mu_);

    Mutex mu_;  // guards keys_ and events_; never held across a log call
    // Per (event, network).
    std::map<std::pair<std::string, std::string>, Bucket, std::less<>> keys_ GUARDED_BY(mu_);
    std::map<std::string, Bucket, std::less<>> events_ GUARDED_BY(mu_);  // per event (a fixed word)
};

// The daemon's one limiter.
Limiter& limiter() noexcept;
void write_reports(spdlog::level::level_enum level,
                   const std::vector<Limiter::Report>& reports) noexcept;

// write(), through limiter().
template <typename... Args>
void limited(spdlog::level::level_enum level, const Fields& fields,
             fmt::format_string<Args...> text, Args&&... args) noexcept {
    if (!spdlog::default_logger_raw()->should_log(level)) return;
    bool admitted = false;
    std::vector<Limiter::Report> reports;
    try {
        admitted = limiter().admit(fields, Limiter::Clock::now(), reports);
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory: the line is lost
    }
    write_reports(level, reports);
    if (admitted) write(level, fields, text, std::forward<Args>(args)...);
}

}  // namespace ipnfs::bus::log
