// How a receiver waits for its messages (--receiver): blocking in read(), the
// default and what the first tables measure, or as event-driven programs do
// (epoll on a non-blocking descriptor, level- or edge-triggered, or io_uring
// reads).  On a FUSE file these differ: every epoll readiness check is a
// FUSE_POLL request to the daemon (the kernel keeps no poll state of its
// own), and an io_uring read of a file without FMODE_NOWAIT runs in an
// io-wq worker thread.
#include <sys/epoll.h>

#ifdef IPNFS_BENCH_URING
#include <liburing.h>
#endif

#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

using Took = Endpoint::Took;

class Blocking final : public Receiver {
  public:
    explicit Blocking(Endpoint& ep) : ep_(ep) {}
    bool next(std::span<std::byte> buf, const OnMessage& on) override {
        return ep_.receive(buf, on);
    }

  private:
    Endpoint& ep_;
};

int event_fd_of(Endpoint& ep, const char* mode) {
    int fd = ep.event_fd();
    if (fd < 0) die(std::string("--receiver ") + mode + ": this contender has no descriptor");
    return fd;
}

class Epoll final : public Receiver {
  public:
    Epoll(Endpoint& ep, bool edge) : ep_(ep), edge_(edge || ep.edge_only()) {
        int fd = event_fd_of(ep, edge ? "epoll-et" : "epoll-lt");
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) die_errno("epoll_create1");
        epoll_event ev{};
        ev.events = EPOLLIN | (edge ? static_cast<std::uint32_t>(EPOLLET) : 0U);
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) die_errno("epoll_ctl");
    }
    ~Epoll() override { ::close(epfd_); }

    bool next(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            // Level-triggered: a wake-up, then one read, as a loop that
            // serves many descriptors fairly does.  Edge-triggered: read until
            // EAGAIN first, as epoll(7) requires before waiting again.
            if (!edge_) wait();
            switch (ep_.take(buf, on)) {
                case Took::message:
                    return true;
                case Took::end:
                    return false;
                case Took::again:
                    break;
            }
            if (edge_) wait();
        }
    }

  private:
    void wait() const {
        epoll_event ev{};
        while (::epoll_wait(epfd_, &ev, 1, -1) < 0) {
            if (errno != EINTR) die_errno("epoll_wait");
        }
    }
    Endpoint& ep_;
    bool edge_;
    int epfd_ = -1;
};

#ifdef IPNFS_BENCH_URING
// One read in flight at a time, waited for: the io_uring version of a
// blocking read.  The descriptor stays blocking, so the kernel decides how to
// wait (a socket or pipe: its internal poll; a FUSE file: an io-wq thread).
class Uring final : public Receiver {
  public:
    explicit Uring(Endpoint& ep) : ep_(ep), fd_(event_fd_of(ep, "uring")) {
        int rc = io_uring_queue_init(4, &ring_, 0);
        if (rc < 0) {
            errno = -rc;
            die_errno("io_uring_queue_init");
        }
    }
    ~Uring() override { io_uring_queue_exit(&ring_); }

    bool next(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
            // -1: the file's own position, which stream files ignore.
            io_uring_prep_read(sqe, fd_, buf.data(),
                               static_cast<unsigned>(ep_.read_size(buf.size())),
                               static_cast<std::uint64_t>(-1));
            io_uring_submit(&ring_);
            io_uring_cqe* cqe = nullptr;
            int rc = 0;
            while ((rc = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
            }
            if (rc < 0) {
                errno = -rc;
                die_errno("io_uring_wait_cqe");
            }
            int res = cqe->res;
            io_uring_cqe_seen(&ring_, cqe);
            if (res > 0) {
                ep_.parse(buf.data(), static_cast<std::size_t>(res), on);
                return true;
            }
            if (res == 0 || (res != -EINTR && res != -EAGAIN)) return false;
        }
    }

  private:
    Endpoint& ep_;
    int fd_;
    io_uring ring_{};
};
#endif

}  // namespace

Wait wait_of(const std::string& name) {
    if (name.empty() || name == "blocking") return Wait::blocking;
    if (name == "epoll-lt") return Wait::epoll_lt;
    if (name == "epoll-et") return Wait::epoll_et;
    if (name == "uring") {
#ifdef IPNFS_BENCH_URING
        return Wait::uring;
#else
        die("--receiver uring: built without liburing");
#endif
    }
    die("--receiver takes blocking, epoll-lt, epoll-et, uring");
}

std::unique_ptr<Receiver> make_receiver(Endpoint& ep, Wait wait) {
    switch (wait) {
        case Wait::epoll_lt:
            return std::make_unique<Epoll>(ep, false);
        case Wait::epoll_et:
            return std::make_unique<Epoll>(ep, true);
        case Wait::uring:
#ifdef IPNFS_BENCH_URING
            if (ep.edge_only()) die("--receiver uring: this contender has no descriptor to read");
            return std::make_unique<Uring>(ep);
#else
            break;
#endif
        case Wait::blocking:
            break;
    }
    return std::make_unique<Blocking>(ep);
}

}  // namespace ipnfs_loadgen
