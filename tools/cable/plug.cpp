#include "plug.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <set>
#include <string_view>
#include <vector>

#include "vde_stream.hpp"

namespace ipnfs::cable {
namespace {

// One read() of a port takes one message, and the largest is kMaxFrame:
// a buffer one byte larger can never cut one.
constexpr std::size_t kReadBuffer = kMaxFrame + 1;
// Port reads per wakeup before stdin gets its turn again.
constexpr int kReadBurst = 64;
// What the cable holds for a full stdout while its own frame waits for the
// network (see Pump); beyond it, frames from the port are dropped.
constexpr std::size_t kSpillBytes = 1 << 20;
// drop()'s report kinds that are no errno.
constexpr int kEmptyFrame = 0;
constexpr int kSpillFull = -1;

// Errors of a port write that mean the port itself is unusable, not that
// the network refused this one frame.
bool fatal_write_error(int err) {
    return err == ENOTCONN || err == EIO || err == EBADF || err == ENODEV || err == ENOENT ||
           err == ENXIO;
}

Outcome ended(End end, std::string why = {}) {
    return {end, std::move(why)};
}

// Each direction stops on its own: a frame the network has no room for
// stops stdin being read, a full stdout stops the port being read.  Neither
// waits in a write, so two cables back to back (dpipe) never both sit in a
// write to each other, and a lossless network waiting for our queue drains.
//
// One cycle remains when both happen at once: a lossless network takes
// writes in order, so our frame can wait behind a local writer that waits
// for room in our queue, while the far side's cable is held the same way
// and each stdout is full because the other stopped reading.  So while our
// own frame waits, the port is read even if stdout is full, into memory up
// to kSpillBytes and past that into the bin (counted): the local writer
// goes on, our frame goes in, we read stdin, and the far side moves too.
class Pump {
  public:
    Pump(const Plug& plug, Counters& counters)
        : plug_(plug), counters_(counters), buf_(kReadBuffer) {}

    Outcome run();

  private:
    // Each returns false when the cable must end, with `end_` saying why.
    bool flush_to_port();
    bool flush_to_stream();
    bool read_port();
    bool read_stream();
    void drop(int kind, std::size_t size);
    bool finish(End end, std::string why = {}) {
        end_ = ended(end, std::move(why));
        return false;
    }
    [[nodiscard]] bool stopped() const { return plug_.stop != nullptr && *plug_.stop != 0; }
    [[nodiscard]] bool to_port_pending() const { return decoder_.front().has_value(); }
    [[nodiscard]] bool to_stream_pending() const { return !out_.empty(); }

    const Plug& plug_;
    Counters& counters_;
    Outcome end_;
    StreamDecoder decoder_;
    std::vector<char> buf_;
    std::deque<std::string> out_;  // encoded frames for stdout, the first maybe partly written
    std::size_t out_at_ = 0;       // bytes of out_.front() already written
    std::size_t out_bytes_ = 0;    // bytes held in out_
    std::set<int> reported_;       // drop() kinds already reported
};

Outcome Pump::run() {
    for (;;) {
        if (stopped()) return ended(End::signalled);
        if (!flush_to_port() || !flush_to_stream()) return end_;
        bool to_port = to_port_pending();
        bool to_stream = to_stream_pending();
        auto port_events =
            static_cast<short>((!to_stream || to_port ? POLLIN : 0) | (to_port ? POLLOUT : 0));
        pollfd fds[3] = {{plug_.port, port_events, 0},
                         {to_port ? -1 : plug_.in, POLLIN, 0},
                         {to_stream ? plug_.out : -1, POLLOUT, 0}};
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            return ended(End::failed, std::string("poll: ") + std::strerror(errno));
        }
        for (const auto& fd : fds) {
            if ((fd.revents & POLLNVAL) != 0) return ended(End::failed, "a descriptor is not open");
        }
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_port()) return end_;
        if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_stream()) return end_;
    }
}

// Writes the frames the decoder holds, each as one message, until none is
// left or the network has no room yet.
bool Pump::flush_to_port() {
    while (auto frame = decoder_.front()) {
        if (frame->empty()) {  // VDE never sends one; a message of 0 bytes means nothing
            drop(kEmptyFrame, 0);
            decoder_.pop();
            continue;
        }
        ssize_t n = ::write(plug_.port, frame->data(), frame->size());
        if (n < 0) {
            int err = errno;
            if (err == EAGAIN || err == EINTR) return true;
            if (err == EPIPE) return finish(End::network_removed);
            if (fatal_write_error(err)) {
                return finish(End::failed, plug_.name + ": " + std::strerror(err));
            }
            drop(err, frame->size());
        } else {
            ++counters_.in;
        }
        decoder_.pop();
    }
    return true;
}

bool Pump::flush_to_stream() {
    while (to_stream_pending()) {
        const std::string& frame = out_.front();
        ssize_t n = ::write(plug_.out, frame.data() + out_at_, frame.size() - out_at_);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return true;
            if (errno == EPIPE) return finish(End::stream_closed);
            return finish(End::failed, std::string("stdout: ") + std::strerror(errno));
        }
        out_at_ += static_cast<std::size_t>(n);
        if (out_at_ == frame.size()) {
            out_bytes_ -= frame.size();
            out_.pop_front();
            out_at_ = 0;
            ++counters_.out;
        }
    }
    return true;
}

bool Pump::read_port() {
    for (int i = 0; i < kReadBurst && (!to_stream_pending() || to_port_pending()); ++i) {
        ssize_t n = ::read(plug_.port, buf_.data(), buf_.size());
        if (n == 0) return finish(End::network_removed);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return true;
            return finish(End::failed, plug_.name + ": " + std::strerror(errno));
        }
        std::string_view frame(buf_.data(), static_cast<std::size_t>(n));
        if (out_bytes_ >= kSpillBytes) {
            drop(kSpillFull, frame.size());
        } else {
            out_.push_back(encode(frame));
            out_bytes_ += out_.back().size();
        }
        if (!flush_to_stream() || !flush_to_port()) return false;
    }
    return true;
}

bool Pump::read_stream() {
    ssize_t n = ::read(plug_.in, buf_.data(), buf_.size());
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return true;
        return finish(End::failed, std::string("stdin: ") + std::strerror(errno));
    }
    if (n == 0) {
        if (decoder_.buffered() != 0 && !plug_.quiet) {
            std::fprintf(stderr, "ipnfs-cable: stdin ended inside a frame; %zu bytes discarded\n",
                         decoder_.buffered());
        }
        return finish(End::stream_closed);
    }
    decoder_.feed({buf_.data(), static_cast<std::size_t>(n)});
    return true;
}

void Pump::drop(int kind, std::size_t size) {
    ++counters_.dropped;
    if (plug_.quiet || !reported_.insert(kind).second) return;
    const char* name = plug_.name.c_str();
    if (kind == kEmptyFrame) {
        std::fprintf(stderr,
                     "ipnfs-cable: %s: skipped an empty frame (further ones are only counted)\n",
                     name);
    } else if (kind == kSpillFull) {
        std::fprintf(stderr,
                     "ipnfs-cable: %s: the network and the far side wait for each other and %zu "
                     "bytes are held for the stream: dropping frames from the network (further "
                     "such drops are only counted)\n",
                     name, out_bytes_);
    } else {
        std::fprintf(stderr,
                     "ipnfs-cable: %s: the network refused a %zu-byte frame: %s (further such "
                     "frames are only counted)\n",
                     name, size, std::strerror(kind));
    }
}

}  // namespace

Outcome run(const Plug& plug, Counters& counters) {
    // stdout must not block (see Pump); its flags are shared with whoever
    // gave us the descriptor, so they are put back afterwards.
    int flags = fcntl(plug.out, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(plug.out, F_SETFL, flags | O_NONBLOCK);
    Outcome outcome = Pump(plug, counters).run();
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(plug.out, F_SETFL, flags);
    return outcome;
}

}  // namespace ipnfs::cable
