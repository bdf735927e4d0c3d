#include "bus/timer.hpp"

#include <algorithm>

namespace ipnfs::bus {

Timer& Timer::shared() {
    static Timer timer;
    return timer;
}

Timer::~Timer() {
    {
        MutexLock lock(mu_);
        stop_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void Timer::arm(Timed& target, Clock::time_point when) {
    {
        MutexLock lock(mu_);
        auto [it, added] = deadlines_.try_emplace(&target, when);
        if (!added) it->second = std::min(it->second, when);
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    changed_.notify_all();
}

void Timer::cancel(Timed& target) {
    UniqueLock lock(mu_);
    deadlines_.erase(&target);
    // From the target's own expired() (its last owner let go there) there
    // is nothing to wait for.
    if (std::this_thread::get_id() == thread_.get_id()) return;
    while (running_ == &target) changed_.wait(lock.native());
}

void Timer::run() {
    UniqueLock lock(mu_);
    while (!stop_) {
        auto next = std::ranges::min_element(
            deadlines_, [](const auto& a, const auto& b) { return a.second < b.second; });
        if (next == deadlines_.end()) {
            changed_.wait(lock.native());
            continue;
        }
        if (const Clock::time_point when = next->second; Clock::now() < when) {
            // A copy: cancel() may erase the entry while this waits.
            changed_.wait_until(lock.native(), when);
            continue;
        }
        Timed* target = next->first;
        deadlines_.erase(next);
        running_ = target;
        lock.unlock();
        target->expired();
        lock.lock();
        running_ = nullptr;
        changed_.notify_all();
    }
}

}  // namespace ipnfs::bus
