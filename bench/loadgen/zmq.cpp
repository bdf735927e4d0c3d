// The ZeroMQ contender: a PUB/SUB fan-out over ipc:// (--ipc PATH), one SUB
// socket per receiver (built only with libzmq).  ZeroMQ's own I/O threads
// carry the messages, so like vde_switch it has a hop between sender and
// receiver, but inside the processes rather than in a daemon.
#ifdef IPNFS_BENCH_ZMQ
#include <unistd.h>
#include <zmq.h>

#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

void* context() {
    // Never terminated: zmq_ctx_term would wait for sockets of threads that
    // _Exit() left behind after a failed run.
    static void* ctx = zmq_ctx_new();
    return ctx;
}

void* socket_of(int type) {
    void* s = zmq_socket(context(), type);
    if (s == nullptr) die(std::string("zmq_socket: ") + zmq_strerror(zmq_errno()));
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    return s;
}

void check(int rc, const char* what) {
    if (rc != 0) die(std::string(what) + ": " + zmq_strerror(zmq_errno()));
}

class ZmqEndpoint final : public Endpoint {
  public:
    explicit ZmqEndpoint(void* sock) : sock_(sock) {}
    ~ZmqEndpoint() override { close(); }
    void send(const std::byte* m, std::size_t len) override {
        // Lossless (ZMQ_XPUB_NODROP): waits for room; lossy: a PUB drops.
        while (zmq_send(sock_, m, len, 0) < 0 && zmq_errno() == EINTR) {
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        [[maybe_unused]] int n = zmq_send(sock_, m, len, ZMQ_DONTWAIT);
    }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            int n = zmq_recv(sock_, buf.data(), buf.size(), 0);
            if (n >= 0) {
                on(buf.data(), std::min(static_cast<std::size_t>(n), buf.size()));
                return true;
            }
            if (zmq_errno() != EINTR) return false;
        }
    }
    // ZMQ_FD is not the data: it signals that the socket's state changed, and
    // only as an edge, so every wake-up must take until EAGAIN.
    [[nodiscard]] int event_fd() const override {
        int fd = -1;
        std::size_t len = sizeof fd;
        zmq_getsockopt(sock_, ZMQ_FD, &fd, &len);
        return fd;
    }
    [[nodiscard]] bool edge_only() const override { return true; }
    Took take(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            int n = zmq_recv(sock_, buf.data(), buf.size(), ZMQ_DONTWAIT);
            if (n >= 0) {
                on(buf.data(), std::min(static_cast<std::size_t>(n), buf.size()));
                return Took::message;
            }
            if (zmq_errno() == EINTR) continue;
            return zmq_errno() == EAGAIN ? Took::again : Took::end;
        }
    }
    void close() override {
        if (sock_ != nullptr) zmq_close(sock_);
        sock_ = nullptr;
    }

  private:
    void* sock_;
};

}  // namespace

Wiring wire_zmq_fanout(const Setup& s) {
    std::string path = s.opt.str("ipc");
    if (path.empty()) die("zmq needs --ipc PATH");
    ::unlink(path.c_str());
    std::string url = "ipc://" + path;
    void* pub = socket_of(ZMQ_XPUB);
    int one = 1;
    // Every subscription is handed up, so the sender can count its receivers.
    check(zmq_setsockopt(pub, ZMQ_XPUB_VERBOSE, &one, sizeof one), "ZMQ_XPUB_VERBOSE");
    if (!s.lossy) check(zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof one), "ZMQ_XPUB_NODROP");
    check(zmq_bind(pub, url.c_str()), "zmq_bind");
    Wiring w;
    for (int i = 0; i < s.n; ++i) {
        void* sub = socket_of(ZMQ_SUB);
        check(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0), "ZMQ_SUBSCRIBE");
        check(zmq_connect(sub, url.c_str()), "zmq_connect");
        w.receivers.push_back(std::make_unique<ZmqEndpoint>(sub));
    }
    // A SUB that has not subscribed yet would miss the first messages.
    std::byte sub[64];
    for (int i = 0; i < s.n; ++i) {
        if (zmq_recv(pub, sub, sizeof sub, 0) < 0) die("zmq: waiting for subscriptions");
    }
    w.sender = std::make_unique<ZmqEndpoint>(pub);
    return w;
}

}  // namespace ipnfs_loadgen
#endif
