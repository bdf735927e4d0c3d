// ipnfs-loadgen: one load, one contender, one line of JSON.  bench/run.sh
// runs it for every contender and load and makes the tables.
//
//   ipnfs-loadgen SCENARIO --kind KIND [options]
//
// Scenarios:
//   throughput  one sender to N receivers as fast as it can for --seconds
//   latency     one sender to N receivers, paced at --rate messages/s; each
//               receiver takes now - (send time carried in the message)
//   pingpong    two endpoints bounce one message; round-trip times
//   stall       throughput with the last --stalled receivers never reading,
//               the daemon's resident memory sampled all along
//
// Kinds (contenders):
//   ipnfs   --net DIR: sender on port --from (0), receivers on ports 1..N
//           (or --to P,P,...); --framed sends --batch records per write and
//           reads 64 KiB of records per read; --learn makes it a learned
//           unicast on a switch network (receivers announce their MACs first,
//           the sender addresses the first receiver)
//   nullfs  --file PATH on bench/nullfs: writes answered "done", reads with
//           zeros; receivers read until the sender stops (nothing is carried)
//   pipe    one pipe per receiver; the sender writes each message to each
//   unix    one AF_UNIX SOCK_DGRAM socket pair per receiver; the sender
//           sends each message to each
//   vde     --sock DIR of a running vde_switch; every endpoint is a
//           libvdeplug connection (only if built with libvdeplug)
//
// Common options: --n N receivers (1), --size BYTES per message (64),
// --lossy (pipes and sockets then send without blocking and drop on a full
// buffer; ipnfs and vde keep whatever mode the network has), --seconds S (1),
// --pid PID of the daemon to measure (CPU from /proc/PID/stat, peak RSS from
// VmHWM after resetting it through clear_refs).
//
// Every message looks like an Ethernet frame (broadcast destination, a
// locally administered source, ethertype 0x88b5) so that switches forward it;
// after the 14-byte header come a sequence number, the send time and a kind.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "include/ipnfs.h"

#ifdef IPNFS_BENCH_VDE
extern "C" {  // the header has no C++ guard
#include <libvdeplug.h>
}
#endif

namespace {

// ---------------------------------------------------------------- basics

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "ipnfs-loadgen: %s\n", what.c_str());
    std::exit(1);
}

[[noreturn]] void die_errno(const std::string& what) {
    die(what + ": " + std::strerror(errno));
}

std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void sleep_until(std::int64_t t) {
    timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
}

void sleep_ms(int ms) {
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

Options parse(int argc, char** argv) {
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

Mac mac_of(unsigned host) {
    return {0x02,
            0x00,
            0x00,
            0x00,
            static_cast<std::uint8_t>(host >> 8),
            static_cast<std::uint8_t>(host)};
}

void write_frame(std::byte* m, const Mac& dst, const Mac& src) {
    std::memcpy(m, dst.data(), 6);
    std::memcpy(m + 6, src.data(), 6);
    m[12] = std::byte{0x88};
    m[13] = std::byte{0xb5};
}

void write_header(std::byte* m, std::uint64_t seq, std::int64_t sent, std::uint32_t kind) {
    Header h{seq, sent, kind};
    std::memcpy(m + kEth, &h, sizeof h);
}

Header read_header(const std::byte* m, std::size_t len) {
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

  protected:
    int fd_ = -1;
    std::size_t read_size_;
    bool nonblocking_ = false;
};

// An ipnfs port file in framed mode: a batch of records per write, as many
// records as fit per read.
class FramedEndpoint final : public FileEndpoint {
  public:
    FramedEndpoint(const std::string& path, int flags) : FileEndpoint(path, flags, 65536) {
        int one = 1;
        if (::ioctl(fd_, IPNFS_IOC_SET_FRAMED, &one) != 0) die_errno("IPNFS_IOC_SET_FRAMED");
    }

    void send(const std::byte* m, std::size_t len) override { send_batch(m, len, 1); }
    void send_batch(const std::byte* m, std::size_t len, int count) override {
        std::size_t rec = IPNFS_RECORD_SIZE(len);
        out_.resize(rec * count);
        for (int i = 0; i < count; ++i) {
            ipnfs_record h{};
            h.len = static_cast<std::uint32_t>(len);
            h.kind = IPNFS_DATA;
            h.version = IPNFS_FRAME_VERSION;
            std::memcpy(out_.data() + i * rec, &h, sizeof h);
            std::memcpy(out_.data() + i * rec + sizeof h, m + i * len, len);
        }
        // A lossless network may take the first records only: go on from there.
        std::size_t done = 0;
        while (done < out_.size()) {
            ssize_t n = ::write(fd_, out_.data() + done, out_.size() - done);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                die_errno("framed write");
            }
            done += static_cast<std::size_t>(n);
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        std::vector<std::byte> rec(IPNFS_RECORD_SIZE(len));
        ipnfs_record h{};
        h.len = static_cast<std::uint32_t>(len);
        h.version = IPNFS_FRAME_VERSION;
        std::memcpy(rec.data(), &h, sizeof h);
        std::memcpy(rec.data() + sizeof h, m, len);
        FileEndpoint::try_send(rec.data(), rec.size());
    }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n == 0) return false;
            if (n < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            std::size_t at = 0;
            while (at + sizeof(ipnfs_record) <= static_cast<std::size_t>(n)) {
                ipnfs_record h{};
                std::memcpy(&h, buf.data() + at, sizeof h);
                if (h.kind == IPNFS_DATA) on(buf.data() + at + sizeof h, h.len);
                at += IPNFS_RECORD_SIZE(h.len);
            }
            return true;
        }
    }

  private:
    std::vector<std::byte> out_;
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

// A byte stream carrying fixed-size messages (a pipe): reads whole ones.
class StreamReader final : public Endpoint {
  public:
    StreamReader(int rfd, int wfd, std::size_t size) : rfd_(rfd), wfd_(wfd), size_(size) {}
    ~StreamReader() override { close(); }
    void send(const std::byte* m, std::size_t len) override {
        std::size_t done = 0;
        while (done < len) {
            ssize_t n = ::write(wfd_, m + done, len - done);
            if (n < 0) {
                if (errno == EINTR) continue;
                return;
            }
            done += static_cast<std::size_t>(n);
        }
    }
    void try_send(const std::byte* m, std::size_t len) override { send(m, len); }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        std::size_t got = 0;
        while (got < size_) {
            ssize_t n = ::read(rfd_, buf.data() + got, size_ - got);
            if (n == 0) return false;
            if (n < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            got += static_cast<std::size_t>(n);
        }
        on(buf.data(), size_);
        return true;
    }
    void close() override {
        if (rfd_ >= 0) ::close(rfd_);
        if (wfd_ >= 0) ::close(wfd_);
        rfd_ = wfd_ = -1;
    }

  private:
    int rfd_;
    int wfd_;
    std::size_t size_;
};

class SocketEndpoint final : public Endpoint {
  public:
    explicit SocketEndpoint(int fd) : fd_(fd) {}
    ~SocketEndpoint() override { close(); }
    void send(const std::byte* m, std::size_t len) override {
        while (::send(fd_, m, len, 0) < 0 && errno == EINTR) {
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        [[maybe_unused]] ssize_t n = ::send(fd_, m, len, MSG_DONTWAIT);
    }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
            if (n >= 0) {
                on(buf.data(), static_cast<std::size_t>(n));
                return true;
            }
            if (errno != EINTR) return false;
        }
    }
    void close() override {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

#ifdef IPNFS_BENCH_VDE
class VdeEndpoint final : public Endpoint {
  public:
    explicit VdeEndpoint(const std::string& sock) {
        std::string url = "vde://" + sock;
        vde_open_args args{};
        conn_ = vde_open(url.data(), const_cast<char*>("ipnfs-loadgen"), &args);
        if (conn_ == nullptr) die_errno("vde_open " + url);
    }
    ~VdeEndpoint() override { close(); }
    void send(const std::byte* m, std::size_t len) override {
        while (vde_send(conn_, m, len, 0) < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ENOBUFS) return;
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        [[maybe_unused]] ssize_t n = vde_send(conn_, m, len, MSG_DONTWAIT);
    }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            ssize_t n = vde_recv(conn_, buf.data(), buf.size(), 0);
            if (n > 0) {
                on(buf.data(), static_cast<std::size_t>(n));
                return true;
            }
            if (n == 0 || errno != EINTR) return false;
        }
    }
    void close() override {
        if (conn_ != nullptr) vde_close(conn_);
        conn_ = nullptr;
    }

  private:
    VDECONN* conn_ = nullptr;
};
#endif

// ---------------------------------------------------------------- the daemon

struct DaemonProbe {
    pid_t pid = 0;
    std::int64_t cpu_ticks0 = 0;
    long switches0 = 0;

    static std::string slurp(const std::string& path) {
        std::string out;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return out;
        char buf[4096];
        ssize_t n = 0;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
        ::close(fd);
        return out;
    }
    [[nodiscard]] std::int64_t cpu_ticks() const {
        std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
        auto close = s.rfind(')');
        if (close == std::string::npos) return 0;
        // After "pid (comm)": state is field 3; utime and stime are 14 and 15.
        std::vector<std::string> f;
        std::size_t at = close + 2;
        while (at < s.size()) {
            auto sp = s.find(' ', at);
            if (sp == std::string::npos) sp = s.size();
            f.push_back(s.substr(at, sp - at));
            at = sp + 1;
        }
        if (f.size() < 13) return 0;
        return std::strtoll(f[11].c_str(), nullptr, 10) + std::strtoll(f[12].c_str(), nullptr, 10);
    }
    [[nodiscard]] long status_kb(const char* field) const {
        std::string s = slurp("/proc/" + std::to_string(pid) + "/status");
        auto at = s.find(field);
        if (at == std::string::npos) return 0;
        return std::strtol(s.c_str() + at + std::strlen(field) + 1, nullptr, 10);
    }
    void begin() {
        if (pid == 0) return;
        // "5": the peak resident set (VmHWM) starts again from the current one.
        int fd = ::open(("/proc/" + std::to_string(pid) + "/clear_refs").c_str(), O_WRONLY);
        if (fd >= 0) {
            [[maybe_unused]] ssize_t n = ::write(fd, "5", 1);
            ::close(fd);
        }
        cpu_ticks0 = cpu_ticks();
        switches0 = switches();
    }
    // Context switches of all its threads: how often the daemon slept and
    // was woken (libfuse's workers never exit, so none is lost).
    [[nodiscard]] long switches() const {
        if (pid == 0) return 0;
        std::string dir = "/proc/" + std::to_string(pid) + "/task";
        long total = 0;
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) return 0;
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::string st = slurp(dir + "/" + e->d_name + "/status");
            for (const char* f : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
                auto at = st.find(f);
                if (at != std::string::npos) {
                    total += std::strtol(st.c_str() + at + std::strlen(f), nullptr, 10);
                }
            }
        }
        ::closedir(d);
        return total;
    }
    [[nodiscard]] double cpu_seconds() const {
        if (pid == 0) return 0;
        return static_cast<double>(cpu_ticks() - cpu_ticks0) /
               static_cast<double>(sysconf(_SC_CLK_TCK));
    }
};

// Samples the daemon's resident set while a run goes on.
class RssSampler {
  public:
    RssSampler(const DaemonProbe& probe, int period_ms) : probe_(probe) {
        if (probe_.pid == 0) return;
        thread_ = std::thread([this, period_ms] {
            while (!stop_.load()) {
                long kb = probe_.status_kb("VmRSS:");
                max_kb_ = std::max(max_kb_.load(), kb);
                {
                    std::lock_guard lock(mu_);
                    series_.push_back(kb);
                }
                sleep_ms(period_ms);
            }
        });
    }
    ~RssSampler() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] long max_kb() const { return max_kb_; }
    [[nodiscard]] std::vector<long> series() {
        std::lock_guard lock(mu_);
        return series_;
    }

  private:
    const DaemonProbe& probe_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<long> max_kb_{0};
    std::mutex mu_;
    std::vector<long> series_;
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

// Receivers in ipnfs mode: ports 1..N unless --to lists them.
std::vector<int> receiver_ports(const Setup& s) {
    std::vector<int> ports;
    std::string to = s.opt.str("to");
    if (to.empty()) {
        for (int i = 1; i <= s.n; ++i) ports.push_back(i);
        return ports;
    }
    std::size_t at = 0;
    while (at < to.size()) {
        auto comma = to.find(',', at);
        if (comma == std::string::npos) comma = to.size();
        ports.push_back(std::atoi(to.substr(at, comma - at).c_str()));
        at = comma + 1;
    }
    return ports;
}

struct Wiring {
    std::unique_ptr<Endpoint> sender;
    std::vector<std::unique_ptr<Endpoint>> receivers;
};

std::unique_ptr<Endpoint> ipnfs_port(const Setup& s, int port, int flags) {
    std::string path = s.opt.str("net") + "/port" + std::to_string(port);
    if (s.framed) return std::make_unique<FramedEndpoint>(path, flags);
    return std::make_unique<FileEndpoint>(path, flags, s.size);
}

// One sender and N receivers, connected before anything is sent.
Wiring wire_fanout(const Setup& s) {
    Wiring w;
    if (s.kind == "ipnfs") {
        if (!s.opt.has("net")) die("ipnfs needs --net DIR");
        for (int p : receiver_ports(s)) {
            w.receivers.push_back(ipnfs_port(s, p, s.learn ? O_RDWR : O_RDONLY));
        }
        w.sender = ipnfs_port(s, static_cast<int>(s.opt.num("from", 0)), O_WRONLY);
    } else if (s.kind == "nullfs") {
        std::string file = s.opt.str("file");
        for (int i = 0; i < s.n; ++i) {
            w.receivers.push_back(std::make_unique<FileEndpoint>(file, O_RDONLY, s.size));
        }
        w.sender = std::make_unique<FileEndpoint>(file, O_WRONLY, s.size);
    } else if (s.kind == "pipe") {
        std::vector<int> wfds;
        for (int i = 0; i < s.n; ++i) {
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) die_errno("pipe2");
            w.receivers.push_back(std::make_unique<StreamReader>(p[0], -1, s.size));
            wfds.push_back(p[1]);
        }
        w.sender = std::make_unique<FanOut>(std::move(wfds), s.lossy);
    } else if (s.kind == "unix") {
        std::vector<int> wfds;
        for (int i = 0; i < s.n; ++i) {
            int sv[2];
            if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
                die_errno("socketpair");
            }
            w.receivers.push_back(std::make_unique<SocketEndpoint>(sv[0]));
            wfds.push_back(sv[1]);
        }
        w.sender = std::make_unique<FanOut>(std::move(wfds), s.lossy);
#ifdef IPNFS_BENCH_VDE
    } else if (s.kind == "vde") {
        for (int i = 0; i < s.n; ++i) {
            w.receivers.push_back(std::make_unique<VdeEndpoint>(s.opt.str("sock")));
        }
        w.sender = std::make_unique<VdeEndpoint>(s.opt.str("sock"));
        sleep_ms(50);  // the switch finishes attaching the ports
#endif
    } else {
        die("unknown --kind " + s.kind);
    }
    return w;
}

// Two endpoints that reach each other (ping-pong).
std::pair<std::unique_ptr<Endpoint>, std::unique_ptr<Endpoint>> wire_pair(const Setup& s) {
    if (s.kind == "ipnfs") {
        return {ipnfs_port(s, 0, O_RDWR), ipnfs_port(s, 1, O_RDWR)};
    }
    if (s.kind == "pipe") {
        int ab[2];
        int ba[2];
        if (::pipe2(ab, O_CLOEXEC) != 0 || ::pipe2(ba, O_CLOEXEC) != 0) die_errno("pipe2");
        return {std::make_unique<StreamReader>(ba[0], ab[1], s.size),
                std::make_unique<StreamReader>(ab[0], ba[1], s.size)};
    }
    if (s.kind == "unix") {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) die_errno("socketpair");
        return {std::make_unique<SocketEndpoint>(sv[0]), std::make_unique<SocketEndpoint>(sv[1])};
    }
#ifdef IPNFS_BENCH_VDE
    if (s.kind == "vde") {
        auto a = std::make_unique<VdeEndpoint>(s.opt.str("sock"));
        auto b = std::make_unique<VdeEndpoint>(s.opt.str("sock"));
        sleep_ms(50);
        return {std::move(a), std::move(b)};
    }
#endif
    die("pingpong: unknown --kind " + s.kind);
}

// ---------------------------------------------------------------- output

double percentile(std::vector<std::int64_t>& v, double p) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]) / 1000.0;  // microseconds
}

// "samples", the median, p90, p99 and the largest, in microseconds.
std::string latency_fields(std::vector<std::int64_t>& v) {
    char b[256];
    std::snprintf(b, sizeof b,
                  R"("samples":%zu,"p50_us":%.2f,"p90_us":%.2f,"p99_us":%.2f,"max_us":%.2f)",
                  v.size(), percentile(v, 0.50), percentile(v, 0.90), percentile(v, 0.99),
                  percentile(v, 1.0));
    return b;
}

std::string list(const std::vector<double>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
        char b[64];
        std::snprintf(b, sizeof b, "%s%.1f", i ? "," : "", v[i]);
        out += b;
    }
    return out + "]";
}

// ---------------------------------------------------------------- scenarios

struct ReceiverResult {
    std::uint64_t count = 0;   // data messages taken
    std::uint64_t stray = 0;   // data messages a learned unicast should not have brought
    std::int64_t last_ns = 0;  // when the last data message arrived
    std::vector<std::int64_t> latency;
    std::vector<std::int64_t> sent_at;  // for --dump: when each of those was sent
};

// The run's shared clock and end.
struct Run {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};  // nullfs: nothing carries a marker
    std::atomic<int> done{0};
    std::int64_t start_ns = 0;
};

void receive_loop(Endpoint& ep, const Setup& s, Run& run, ReceiverResult& r, bool target,
                  bool latency) {
    std::vector<std::byte> buf(65536);
    ++run.ready;
    while (!run.go.load()) std::this_thread::yield();
    bool finished = false;
    const bool null = s.kind == "nullfs";
    OnMessage on = [&](const std::byte* m, std::size_t len) {
        Header h = read_header(m, len);
        if (h.kind == kMarker) {
            finished = true;
        } else if (h.kind == kData) {
            std::int64_t t = now_ns();
            if (!target) {
                ++r.stray;
                return;
            }
            ++r.count;
            r.last_ns = t;
            if (latency && !null) {
                r.latency.push_back(t - h.sent_ns);
                r.sent_at.push_back(h.sent_ns - run.start_ns);
            }
        }
    };
    while (!finished && !(null && run.stop.load())) {
        if (!ep.receive(buf, on)) break;
    }
    if (null) r.last_ns = now_ns();
    ep.close();
    ++run.done;
}

struct Traffic {
    std::vector<std::byte> frames;  // batch messages of `size` bytes each
    std::size_t size;
    int batch;
    Mac dst;
    Mac src;

    Traffic(std::size_t size_, int batch_, Mac dst_, Mac src_)
        : frames(size_ * batch_), size(size_), batch(batch_), dst(dst_), src(src_) {
        for (int i = 0; i < batch; ++i) write_frame(&frames[i * size], dst, src);
    }
    void stamp(int i, std::uint64_t seq, std::uint32_t kind = kData) {
        write_header(&frames[i * size], seq, now_ns(), kind);
    }
};

// Marker to every receiver, again and again, until all have left.
bool finish(Endpoint& sender, Traffic& t, Run& run, int receivers, double timeout_s) {
    std::int64_t deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
    std::vector<std::byte> marker(t.size);
    write_frame(marker.data(), kBroadcast, t.src);
    write_header(marker.data(), 0, 0, kMarker);
    while (run.done.load() < receivers) {
        if (now_ns() > deadline) return false;
        sender.try_send(marker.data(), marker.size());
        sleep_ms(2);
    }
    return true;
}

// The sum of the `queued` column of an ipnfs network's stats (its last).
long queued_total(const std::string& net) {
    std::string text = DaemonProbe::slurp(net + "/stats");
    long total = 0;
    bool table = false;
    std::size_t at = 0;
    while (at < text.size()) {
        auto eol = text.find('\n', at);
        if (eol == std::string::npos) eol = text.size();
        std::string line = text.substr(at, eol - at);
        at = eol + 1;
        if (line.rfind("port ", 0) == 0) {
            table = true;
            continue;
        }
        if (!table) continue;
        if (line.empty()) break;  // the table of ports ends; other sections follow
        auto last = line.find_last_of(' ');
        total += std::strtol(line.c_str() + last + 1, nullptr, 10);
    }
    return total;
}

// --dump FILE (latency): "receiver sent_us latency_us" per message, to see
// when the slow ones happened.
void dump_latency(const std::string& path, int receiver, const ReceiverResult& r) {
    FILE* f = std::fopen(path.c_str(), receiver == 0 ? "w" : "a");
    if (f == nullptr) die_errno("open " + path);
    for (std::size_t k = 0; k < r.latency.size(); ++k) {
        std::fprintf(f, "%d %.1f %.1f\n", receiver, static_cast<double>(r.sent_at[k]) / 1e3,
                     static_cast<double>(r.latency[k]) / 1e3);
    }
    std::fclose(f);
}

int default_batch(const Setup& s) {
    if (!s.framed) return 1;
    // Records fitting in 32 KiB: far below the kernel's FUSE write chunk, so
    // a batch is one write request.
    long b = s.opt.num("batch", 0);
    if (b > 0) return static_cast<int>(b);
    return static_cast<int>(std::clamp<std::size_t>(32768 / IPNFS_RECORD_SIZE(s.size), 1, 256));
}

int throughput(const Setup& s, bool paced, int stalled) {
    Wiring w = wire_fanout(s);
    Run run;
    DaemonProbe probe{static_cast<pid_t>(s.opt.num("pid", 0))};
    const int n = static_cast<int>(w.receivers.size());
    const int active = n - stalled;
    std::vector<ReceiverResult> results(n);

    Mac src = mac_of(1);
    Mac dst = kBroadcast;
    if (s.learn) {
        // Each receiver announces its address, the switch learns its port;
        // the sender then addresses the first receiver only.
        std::vector<std::byte> hello(s.size);
        for (int i = 0; i < n; ++i) {
            write_frame(hello.data(), kBroadcast, mac_of(0x100 + i));
            write_header(hello.data(), 0, now_ns(), kHello);
            w.receivers[i]->send(hello.data(), hello.size());
        }
        dst = mac_of(0x100);
    }
    std::vector<std::thread> threads;
    threads.reserve(active);
    for (int i = 0; i < active; ++i) {
        threads.emplace_back([&, i] {
            receive_loop(*w.receivers[i], s, run, results[i], !s.learn || i == 0, paced);
        });
    }
    while (run.ready.load() < active) std::this_thread::yield();

    const double seconds = s.opt.real("seconds", 1.0);
    const int batch = paced ? 1 : default_batch(s);
    Traffic t(s.size, batch, dst, src);
    std::unique_ptr<RssSampler> sampler;
    if (stalled > 0) sampler = std::make_unique<RssSampler>(probe, 200);
    probe.begin();
    run.start_ns = now_ns();
    run.go = true;
    const std::int64_t end = run.start_ns + static_cast<std::int64_t>(seconds * 1e9);
    std::uint64_t seq = 0;
    if (paced) {
        const double period = 1e9 / s.opt.real("rate", 2000);
        for (std::uint64_t i = 0;; ++i) {
            std::int64_t due =
                run.start_ns + static_cast<std::int64_t>(period * static_cast<double>(i));
            if (due >= end) break;
            sleep_until(due);
            t.stamp(0, seq++);
            w.sender->send(t.frames.data(), t.size);
        }
    } else {
        while (now_ns() < end) {
            for (int k = 0; k < 16; ++k) {
                for (int i = 0; i < batch; ++i) t.stamp(i, seq++);
                w.sender->send_batch(t.frames.data(), t.size, batch);
            }
        }
    }
    const std::int64_t sent_ns = now_ns();
    // What the stalled readers' queues hold now, from the network's stats.
    long queued = -1;
    if (stalled > 0 && s.kind == "ipnfs") queued = queued_total(s.opt.str("net"));
    bool clean = true;
    if (s.kind == "nullfs") {
        run.stop = true;
        // Readers of nullfs never block, so they see the flag at once.
    } else {
        clean = finish(*w.sender, t, run, active, 10.0);
    }
    if (!clean) {
        std::fprintf(stderr, "ipnfs-loadgen: %d of %d receivers never finished\n",
                     active - run.done.load(), active);
        std::fflush(stderr);
    }
    const std::int64_t done_ns = now_ns();
    const double cpu = probe.cpu_seconds();
    const long hwm = probe.pid ? probe.status_kb("VmHWM:") : 0;
    const long switches = probe.switches() - probe.switches0;
    if (sampler) sampler->stop();
    if (!clean) {
        // Receivers stuck in a read would hold the process: report and leave.
        std::printf("{\"error\":\"receivers did not finish\",\"sent\":%llu}\n",
                    static_cast<unsigned long long>(seq));
        std::fflush(stdout);
        std::_Exit(3);
    }
    for (auto& th : threads) th.join();
    w.sender->close();

    std::vector<double> rates;
    std::vector<double> counts;
    std::uint64_t stray = 0;
    std::int64_t last = run.start_ns;
    std::vector<std::int64_t> lat;
    for (int i = 0; i < active; ++i) {
        const ReceiverResult& r = results[i];
        stray += r.stray;
        if (s.learn && i > 0) continue;
        double span = static_cast<double>(r.last_ns - run.start_ns) / 1e9;
        rates.push_back(r.count && span > 0 ? static_cast<double>(r.count) / span : 0.0);
        counts.push_back(static_cast<double>(r.count));
        last = std::max(last, r.last_ns);
        lat.insert(lat.end(), r.latency.begin(), r.latency.end());
        if (s.opt.has("dump")) dump_latency(s.opt.str("dump"), i, r);
    }
    const double send_s = static_cast<double>(sent_ns - run.start_ns) / 1e9;
    const double wall = static_cast<double>(done_ns - run.start_ns) / 1e9;
    std::printf(
        "{\"sent\":%llu,\"send_s\":%.4f,\"send_rate\":%.1f,\"wall_s\":%.4f,\"counts\":%s,"
        "\"rates\":%s,\"stray\":%llu,\"cpu_s\":%.3f,\"hwm_kb\":%ld,\"switches\":%ld",
        static_cast<unsigned long long>(seq), send_s, static_cast<double>(seq) / send_s, wall,
        list(counts).c_str(), list(rates).c_str(), static_cast<unsigned long long>(stray), cpu, hwm,
        switches);
    if (paced) {
        std::printf(",%s", latency_fields(lat).c_str());
    }
    if (sampler) {
        std::vector<double> series;
        for (long kb : sampler->series()) series.push_back(static_cast<double>(kb));
        std::printf(R"(,"rss_max_kb":%ld,"rss_kb":%s,"queued":%ld)", sampler->max_kb(),
                    list(series).c_str(), queued);
    }
    std::printf("}\n");
    return 0;
}

// nullfs has no path from a writer to a reader: its "one-way latency" is one
// write and one read back to back, its round trip two of each.
int null_pairs(const Setup& s, bool round_trip) {
    FileEndpoint ep(s.opt.str("file"), O_RDWR, s.size);
    std::vector<std::byte> m(s.size);
    std::vector<std::byte> buf(s.size);
    write_frame(m.data(), kBroadcast, mac_of(1));
    OnMessage ignore = [](const std::byte*, std::size_t) {};
    const double seconds = s.opt.real("seconds", 1.0);
    const double period = round_trip ? 0 : 1e9 / s.opt.real("rate", 2000);
    std::vector<std::int64_t> lat;
    std::int64_t start = now_ns();
    std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
    for (std::uint64_t i = 0;; ++i) {
        std::int64_t due = start + static_cast<std::int64_t>(period * static_cast<double>(i));
        if (due >= end || now_ns() >= end) break;
        if (period > 0) sleep_until(due);
        std::int64_t t0 = now_ns();
        for (int leg = 0; leg < (round_trip ? 2 : 1); ++leg) {
            ep.send(m.data(), m.size());
            ep.receive(buf, ignore);
        }
        if (i >= 100 || !round_trip) lat.push_back(now_ns() - t0);
    }
    std::printf("{%s}\n", latency_fields(lat).c_str());
    return 0;
}

int pingpong(const Setup& s) {
    if (s.kind == "nullfs") return null_pairs(s, true);
    auto [a, b] = wire_pair(s);
    std::atomic<bool> b_ready{false};
    std::thread echo([&, ep = b.get()] {
        std::vector<std::byte> buf(65536);
        bool finished = false;
        OnMessage on = [&](const std::byte* m, std::size_t len) {
            Header h = read_header(m, len);
            if (h.kind == kMarker) finished = true;
            if (h.kind == kData) ep->send(m, len);
        };
        b_ready = true;
        while (!finished && ep->receive(buf, on)) {
        }
    });
    while (!b_ready.load()) std::this_thread::yield();
    std::vector<std::byte> m(s.size);
    std::vector<std::byte> buf(65536);
    write_frame(m.data(), kBroadcast, mac_of(1));
    const double seconds = s.opt.real("seconds", 1.0);
    std::vector<std::int64_t> rtt;
    std::int64_t start = now_ns();
    std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
    std::uint64_t seq = 0;
    bool back = false;
    OnMessage on = [&](const std::byte* msg, std::size_t len) {
        if (read_header(msg, len).kind == kData) back = true;
    };
    while (now_ns() < end) {
        std::int64_t t0 = now_ns();
        write_header(m.data(), seq, t0, kData);
        a->send(m.data(), m.size());
        back = false;
        while (!back) {
            if (!a->receive(buf, on)) die("pingpong: the echo went away");
        }
        if (seq++ >= 100) rtt.push_back(now_ns() - t0);  // after a warm-up
    }
    write_header(m.data(), seq, 0, kMarker);
    a->send(m.data(), m.size());
    echo.join();
    std::printf("{%s}\n", latency_fields(rtt).c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::fprintf(stderr,
                     "usage: %s throughput|latency|pingpong|stall --kind KIND [options]\n"
                     "(see the comment at the top of bench/loadgen.cpp)\n",
                     argv[0]);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a receiver that left is not an error
    std::string scenario = argv[1];
    Setup s;
    s.opt = parse(argc, argv);
    s.kind = s.opt.str("kind");
    s.n = static_cast<int>(s.opt.num("n", 1));
    s.size = static_cast<std::size_t>(s.opt.num("size", 64));
    s.lossy = s.opt.has("lossy");
    s.framed = s.opt.has("framed");
    s.learn = s.opt.has("learn");
    if (s.size < kMinSize || s.size > 65535) die("--size must be 38..65535");
    if (scenario == "throughput") return throughput(s, false, 0);
    if (scenario == "latency") {
        return s.kind == "nullfs" ? null_pairs(s, false) : throughput(s, true, 0);
    }
    if (scenario == "pingpong") return pingpong(s);
    if (scenario == "stall") {
        int stalled = static_cast<int>(s.opt.num("stalled", 0));
        if (stalled < 0 || stalled >= s.n) die("--stalled must be below --n");
        return throughput(s, false, stalled);
    }
    die("unknown scenario " + scenario);
}
