#include "parked_readers.hpp"

#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>

#include <thread>

#include "test_io.hpp"

namespace ipnfs_it {

namespace {

void* reader_main(void* arg) {
    auto* r = static_cast<ParkedReaders::Reader*>(arg);
    r->tid = static_cast<pid_t>(::syscall(SYS_gettid));
    r->n = ::read(r->fd, r->buf, sizeof r->buf);
    if (r->n < 0) r->err = errno;
    r->done = true;
    return nullptr;
}

}  // namespace

bool ParkedReaders::start(int fd) {
    auto reader = std::make_unique<Reader>();
    reader->fd = fd;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, std::size_t{64} * 1024);
    pthread_t t;
    int err = pthread_create(&t, &attr, reader_main, reader.get());
    pthread_attr_destroy(&attr);
    if (err != 0) return false;
    readers_.push_back(std::move(reader));
    threads_.push_back(t);
    return true;
}

int ParkedReaders::wait_blocked(std::chrono::milliseconds limit) {
    int blocked = 0;
    for (auto deadline = Clock::now() + limit; Clock::now() < deadline;) {
        blocked = 0;
        for (const auto& r : readers_) {
            if (r->tid != 0 && !r->done && task_state(r->tid) == 'S') ++blocked;
        }
        if (blocked == static_cast<int>(readers_.size())) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return blocked;
}

int ParkedReaders::done() const {
    int n = 0;
    for (const auto& r : readers_) n += r->done ? 1 : 0;
    return n;
}

int ParkedReaders::wait_done(std::chrono::milliseconds limit) {
    for (auto deadline = Clock::now() + limit; Clock::now() < deadline;) {
        if (done() == static_cast<int>(readers_.size())) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
}

void ParkedReaders::join() {
    for (pthread_t t : threads_) pthread_join(t, nullptr);
    threads_.clear();
}

}  // namespace ipnfs_it
