// The daemon under test, seen from /proc: its CPU time, context switches
// and peak resident set over a run, and its resident set sampled meanwhile.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "loadgen.hpp"

namespace ipnfs_loadgen {

struct DaemonProbe {
    pid_t pid = 0;
    std::int64_t cpu_ticks0 = 0;
    long switches0 = 0;

    static std::string slurp(const std::string& path) {
        std::string out;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return out;
        char buf[4096];
        ssize_t n = 0;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
        ::close(fd);
        return out;
    }
    [[nodiscard]] std::int64_t cpu_ticks() const {
        std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
        auto close = s.rfind(')');
        if (close == std::string::npos) return 0;
        // After "pid (comm)": state is field 3; utime and stime are 14 and 15.
        std::vector<std::string> f;
        std::size_t at = close + 2;
        while (at < s.size()) {
            auto sp = s.find(' ', at);
            if (sp == std::string::npos) sp = s.size();
            f.push_back(s.substr(at, sp - at));
            at = sp + 1;
        }
        if (f.size() < 13) return 0;
        return std::strtoll(f[11].c_str(), nullptr, 10) + std::strtoll(f[12].c_str(), nullptr, 10);
    }
    [[nodiscard]] long status_kb(const char* field) const {
        std::string s = slurp("/proc/" + std::to_string(pid) + "/status");
        auto at = s.find(field);
        if (at == std::string::npos) return 0;
        return std::strtol(s.c_str() + at + std::strlen(field) + 1, nullptr, 10);
    }
    void begin() {
        if (pid == 0) return;
        // "5": the peak resident set (VmHWM) starts again from the current one.
        int fd = ::open(("/proc/" + std::to_string(pid) + "/clear_refs").c_str(), O_WRONLY);
        if (fd >= 0) {
            [[maybe_unused]] ssize_t n = ::write(fd, "5", 1);
            ::close(fd);
        }
        cpu_ticks0 = cpu_ticks();
        switches0 = switches();
    }
    // Context switches of all its threads: how often the daemon slept and
    // was woken (libfuse's workers never exit, so none is lost).
    [[nodiscard]] long switches() const {
        if (pid == 0) return 0;
        std::string dir = "/proc/" + std::to_string(pid) + "/task";
        long total = 0;
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) return 0;
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::string st = slurp(dir + "/" + e->d_name + "/status");
            for (const char* f : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
                auto at = st.find(f);
                if (at != std::string::npos) {
                    total += std::strtol(st.c_str() + at + std::strlen(f), nullptr, 10);
                }
            }
        }
        ::closedir(d);
        return total;
    }
    [[nodiscard]] double cpu_seconds() const {
        if (pid == 0) return 0;
        return static_cast<double>(cpu_ticks() - cpu_ticks0) /
               static_cast<double>(sysconf(_SC_CLK_TCK));
    }
};

// Samples the daemon's resident set while a run goes on.
class RssSampler {
  public:
    RssSampler(const DaemonProbe& probe, int period_ms) : probe_(probe) {
        if (probe_.pid == 0) return;
        thread_ = std::thread([this, period_ms] {
            while (!stop_.load()) {
                long kb = probe_.status_kb("VmRSS:");
                max_kb_ = std::max(max_kb_.load(), kb);
                {
                    std::lock_guard lock(mu_);
                    series_.push_back(kb);
                }
                sleep_ms(period_ms);
            }
        });
    }
    ~RssSampler() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] long max_kb() const { return max_kb_; }
    [[nodiscard]] std::vector<long> series() {
        std::lock_guard lock(mu_);
        return series_;
    }

  private:
    const DaemonProbe& probe_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<long> max_kb_{0};
    std::mutex mu_;
    std::vector<long> series_;
};

}  // namespace ipnfs_loadgen
