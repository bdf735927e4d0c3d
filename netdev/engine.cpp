#include "netdev/engine.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <future>
#include <system_error>

#include "bus/log.hpp"

namespace ipnfs::netdev {

namespace {

int checked(int fd, const char* what) {
    if (fd < 0) throw std::system_error(errno, std::generic_category(), what);
    return fd;
}

void control(int epoll_fd, int op, int fd, std::uint32_t events, void* ptr) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = ptr;
    if (::epoll_ctl(epoll_fd, op, fd, &ev) != 0) {
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
}

}  // namespace

Engine::Engine()
    : epoll_fd_(checked(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      event_fd_(checked(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), "eventfd")) {
    control(epoll_fd_, EPOLL_CTL_ADD, event_fd_, EPOLLIN, nullptr);
}

Engine::~Engine() {
    {
        MutexLock lock(mu_);
        stopping_ = true;
    }
    signal();
    if (thread_.joinable()) thread_.join();
    ::close(event_fd_);
    ::close(epoll_fd_);
}

void Engine::ensure_started() {
    MutexLock lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void Engine::watch(Pollable& p, int fd) {
    ensure_started();
    control(epoll_fd_, EPOLL_CTL_ADD, fd, EPOLLIN, &p);
    wake(p);
}

// NOLINTNEXTLINE(readability-make-member-function-const): it changes the epoll set
void Engine::set_input(Pollable& p, int fd, bool on) {
    // Out of the set while paused, not just without EPOLLIN: epoll reports a
    // hang-up or an error whatever the events asked for, and a dead link
    // that is paused would spin the loop.
    if (on) {
        control(epoll_fd_, EPOLL_CTL_ADD, fd, EPOLLIN, &p);
    } else {
        control(epoll_fd_, EPOLL_CTL_DEL, fd, 0, nullptr);
    }
}

void Engine::forget(Pollable& p, int fd) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);  // fails only if already gone
    MutexLock lock(mu_);
    std::erase(wakes_, &p);
    queued(p) = false;
}

void Engine::wake(Pollable& p) {
    {
        MutexLock lock(mu_);
        if (queued(p)) return;
        queued(p) = true;
        wakes_.push_back(&p);
    }
    signal();
}

void Engine::run_sync(const std::function<void()>& fn) {
    ensure_started();
    bool here = false;
    {
        MutexLock lock(mu_);
        here = thread_.get_id() == std::this_thread::get_id();
    }
    if (here) {
        fn();
        return;
    }
    // A task's exception travels in `error`, not through the promise: the
    // catch ends, and with it the engine thread's last reference, before
    // set_value() lets the caller look, so the caller's reference is the
    // last and frees it.  (Through set_exception() the engine thread still
    // held a copy after the caller woke; the two frees are then ordered only
    // by libstdc++'s uninstrumented reference count, which ThreadSanitizer
    // cannot see.)
    std::exception_ptr error;
    std::promise<void> done;
    auto finished = done.get_future();
    {
        MutexLock lock(mu_);
        tasks_.emplace_back([&] {
            try {
                fn();
            } catch (...) {
                error = std::current_exception();
            }
            done.set_value();
        });
    }
    signal();
    finished.get();
    if (error) std::rethrow_exception(error);
}

// NOLINTNEXTLINE(readability-make-member-function-const): it wakes the loop
void Engine::signal() {
    std::uint64_t one = 1;
    // Fails only when the counter is about to overflow: it is non-zero then,
    // so the loop wakes anyway.
    [[maybe_unused]] auto n = ::write(event_fd_, &one, sizeof one);
}

namespace {

// A device's trouble (out of memory, an epoll_ctl refused) must not take the
// engine, and with it every other interface, down.
template <typename F>
void guarded(const char* what, F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        bus::log::error({"netdev-error"}, "{}: {}", what, e.what());
    }
}

}  // namespace

void Engine::loop() {
    std::array<epoll_event, 64> events{};
    std::vector<Pollable*> wakes;
    std::vector<std::function<void()>> tasks;
    for (;;) {
        int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0 && errno != EINTR) {
            bus::log::error({"netdev-error"}, "epoll_wait: {}; kernel interfaces stop",
                            std::strerror(errno));
            return;
        }
        for (int i = 0; i < n; ++i) {
            auto* p = static_cast<Pollable*>(events[i].data.ptr);
            if (p == nullptr) {
                std::uint64_t count = 0;
                [[maybe_unused]] auto r = ::read(event_fd_, &count, sizeof count);
            } else {
                guarded("input", [p] { p->on_readable(); });
            }
        }
        bool stop = false;
        {
            MutexLock lock(mu_);
            wakes.swap(wakes_);
            for (Pollable* p : wakes) queued(*p) = false;
            tasks.swap(tasks_);
            stop = stopping_;
        }
        for (Pollable* p : wakes) guarded("wake", [p] { p->on_wake(); });
        for (auto& task : tasks) task();
        wakes.clear();
        tasks.clear();
        if (stop) return;
    }
}

}  // namespace ipnfs::netdev
