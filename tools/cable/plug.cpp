#include "plug.hpp"

#include <poll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string_view>
#include <vector>

#include "vde_stream.hpp"

namespace ipnfs::cable {
namespace {

// One read() of a port takes one message; the largest is kMaxFrame.
constexpr std::size_t kReadBuffer = 65536;
// Port reads per wakeup before stdin gets its turn again.
constexpr int kReadBurst = 64;

// Errors of a port write that mean the port itself is unusable, not that
// the network refused this one frame.
bool fatal_write_error(int err) {
    return err == ENOTCONN || err == EIO || err == EBADF || err == ENODEV || err == ENOENT ||
           err == ENXIO;
}

class Pump {
  public:
    Pump(const Plug& plug, Counters& counters)
        : plug_(plug), counters_(counters), buf_(kReadBuffer) {}

    Outcome run();

  private:
    // Each returns false when the cable must end, with `end` saying why.
    bool flush_pending(Outcome& end);
    bool read_port(Outcome& end);
    bool read_stream(Outcome& end);
    bool write_stream(std::string_view frame, Outcome& end);
    void drop(int err, std::size_t size);
    [[nodiscard]] bool stopped() const { return plug_.stop != nullptr && *plug_.stop != 0; }

    const Plug& plug_;
    Counters& counters_;
    StreamDecoder decoder_;
    std::vector<char> buf_;
    std::set<int> reported_;  // errno kinds already reported (0: empty frames)
};

Outcome ended(End end, std::string why = {}) {
    return {end, std::move(why)};
}

Outcome Pump::run() {
    Outcome end;
    for (;;) {
        if (stopped()) return ended(End::signalled);
        if (!flush_pending(end)) return end;
        bool pending = decoder_.front().has_value();
        // While a frame waits for room, stdin is left alone: that bounds
        // what we hold to one read's worth and pushes back on the far side.
        pollfd fds[2] = {{plug_.port, static_cast<short>(POLLIN | (pending ? POLLOUT : 0)), 0},
                         {pending ? -1 : plug_.in, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return ended(End::failed, std::string("poll: ") + std::strerror(errno));
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_port(end)) return end;
        if ((fds[0].revents & POLLNVAL) != 0) return ended(End::failed, plug_.name + ": not open");
        if ((fds[1].revents & POLLNVAL) != 0) return ended(End::failed, "stdin is not open");
        if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_stream(end)) return end;
    }
}

// Writes the frames the decoder holds, each as one message, until none is
// left or the network has no room yet.
bool Pump::flush_pending(Outcome& end) {
    while (auto frame = decoder_.front()) {
        if (frame->empty()) {  // VDE never sends one; a message of 0 bytes means nothing
            drop(0, 0);
            decoder_.pop();
            continue;
        }
        ssize_t n = ::write(plug_.port, frame->data(), frame->size());
        if (n < 0) {
            int err = errno;
            if (err == EAGAIN || err == EINTR) return true;
            if (err == EPIPE) {
                end = ended(End::network_removed);
                return false;
            }
            if (fatal_write_error(err)) {
                end = ended(End::failed, plug_.name + ": " + std::strerror(err));
                return false;
            }
            drop(err, frame->size());
        } else {
            ++counters_.in;
        }
        decoder_.pop();
    }
    return true;
}

bool Pump::read_port(Outcome& end) {
    for (int i = 0; i < kReadBurst; ++i) {
        ssize_t n = ::read(plug_.port, buf_.data(), buf_.size());
        if (n == 0) {
            end = ended(End::network_removed);
            return false;
        }
        if (n < 0) {
            if (errno == EAGAIN) return true;
            if (errno == EINTR) return true;  // run() checks for a stop
            end = ended(End::failed, plug_.name + ": " + std::strerror(errno));
            return false;
        }
        if (!write_stream({buf_.data(), static_cast<std::size_t>(n)}, end)) return false;
        ++counters_.out;
    }
    return true;
}

bool Pump::read_stream(Outcome& end) {
    ssize_t n = ::read(plug_.in, buf_.data(), buf_.size());
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        end = ended(End::failed, std::string("stdin: ") + std::strerror(errno));
        return false;
    }
    if (n == 0) {
        if (decoder_.buffered() != 0 && !plug_.quiet) {
            std::fprintf(stderr, "ipnfs-cable: stdin ended inside a frame; %zu bytes discarded\n",
                         decoder_.buffered());
        }
        end = ended(End::stream_closed);
        return false;
    }
    decoder_.feed({buf_.data(), static_cast<std::size_t>(n)});
    return true;
}

// Length prefix and frame in one writev(); a slow far side makes this wait,
// which is the backpressure a stream gives.
bool Pump::write_stream(std::string_view frame, Outcome& end) {
    auto prefix = length_prefix(frame.size());
    iovec iov[2] = {{prefix.data(), prefix.size()},
                    {const_cast<char*>(frame.data()), frame.size()}};
    int first = 0;
    while (first < 2) {
        ssize_t n = ::writev(plug_.out, &iov[first], 2 - first);
        if (n < 0) {
            if (errno == EINTR) {
                if (!stopped()) continue;
                end = ended(End::signalled);
                return false;
            }
            if (errno == EAGAIN) {  // a far side may hand us a non-blocking pipe
                pollfd pfd{plug_.out, POLLOUT, 0};
                poll(&pfd, 1, -1);
                continue;
            }
            end = errno == EPIPE
                      ? ended(End::stream_closed)
                      : ended(End::failed, std::string("stdout: ") + std::strerror(errno));
            return false;
        }
        auto left = static_cast<std::size_t>(n);
        while (first < 2 && left >= iov[first].iov_len) left -= iov[first++].iov_len;
        if (first < 2) {
            iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
            iov[first].iov_len -= left;
        }
    }
    return true;
}

void Pump::drop(int err, std::size_t size) {
    ++counters_.dropped;
    if (plug_.quiet || !reported_.insert(err).second) return;
    if (err == 0) {
        std::fprintf(stderr,
                     "ipnfs-cable: %s: skipped an empty frame (further ones are only counted)\n",
                     plug_.name.c_str());
    } else {
        std::fprintf(stderr,
                     "ipnfs-cable: %s: the network refused a %zu-byte frame: %s (further such "
                     "frames are only counted)\n",
                     plug_.name.c_str(), size, std::strerror(err));
    }
}

}  // namespace

Outcome run(const Plug& plug, Counters& counters) {
    return Pump(plug, counters).run();
}

}  // namespace ipnfs::cable
