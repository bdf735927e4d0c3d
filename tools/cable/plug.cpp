#include "plug.hpp"

#include <fcntl.h>
#include <ipnfs.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "bus/thread_safety.hpp"
#include "records.hpp"
#include "vde_stream.hpp"

namespace ipnfs::cable {
namespace {

// One framed read() of the port takes as many whole records as fit; the
// largest record (kMaxFrame) always fits, so none is ever cut.  Also the
// size of one read() of stdin.
constexpr std::size_t kReadBuffer = std::size_t{128} * 1024;
static_assert(kReadBuffer >= IPNFS_RECORD_SIZE(kMaxFrame));
// A framed write() carries frames from stdin up to this many bytes of
// records (a larger frame goes alone): under the kernel's smallest FUSE
// max_write, so the kernel never splits one.
constexpr std::size_t kWriteBatch = std::size_t{64} * 1024;
// Port reads per wakeup before stdout gets its turn again.
constexpr int kReadBurst = 16;
// What the cable holds for a full stdout while its own frame waits for the
// network (see ToStream); beyond it, frames from the port are dropped.
constexpr std::size_t kSpillBytes = 1 << 20;
// Drops::drop's report kinds that are no errno.
constexpr int kEmptyFrame = 0;
constexpr int kSpillFull = -1;
// Interrupts ToNetwork's waiting read or write when the cable ends.
constexpr int kWakeSignal = SIGUSR1;

// Errors of a port write that mean the port itself is unusable, not that
// the network refused this one frame.
bool fatal_write_error(int err) {
    return err == ENOTCONN || err == EIO || err == EBADF || err == ENODEV || err == ENOENT ||
           err == ENXIO;
}

// Counts drops and reports the first of each kind on stderr.
class Drops {
  public:
    Drops(const Plug& plug, std::uint64_t& count) : plug_(plug), count_(count) {}
    void drop(int kind, std::size_t size, std::size_t held = 0);

  private:
    const Plug& plug_;
    std::uint64_t& count_;
    std::set<int> reported_;
};

void Drops::drop(int kind, std::size_t size, std::size_t held) {
    ++count_;
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
                     name, held);
    } else {
        std::fprintf(stderr,
                     "ipnfs-cable: %s: the network refused a %zu-byte frame: %s (further such "
                     "frames are only counted)\n",
                     name, size, std::strerror(kind));
    }
}

// What the two directions share.
class Shared {
  public:
    explicit Shared(int wake_fd) : wake_fd_(wake_fd) {}

    // The first call decides the outcome; both directions then stop.
    void finish(End end, std::string why = {}) EXCLUDES(mu_) {
        {
            MutexLock lock(mu_);
            if (ended_) return;
            outcome_ = {end, std::move(why)};
            ended_ = true;
        }
        wake();
    }
    [[nodiscard]] bool ended() const { return ended_; }
    Outcome outcome() EXCLUDES(mu_) {
        MutexLock lock(mu_);
        return outcome_;
    }
    // Wakes ToStream's poll.
    void wake() const {
        std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);  // full: it is awake anyway
    }
    void drain_wake() const {
        std::uint64_t count = 0;
        [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
    }
    [[nodiscard]] int wake_fd() const { return wake_fd_; }

    // ToNetwork is inside a write to the port (its frame may be waiting).
    std::atomic<bool> writing{false};
    // ToStream polls without the port because stdout is full.  With
    // `writing`, a Dekker pair: whichever is set second sees the other, so
    // ToStream never sleeps on a full stdout while the frame waits.
    std::atomic<bool> stalled{false};

  private:
    int wake_fd_;
    Mutex mu_;  // either direction may end the cable first
    Outcome outcome_ GUARDED_BY(mu_);
    std::atomic<bool> ended_{false};  // set under mu_, read without it
};

// What each direction works with.  A direction's steps return false when
// the cable ends; finish() says why, once for both.
class Direction {
  public:  // inherited constructors keep the base's access
    Direction(const Plug& plug, Shared& shared, Counters& counters)
        : plug_(plug),
          shared_(shared),
          counters_(counters),
          drops_(plug, counters.dropped),
          buf_(kReadBuffer) {}

  protected:
    bool finish(End end, std::string why = {}) {
        shared_.finish(end, std::move(why));
        return false;
    }

    const Plug& plug_;
    Shared& shared_;
    Counters& counters_;
    Drops drops_;
    std::vector<char> buf_;
};

// stdin into the network, on a thread of its own.  Its writes block, so each
// frame takes its place in a lossless network's line of waiting writes and
// goes in in its turn however busy the network is.  A non-blocking write
// gets in only when nobody waits, so local writers that keep the line full
// would keep the cable out for as long as they do.
class ToNetwork : Direction {
  public:
    using Direction::Direction;

    void run() {
        while (!shared_.ended() && write_frames() && read_stream()) {
        }
    }

  private:
    bool write_frames();
    void batch_frames();
    bool read_stream();

    StreamDecoder decoder_;
    std::string batch_;  // records not yet written, whole
};

// Moves decoded frames into the batch, up to kWriteBatch.
void ToNetwork::batch_frames() {
    while (auto frame = decoder_.front()) {
        if (frame->empty()) {  // VDE never sends one; a message of 0 bytes means nothing
            drops_.drop(kEmptyFrame, 0);
        } else if (batch_.empty() ||
                   batch_.size() + IPNFS_RECORD_SIZE(frame->size()) <= kWriteBatch) {
            append_record(batch_, *frame);
        } else {
            return;
        }
        decoder_.pop();
    }
}

// A framed write sends its records in order and stops short before one that
// would wait (only the first may) or that the network refuses: the rest is
// written again, so a refusal always comes for the batch's first record.
bool ToNetwork::write_frames() {
    for (batch_frames(); !batch_.empty(); batch_frames()) {
        if (shared_.ended()) return false;
        shared_.writing = true;
        if (shared_.stalled) shared_.wake();
        ssize_t n = ::write(plug_.port_writes, batch_.data(), batch_.size());
        int err = errno;
        shared_.writing = false;
        if (n < 0) {
            if (err == EINTR) continue;  // kWakeSignal: ended() says whether to stop
            if (err == EPIPE) return finish(End::network_removed);
            if (fatal_write_error(err)) {
                return finish(End::failed, plug_.name + ": " + std::strerror(err));
            }
            FirstRecord refused = first_record(batch_);
            drops_.drop(err, refused.len);
            n = static_cast<ssize_t>(refused.size);
        } else {
            counters_.in += records_in(batch_, static_cast<std::size_t>(n));
        }
        batch_.erase(0, static_cast<std::size_t>(n));
    }
    return true;
}

bool ToNetwork::read_stream() {
    ssize_t n = ::read(plug_.in, buf_.data(), buf_.size());
    if (n < 0) {
        if (errno == EINTR) return true;
        if (errno == EAGAIN) {  // stdin is stdout's open file (a socket), made non-blocking
            pollfd fd{plug_.in, POLLIN, 0};
            ::poll(&fd, 1, -1);
            return true;
        }
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

// The network onto stdout, on the calling thread, never waiting in a write:
// a full stdout stops only the port being read, so two cables back to back
// (dpipe) never both sit in a write to each other.
//
// One cycle remains: a lossless network takes writes in order, so our frame
// can wait behind a local writer that waits for room in our port's queue,
// while the far side's cable is held the same way and each stdout is full
// because the other's frame waits.  So while our own frame waits, the port
// is read even if stdout is full, into memory up to kSpillBytes and past
// that into the bin (counted): the local writer goes on, our frame goes in,
// and the far side moves too.
class ToStream : Direction {
  public:
    using Direction::Direction;

    void run();

  private:
    bool flush();
    void hold(std::string_view frame);
    bool read_port();
    [[nodiscard]] bool stopped() const { return plug_.stop != nullptr && *plug_.stop != 0; }
    [[nodiscard]] bool pending() const { return held() != 0; }
    [[nodiscard]] std::size_t held() const { return out_.size() - out_at_; }

    // Encoded frames for stdout, written together: out_[out_at_..] is held.
    std::string out_;
    std::size_t out_at_ = 0;
    // The encoded size of each frame held, for counting frames out.
    std::deque<std::size_t> frame_sizes_;
    std::size_t front_written_ = 0;  // bytes of the first held frame written
};

void ToStream::run() {
    while (!shared_.ended()) {
        if (stopped()) {
            finish(End::signalled);
            return;
        }
        if (!flush()) return;
        bool full = pending();
        shared_.stalled = full;
        bool read = !full || shared_.writing;
        pollfd fds[3] = {{read ? plug_.port : -1, POLLIN, 0},
                         {full ? plug_.out : -1, POLLOUT, 0},
                         {shared_.wake_fd(), POLLIN, 0}};
        int ready = ::poll(fds, 3, -1);
        shared_.stalled = false;
        if (ready < 0) {
            if (errno == EINTR) continue;
            finish(End::failed, std::string("poll: ") + std::strerror(errno));
            return;
        }
        for (const auto& fd : fds) {
            if ((fd.revents & POLLNVAL) != 0) {
                finish(End::failed, "a descriptor is not open");
                return;
            }
        }
        if ((fds[2].revents & POLLIN) != 0) shared_.drain_wake();
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_port()) return;
    }
}

bool ToStream::flush() {
    while (pending()) {
        ssize_t n = ::write(plug_.out, out_.data() + out_at_, held());
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return true;
            if (errno == EPIPE) return finish(End::stream_closed);
            return finish(End::failed, std::string("stdout: ") + std::strerror(errno));
        }
        out_at_ += static_cast<std::size_t>(n);
        front_written_ += static_cast<std::size_t>(n);
        while (!frame_sizes_.empty() && front_written_ >= frame_sizes_.front()) {
            front_written_ -= frame_sizes_.front();
            frame_sizes_.pop_front();
            ++counters_.out;
        }
    }
    out_.clear();
    out_at_ = 0;
    return true;
}

void ToStream::hold(std::string_view frame) {
    if (held() >= kSpillBytes) {
        drops_.drop(kSpillFull, frame.size(), held());
        return;
    }
    if (out_at_ > out_.size() / 2) {  // keep what is held at the front
        out_.erase(0, out_at_);
        out_at_ = 0;
    }
    auto prefix = length_prefix(frame.size());
    out_.append(prefix.data(), prefix.size());
    out_.append(frame);
    frame_sizes_.push_back(prefix.size() + frame.size());
}

bool ToStream::read_port() {
    for (int i = 0; i < kReadBurst && (!pending() || shared_.writing); ++i) {
        ssize_t n = ::read(plug_.port, buf_.data(), buf_.size());
        if (n == 0) return finish(End::network_removed);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return true;
            return finish(End::failed, plug_.name + ": " + std::strerror(errno));
        }
        for_each_frame(
            {buf_.data(), static_cast<std::size_t>(n)},
            [this](std::string_view frame) { hold(frame); },
            [this](std::size_t len) { drops_.drop(EMSGSIZE, len); });
        if (!flush()) return false;
    }
    return true;
}

void ignore_signal(int /*sig*/) {}

// Runs ToNetwork on its own thread with the terminating signals blocked, so
// they reach the caller's poll; ends it by interrupting whatever read or
// write it waits in.
class ToNetworkThread {
  public:
    ToNetworkThread(const Plug& plug, Shared& shared) {
        struct sigaction sa {};
        sa.sa_handler = ignore_signal;  // no SA_RESTART: the wait fails with EINTR
        sigemptyset(&sa.sa_mask);
        sigaction(kWakeSignal, &sa, &old_action_);
        sigset_t block;
        sigset_t old;
        sigemptyset(&block);
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, sig);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        try {
            thread_ = std::thread([&plug, &shared, this] {
                ToNetwork(plug, shared, counters_).run();
                done_ = true;
            });
        } catch (const std::system_error& e) {
            shared.finish(End::failed, std::string("cannot start a thread: ") + e.what());
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    ToNetworkThread(const ToNetworkThread&) = delete;
    ToNetworkThread& operator=(const ToNetworkThread&) = delete;
    ~ToNetworkThread() { sigaction(kWakeSignal, &old_action_, nullptr); }

    // After Shared::finish: the signal may come just before the thread
    // enters its wait, so it is sent until the thread is out.
    Counters join() {
        if (!thread_.joinable()) return counters_;
        while (!done_) {
            pthread_kill(thread_.native_handle(), kWakeSignal);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        thread_.join();
        return counters_;
    }

  private:
    struct sigaction old_action_ {};
    Counters counters_;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

}  // namespace

Outcome run(const Plug& plug, Counters& counters) {
    int on = 1;
    if (::ioctl(plug.port, IPNFS_IOC_SET_FRAMED, &on) != 0 ||
        ::ioctl(plug.port_writes, IPNFS_IOC_SET_FRAMED, &on) != 0) {
        return {End::failed, plug.name + ": framed mode: " + std::strerror(errno)};
    }
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) return {End::failed, std::string("eventfd: ") + std::strerror(errno)};
    // stdout must not block (see ToStream); its flags are shared with
    // whoever gave us the descriptor, so they are put back afterwards.
    int flags = fcntl(plug.out, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(plug.out, F_SETFL, flags | O_NONBLOCK);
    Shared shared(wake);
    {
        ToNetworkThread to_network(plug, shared);
        ToStream(plug, shared, counters).run();
        Counters in = to_network.join();
        counters.in = in.in;
        counters.dropped += in.dropped;
    }
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(plug.out, F_SETFL, flags);
    ::close(wake);
    return shared.outcome();
}

}  // namespace ipnfs::cable
