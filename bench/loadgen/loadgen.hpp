// What every part of ipnfs-loadgen shares: clocks, options, the messages
// (an Ethernet frame, then a sequence number, the send time and a kind), the
// Endpoint interface every contender implements, and the JSON output helpers.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ipnfs_loadgen {

// ---------------------------------------------------------------- basics

[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "ipnfs-loadgen: %s\n", what.c_str());
    std::exit(1);
}

[[noreturn]] inline void die_errno(const std::string& what) {
    die(what + ": " + std::strerror(errno));
}

inline std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline void sleep_until(std::int64_t t) {
    timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

inline void sleep_ms(int ms) {
    sleep_until(now_ns() + std::int64_t{ms} * 1'000'000);
}

struct Options {
    std::map<std::string, std::string> values;
    [[nodiscard]] bool has(const std::string& k) const { return values.contains(k); }
    [[nodiscard]] std::string str(const std::string& k, const std::string& def = "") const {
        auto it = values.find(k);
        return it == values.end() ? def : it->second;
    }
    [[nodiscard]] long num(const std::string& k, long def) const {
        auto it = values.find(k);
        return it == values.end() ? def : std::strtol(it->second.c_str(), nullptr, 10);
    }
    [[nodiscard]] double real(const std::string& k, double def) const {
        auto it = values.find(k);
        return it == values.end() ? def : std::strtod(it->second.c_str(), nullptr);
    }
};

inline Options parse(int argc, char** argv) {
    Options o;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("--", 0) != 0) die("unexpected argument " + a);
        a = a.substr(2);
        static const char* flags[] = {"framed", "lossy", "learn"};
        if (std::find_if(std::begin(flags), std::end(flags),
                         [&](const char* f) { return a == f; }) != std::end(flags)) {
            o.values[a] = "1";
        } else if (i + 1 < argc) {
            o.values[a] = argv[++i];
        } else {
            die("--" + a + " needs a value");
        }
    }
    return o;
}

// ---------------------------------------------------------------- messages

enum MsgKind : std::uint32_t { kData = 0, kMarker = 1, kHello = 2 };

struct Header {
    std::uint64_t seq;
    std::int64_t sent_ns;
    std::uint32_t kind;
};

constexpr std::size_t kEth = 14;
constexpr std::size_t kMinSize = kEth + sizeof(Header);
using Mac = std::array<std::uint8_t, 6>;
constexpr Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

inline Mac mac_of(unsigned host) {
    return {0x02,
            0x00,
            0x00,
            0x00,
            static_cast<std::uint8_t>(host >> 8),
            static_cast<std::uint8_t>(host)};
}

inline void write_frame(std::byte* m, const Mac& dst, const Mac& src) {
    std::memcpy(m, dst.data(), 6);
    std::memcpy(m + 6, src.data(), 6);
    m[12] = std::byte{0x88};
    m[13] = std::byte{0xb5};
}

inline void write_header(std::byte* m, std::uint64_t seq, std::int64_t sent, std::uint32_t kind) {
    Header h{seq, sent, kind};
    std::memcpy(m + kEth, &h, sizeof h);
}

inline Header read_header(const std::byte* m, std::size_t len) {
    Header h{};
    if (len >= kMinSize) {
        std::memcpy(&h, m + kEth, sizeof h);
    } else {
        h.kind = kHello;  // too short to be ours: ignored
    }
    return h;
}

// ---------------------------------------------------------------- endpoints

using OnMessage = std::function<void(const std::byte*, std::size_t)>;

// One side of a contender.  send() blocks where the contender makes senders
// wait (lossless) and drops where it does not; try_send() never blocks and
// never reports (markers are resent until every receiver has one).
class Endpoint {
  public:
    virtual ~Endpoint() = default;
    virtual void send(const std::byte* m, std::size_t len) = 0;
    // count messages of len bytes, back to back in m.
    virtual void send_batch(const std::byte* m, std::size_t len, int count) {
        for (int i = 0; i < count; ++i) send(m + i * len, len);
    }
    virtual void try_send(const std::byte* m, std::size_t len) = 0;
    // Waits for input and hands every message of it to `on`; false at end of
    // file or on an error.
    virtual bool receive(std::span<std::byte> buf, const OnMessage& on) = 0;
    // The receiver is done: senders must no longer wait for it.
    virtual void close() = 0;

    // What event-loop receivers (--receiver, receivers.cpp) need: the
    // descriptor they wait on (-1: this endpoint has none), how much one read
    // asks for, and the messages one read returned.
    [[nodiscard]] virtual int event_fd() const { return -1; }
    [[nodiscard]] virtual std::size_t read_size(std::size_t buf) const { return buf; }
    virtual void parse(const std::byte* m, std::size_t n, const OnMessage& on) { on(m, n); }
    // One take that does not wait: read() on event_fd() (made non-blocking by
    // the caller) unless the endpoint reads otherwise (ZeroMQ).
    enum class Took { message, again, end };
    virtual Took take(std::span<std::byte> buf, const OnMessage& on) {
        for (;;) {
            ssize_t n = ::read(event_fd(), buf.data(), read_size(buf.size()));
            if (n > 0) {
                parse(buf.data(), static_cast<std::size_t>(n), on);
                return Took::message;
            }
            if (n == 0) return Took::end;
            if (errno == EAGAIN) return Took::again;
            if (errno != EINTR) return Took::end;
        }
    }
    // Whether the receiver must take until Took::again after every wake-up
    // whatever epoll was asked for (a ZeroMQ socket's descriptor only ever
    // signals an edge).
    [[nodiscard]] virtual bool edge_only() const { return false; }
};

class FileEndpoint : public Endpoint {
  public:
    FileEndpoint(const std::string& path, int flags, std::size_t read_size)
        : read_size_(read_size) {
        fd_ = ::open(path.c_str(), flags | O_CLOEXEC);
        if (fd_ < 0) die_errno("open " + path);
    }
    ~FileEndpoint() override { close(); }

    void send(const std::byte* m, std::size_t len) override {
        while (::write(fd_, m, len) < 0) {
            if (errno != EINTR && errno != EAGAIN) die_errno("write");
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        if (!nonblocking_) {
            ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
            nonblocking_ = true;
        }
        [[maybe_unused]] ssize_t n = ::write(fd_, m, len);
    }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            ssize_t n = ::read(fd_, buf.data(), std::min(read_size_, buf.size()));
            if (n > 0) {
                on(buf.data(), static_cast<std::size_t>(n));
                return true;
            }
            if (n == 0) return false;
            if (errno != EINTR) return false;
        }
    }
    void close() override {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] int event_fd() const override { return fd_; }
    [[nodiscard]] std::size_t read_size(std::size_t buf) const override {
        return std::min(read_size_, buf);
    }

  protected:
    int fd_ = -1;
    std::size_t read_size_;
    bool nonblocking_ = false;
};

// Pipes and datagram sockets: the sender writes each message to each
// receiver's descriptor.  Lossy: without blocking, a full buffer drops that
// receiver's copy.
class FanOut final : public Endpoint {
  public:
    FanOut(std::vector<int> fds, bool lossy) : fds_(std::move(fds)), lossy_(lossy) {
        if (lossy_) {
            for (int fd : fds_) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
        }
    }
    ~FanOut() override { close(); }
    void send(const std::byte* m, std::size_t len) override {
        for (int fd : fds_) {
            while (::write(fd, m, len) < 0) {
                if (errno == EAGAIN && lossy_) break;  // dropped
                if (errno != EINTR) break;             // that receiver is gone
            }
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        if (!lossy_) {
            for (int fd : fds_) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
            lossy_ = true;
        }
        for (int fd : fds_) [[maybe_unused]] ssize_t n = ::write(fd, m, len);
    }
    bool receive(std::span<std::byte>, const OnMessage&) override { return false; }
    void close() override {
        for (int fd : fds_) ::close(fd);
        fds_.clear();
    }

  private:
    std::vector<int> fds_;
    bool lossy_;
};

// ---------------------------------------------------------------- contenders

struct Setup {
    std::string kind;
    int n = 1;
    std::size_t size = 64;
    bool lossy = false;
    bool framed = false;
    bool learn = false;
    Options opt;
};

struct Wiring {
    std::unique_ptr<Endpoint> sender;
    std::vector<std::unique_ptr<Endpoint>> receivers;
};

using EndpointPair = std::pair<std::unique_ptr<Endpoint>, std::unique_ptr<Endpoint>>;

// One sender and N receivers, connected before anything is sent; and two
// endpoints that reach each other (ping-pong).  By --kind, from the table of
// contenders (contenders.cpp); each contender's file has its own.
Wiring wire_fanout(const Setup& s);
EndpointPair wire_pair(const Setup& s);

Wiring wire_ipnfs_fanout(const Setup& s);
EndpointPair wire_ipnfs_pair(const Setup& s);
// The sum of the `queued` column of an ipnfs network's stats.
long queued_total(const std::string& net);
Wiring wire_null_fuse_fanout(const Setup& s);
// nullfs has no path from a writer to a reader: its "one-way latency" is one
// write and one read back to back, its round trip two of each.
int null_pairs(const Setup& s, bool round_trip);
Wiring wire_pipes_fanout(const Setup& s);
EndpointPair wire_pipes_pair(const Setup& s);
Wiring wire_unix_dgram_fanout(const Setup& s);
EndpointPair wire_unix_dgram_pair(const Setup& s);
#ifdef IPNFS_BENCH_VDE
Wiring wire_vde_fanout(const Setup& s);
EndpointPair wire_vde_pair(const Setup& s);
#endif
#ifdef IPNFS_BENCH_ZMQ
Wiring wire_zmq_fanout(const Setup& s);
#endif

// ---------------------------------------------------------------- receivers

// How a receiver waits (--receiver): in read() (blocking, the default), in
// epoll_wait() on a non-blocking descriptor, level-triggered (one read per
// wake-up) or edge-triggered (reads until EAGAIN), or for an io_uring read.
enum class Wait { blocking, epoll_lt, epoll_et, uring };
Wait wait_of(const std::string& name);

// One receiver's way of taking messages from its endpoint.
class Receiver {
  public:
    virtual ~Receiver() = default;
    // As Endpoint::receive: at least one message to `on`, false at the end.
    virtual bool next(std::span<std::byte> buf, const OnMessage& on) = 0;
};
std::unique_ptr<Receiver> make_receiver(Endpoint& ep, Wait wait);

// ---------------------------------------------------------------- scenarios

// throughput (paced: latency; stalled > 0: stall) and pingpong.
int throughput(const Setup& s, bool paced, int stalled);
int pingpong(const Setup& s);

// ---------------------------------------------------------------- output

inline double percentile(std::vector<std::int64_t>& v, double p) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]) / 1000.0;  // microseconds
}

// "samples", the median, p90, p99 and the largest, in microseconds.
inline std::string latency_fields(std::vector<std::int64_t>& v) {
    char b[256];
    std::snprintf(b, sizeof b,
                  R"("samples":%zu,"p50_us":%.2f,"p90_us":%.2f,"p99_us":%.2f,"max_us":%.2f)",
                  v.size(), percentile(v, 0.50), percentile(v, 0.90), percentile(v, 0.99),
                  percentile(v, 1.0));
    return b;
}

inline std::string list(const std::vector<double>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        char b[64];
        std::snprintf(b, sizeof b, "%s%.1f", i ? "," : "", v[i]);
        out += b;
    }
    return out + "]";
}

}  // namespace ipnfs_loadgen
