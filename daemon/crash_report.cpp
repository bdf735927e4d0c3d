#include "daemon/crash_report.hpp"

#include <execinfo.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define IPNFS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
#define IPNFS_SANITIZED 1
#endif
#endif

namespace ipnfs::daemon {
namespace {

// Written once before any handler can run, read only by the handler.
int g_log_fd = -1;

void write_all(int fd, const char* text) {
    std::size_t left = std::strlen(text);
    while (left > 0) {
        ssize_t n = ::write(fd, text, left);
        if (n <= 0) return;
        text += n;
        left -= static_cast<std::size_t>(n);
    }
}

// Only async-signal-safe calls: write(2), and backtrace(), whose one unsafe
// step (loading libgcc's unwinder) install_crash_report() has already done.
void report(int sig) {
    std::array<void*, 64> frames{};
    int depth = backtrace(frames.data(), static_cast<int>(frames.size()));
    std::array<char, 160> head{};
    // No snprintf in a handler: the number by hand.
    const char* name = sigabbrev_np(sig);
    char* p = head.data();
    for (const char* s : {"ipnfs: fatal signal SIG", name != nullptr ? name : "?",
                          "; return addresses (addr2line -f -C -e ipnfs +OFFSET):\n"}) {
        std::size_t n = std::strlen(s);
        std::size_t room = head.size() - 1 - static_cast<std::size_t>(p - head.data());
        if (n > room) n = room;
        std::memcpy(p, s, n);
        p += n;
    }
    *p = '\0';
    for (int fd : {STDERR_FILENO, g_log_fd}) {
        if (fd < 0) continue;
        write_all(fd, head.data());
        backtrace_symbols_fd(frames.data(), depth, fd);
    }
}

void on_fatal(int sig) {
    report(sig);
    // SA_RESETHAND put the default action back: the fault happens again on
    // return, or raise() delivers a signal sent from outside.
    ::raise(sig);
}

}  // namespace

void install_crash_report([[maybe_unused]] const std::string& log_file) {
#ifndef IPNFS_SANITIZED
    std::array<void*, 1> warm{};
    backtrace(warm.data(), 1);
    if (!log_file.empty())
        g_log_fd = ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    struct sigaction sa {};
    sa.sa_handler = on_fatal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &sa, nullptr);
#endif
}

}  // namespace ipnfs::daemon
