// The bus's one timer thread: it calls a target back at a deadline, so a
// bound on waiting (a lossless port's holdtime) needs no client's thread and
// no FUSE worker to sleep.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <thread>

#include "bus/thread_safety.hpp"

namespace ipnfs::bus {

class Timed {
  public:
    virtual ~Timed() = default;
    // Called on the timer's thread, which holds none of the timer's locks.
    virtual void expired() = 0;
};

class Timer {
  public:
    using Clock = std::chrono::steady_clock;

    // The process's timer; its thread starts at the first arm().
    static Timer& shared();

    Timer() = default;
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // target->expired() runs at or after `when` (the earlier of this and a
    // deadline it already has).  May be called under a lock that expired()
    // takes: the timer's lock comes after it.
    void arm(Timed& target, Clock::time_point when) EXCLUDES(mu_);
    // Forgets the target; if its expired() is running on another thread,
    // waits for it to return.  Never call it under a lock expired() takes.
    void cancel(Timed& target) EXCLUDES(mu_);

  private:
    void run() EXCLUDES(mu_);

    Mutex mu_;                         // guards what is marked so; never held while a target runs
    std::condition_variable changed_;  // waits on mu_ (UniqueLock::native())
    std::map<Timed*, Clock::time_point> deadlines_ GUARDED_BY(mu_);
    Timed* running_ GUARDED_BY(mu_) = nullptr;  // whose expired() runs now
    bool stop_ GUARDED_BY(mu_) = false;
    // Started under mu_ (arm()); joined by the destructor once stop_ is set.
    std::thread thread_ GUARDED_BY(mu_);
};

}  // namespace ipnfs::bus
