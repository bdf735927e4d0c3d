// Many reads blocked on port files at once, one raw pthread each with a
// small stack, so a test can hold thousands of them parked in the daemon.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

namespace ipnfs_it {

class ParkedReaders {
  public:
    struct Reader {
        int fd = -1;
        std::atomic<pid_t> tid{0};
        std::atomic<bool> done{false};
        ssize_t n = -1;
        int err = 0;  // errno of a failed read
        char buf[64] = {};
    };

    ParkedReaders() = default;
    // Joins every reader: the test must have ended their reads first (a
    // message, end of file, or the daemon's end).
    ~ParkedReaders() { join(); }
    ParkedReaders(const ParkedReaders&) = delete;
    ParkedReaders& operator=(const ParkedReaders&) = delete;

    // One read() of up to 64 bytes on fd, on a thread of its own; false if
    // the thread could not be made.
    bool start(int fd);
    // Readers asleep in read() (state S) and not done, once all of them
    // are or `limit` passed.
    int wait_blocked(std::chrono::milliseconds limit);
    // Readers whose read() returned, once all of them did or `limit` passed.
    int wait_done(std::chrono::milliseconds limit);
    [[nodiscard]] int done() const;
    [[nodiscard]] std::size_t size() const { return readers_.size(); }
    [[nodiscard]] const Reader& operator[](std::size_t i) const { return *readers_[i]; }
    void join();

  private:
    std::vector<std::unique_ptr<Reader>> readers_;
    std::vector<pthread_t> threads_;
};

}  // namespace ipnfs_it
