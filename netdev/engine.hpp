// The daemon's one thread for kernel interfaces: an epoll loop that moves
// frames between interface descriptors and the bus, outside FUSE, so neither
// waits for the other.
#pragma once

#include <functional>
#include <mutex>
#include <thread>
#include <vector>

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
    bool wake_queued_ = false;  // guarded by Engine::mu_
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
    void watch(Pollable& p, int fd);
    // Stop / resume reporting input on a watched fd (flow control).
    void set_input(Pollable& p, int fd, bool on);
    // Stops watching; call on the engine thread (see run_sync).  Afterwards
    // the engine never calls `p` again.
    void forget(Pollable& p, int fd);
    // From any thread: run p.on_wake() on the engine thread soon.
    void wake(Pollable& p);
    // Runs fn on the engine thread and waits for it (runs it here if this is
    // the engine thread).  Where devices are set up and torn down, so that
    // nothing the engine is using disappears under it.
    void run_sync(const std::function<void()>& fn);

  private:
    void ensure_started();
    void signal();
    void loop();

    const int epoll_fd_;
    const int event_fd_;
    std::thread thread_;

    // mu_ guards the queues below and the start of the thread.  Held only to
    // move work in and out, never while running it.
    std::mutex mu_;
    std::vector<Pollable*> wakes_;
    std::vector<std::function<void()>> tasks_;
    bool stopping_ = false;
};

}  // namespace ipnfs::netdev
