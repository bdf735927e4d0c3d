// The AF_UNIX datagram contender: one socket pair per receiver, the sender
// sends each message on each (blocking, or MSG_DONTWAIT drops with --lossy).
#include <sys/socket.h>

#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

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
    [[nodiscard]] int event_fd() const override { return fd_; }
    void close() override {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

}  // namespace

Wiring wire_unix_dgram_fanout(const Setup& s) {
    Wiring w;
    std::vector<int> wfds;
    for (int i = 0; i < s.n; ++i) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) die_errno("socketpair");
        w.receivers.push_back(std::make_unique<SocketEndpoint>(sv[0]));
        wfds.push_back(sv[1]);
    }
    w.sender = std::make_unique<FanOut>(std::move(wfds), s.lossy);
    return w;
}

EndpointPair wire_unix_dgram_pair(const Setup&) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) die_errno("socketpair");
    return {std::make_unique<SocketEndpoint>(sv[0]), std::make_unique<SocketEndpoint>(sv[1])};
}

}  // namespace ipnfs_loadgen
