// The vde_switch contender: every endpoint a libvdeplug connection to the
// switch at --sock DIR (built only with libvdeplug).
#ifdef IPNFS_BENCH_VDE
#include <sys/socket.h>

extern "C" {  // the header has no C++ guard
#include <libvdeplug.h>
}

#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

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
    // vde_recv() of a vde:// connection is a recv() of its data socket.
    [[nodiscard]] int event_fd() const override { return vde_datafd(conn_); }
    void close() override {
        if (conn_ != nullptr) vde_close(conn_);
        conn_ = nullptr;
    }

  private:
    VDECONN* conn_ = nullptr;
};

}  // namespace

Wiring wire_vde_fanout(const Setup& s) {
    Wiring w;
    for (int i = 0; i < s.n; ++i) {
        w.receivers.push_back(std::make_unique<VdeEndpoint>(s.opt.str("sock")));
    }
    w.sender = std::make_unique<VdeEndpoint>(s.opt.str("sock"));
    sleep_ms(50);  // the switch finishes attaching the ports
    return w;
}

EndpointPair wire_vde_pair(const Setup& s) {
    auto a = std::make_unique<VdeEndpoint>(s.opt.str("sock"));
    auto b = std::make_unique<VdeEndpoint>(s.opt.str("sock"));
    sleep_ms(50);
    return {std::move(a), std::move(b)};
}

}  // namespace ipnfs_loadgen
#endif
