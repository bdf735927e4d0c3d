#include "bus/log.hpp"

#include <algorithm>
#include <iterator>

namespace ipnfs::bus::log {

namespace {
thread_local const Fields* t_current = nullptr;
}  // namespace

const Fields* current_fields() noexcept {
    return t_current;
}

CurrentFields::CurrentFields(const Fields& f) noexcept : previous_(t_current) {
    t_current = &f;
}

CurrentFields::~CurrentFields() {
    t_current = previous_;
}

void append_field(fmt::memory_buffer& out, std::string_view key, std::string_view value) {
    auto to = std::back_inserter(out);
    if (out.size() > 0) out.push_back(' ');
    fmt::format_to(to, "{}=", key);
    bool quote = value.empty() || std::ranges::any_of(value, [](char c) {
                     return c == ' ' || c == '"' || c == '=' || c == '\\' ||
                            static_cast<unsigned char>(c) < 0x20;
                 });
    if (!quote) {
        out.append(value);
        return;
    }
    out.push_back('"');
    for (char c : value) {
        if (c == '"' || c == '\\') out.push_back('\\');
        if (static_cast<unsigned char>(c) < 0x20) {
            fmt::format_to(to, "\\x{:02x}", static_cast<unsigned char>(c));
            continue;
        }
        out.push_back(c);
    }
    out.push_back('"');
}

void append_fields(fmt::memory_buffer& out, const Fields& fields) {
    if (!fields.network.empty()) append_field(out, "network", fields.network);
    if (fields.port) append_field(out, "port", fmt::format("{}", *fields.port));
    if (fields.uid) append_field(out, "uid", fmt::format("{}", *fields.uid));
    if (!fields.event.empty()) append_field(out, "event", fields.event);
    if (out.size() > 0) out.append(std::string_view(": "));
}

void Limiter::roll(Bucket& b, Clock::time_point now) {
    if (now - b.start < kWindow) return;
    b.start = now;
    b.lines = 0;
}

void Limiter::sweep(Clock::time_point now, std::vector<Report>& reports) {
    for (auto it = keys_.begin(); it != keys_.end();) {
        if (now - it->second.start < kWindow) {
            ++it;
            continue;
        }
        if (it->second.suppressed > 0) {
            reports.push_back({it->first.second, it->first.first, it->second.suppressed});
        }
        it = keys_.erase(it);
    }
}

bool Limiter::admit(const Fields& f, Clock::time_point now, std::vector<Report>& reports) {
    MutexLock lock(mu_);
    auto key = std::make_pair(std::string(f.event), std::string(f.network));
    auto it = keys_.find(key);
    if (it == keys_.end()) {
        if (keys_.size() >= kMaxKeys) sweep(now, reports);
        if (keys_.size() >= kMaxKeys) key.second.clear();  // the event's overflow key
        it = keys_.try_emplace(std::move(key), Bucket{now, 0, 0}).first;
    }
    Bucket& b = it->second;
    auto ev = events_.try_emplace(std::string(f.event), Bucket{now, 0, 0}).first;
    roll(ev->second, now);
    bool expired = now - b.start >= kWindow;
    roll(b, now);
    if (b.lines >= kPerKey || ev->second.lines >= kPerEvent) {
        ++b.suppressed;
        return false;
    }
    if (expired && b.suppressed > 0) {
        reports.push_back({it->first.second, it->first.first, b.suppressed});
        b.suppressed = 0;
    }
    ++b.lines;
    ++ev->second.lines;
    return true;
}

Limiter& limiter() noexcept {
    static Limiter the_limiter;
    return the_limiter;
}

void write_reports(spdlog::level::level_enum level,
                   const std::vector<Limiter::Report>& reports) noexcept {
    for (const Limiter::Report& r : reports) {
        write(level, Fields{r.network, r.event}, "{} more lines like this were suppressed",
              r.suppressed);
    }
}

}  // namespace ipnfs::bus::log
