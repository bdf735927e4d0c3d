// The daemon's one thread for kernel interfaces: an epoll loop that moves
// frames between interface descriptors and the bus, outside FUSE, so neither
// waits for the other.
#pragma once

#include <functional>
#include <thread>
#include <vector>

#include "bus/thread_safety.hpp"

namespace ipnfs::netdev {

// What the engine serves: a descriptor to watch, and work to do on the
// engine thread when it is readable or when someone asks (wake).
class Pollable {
  public:
    virtual ~Pollable() = default;
    virtual void on_readable() = 0;
    virtual void on_wake() = 0;

  private:
    friend class Engine;
    // On its engine's wake list.  Guarded by that engine's mu_, which no
    // mark here can name: only Engine::queued(), which requires it, reads
    // or writes it.
    bool wake_queued_ = false;
};

class Engine {
  public:
    Engine();
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Watches fd for input (level-triggered) and wakes `p` once.  The thread
    // starts with the first watch: after the daemon has forked into the
    // background, which threads would not survive.
    void watch(Pollable& p, int fd) EXCLUDES(mu_);
    // Stop / resume reporting input on a watched fd (flow control).
    void set_input(Pollable& p, int fd, bool on);
    // Stops watching; call on the engine thread (see run_sync).  Afterwards
    // the engine never calls `p` again.
    void forget(Pollable& p, int fd) EXCLUDES(mu_);
    // From any thread: run p.on_wake() on the engine thread soon.
    void wake(Pollable& p) EXCLUDES(mu_);
    // Runs fn on the engine thread and waits for it (runs it here if this is
    // the engine thread).  Where devices are set up and torn down, so that
    // nothing the engine is using disappears under it.
    void run_sync(const std::function<void()>& fn) EXCLUDES(mu_);

  private:
    void ensure_started() EXCLUDES(mu_);
    void signal();
    void loop() EXCLUDES(mu_);
    // p's place on the wake list (Pollable::wake_queued_).  A member, not
    // static, so that it can require mu_.
    // NOLINTNEXTLINE(readability-convert-member-functions-to-static)
    bool& queued(Pollable& p) REQUIRES(mu_) { return p.wake_queued_; }

    const int epoll_fd_;
    const int event_fd_;

    // mu_ guards the queues below, the thread's start and the stop flag.
    // Held only to move work in and out, never while running it.
    Mutex mu_;
    std::thread thread_ GUARDED_BY(mu_);
    std::vector<Pollable*> wakes_ GUARDED_BY(mu_);
    std::vector<std::function<void()>> tasks_ GUARDED_BY(mu_);
    bool stopping_ GUARDED_BY(mu_) = false;
};

}  // namespace ipnfs::netdev
