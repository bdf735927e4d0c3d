// The pipes contender: one pipe per receiver, the sender writes each message
// to each (blocking, or dropping on a full pipe with --lossy).
#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

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
    // Writes of one message are atomic (below PIPE_BUF), so a read of one
    // message's size takes a whole one or nothing.
    [[nodiscard]] int event_fd() const override { return rfd_; }
    [[nodiscard]] std::size_t read_size(std::size_t) const override { return size_; }
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

}  // namespace

Wiring wire_pipes_fanout(const Setup& s) {
    Wiring w;
    std::vector<int> wfds;
    for (int i = 0; i < s.n; ++i) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) die_errno("pipe2");
        w.receivers.push_back(std::make_unique<StreamReader>(p[0], -1, s.size));
        wfds.push_back(p[1]);
    }
    w.sender = std::make_unique<FanOut>(std::move(wfds), s.lossy);
    return w;
}

EndpointPair wire_pipes_pair(const Setup& s) {
    int ab[2];
    int ba[2];
    if (::pipe2(ab, O_CLOEXEC) != 0 || ::pipe2(ba, O_CLOEXEC) != 0) die_errno("pipe2");
    return {std::make_unique<StreamReader>(ba[0], ab[1], s.size),
            std::make_unique<StreamReader>(ab[0], ba[1], s.size)};
}

}  // namespace ipnfs_loadgen
