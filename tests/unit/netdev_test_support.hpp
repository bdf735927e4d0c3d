// Helpers shared by the netdev unit tests: bounded waiting, a descriptor
// pair, and a Link over a SOCK_SEQPACKET socket pair whose other end the test
// holds and plays the kernel with (a write there is a frame the kernel
// received from the wire; a read is a frame the device transmitted).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "netdev/link.hpp"
#include "netdev/unique_fd.hpp"

namespace ipnfs::test {

using namespace std::chrono_literals;

// True once pred() holds; false if `limit` passed first.
template <typename Pred>
bool wait_until(Pred&& pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
}

// True if pred() held for the whole of `span` (checked every millisecond).
template <typename Pred>
bool holds_for(Pred&& pred, std::chrono::milliseconds span) {
    auto deadline = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!pred()) return false;
        std::this_thread::sleep_for(1ms);
    }
    return pred();
}

// Under CI=true a test that cannot run here fails instead of skipping.
inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string_view(ci) == "true";
}

// A descriptor that closes itself (the daemon's own).
using netdev::UniqueFd;

// Both ends of a non-blocking SOCK_SEQPACKET pair: one frame per read and
// write, as a TAP descriptor gives.
inline std::pair<UniqueFd, UniqueFd> seqpacket_pair() {
    int sv[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// Sets how many bytes of frames may wait in the socket towards `fd`'s peer.
// As root the system maximum does not apply.
inline void set_send_buffer(int fd, int bytes) {
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    }
}

// A kernel interface made of one end of a socket pair, moving frames the way
// netdev/tap.cpp does: non-blocking, 0 when there is nothing now, -1 when the
// other end is gone.
class SocketLink final : public netdev::Link {
  public:
    SocketLink(int fd, std::string name) : Link(fd, std::move(name)) {}

    [[nodiscard]] std::string_view kind() const override { return "test"; }

    ssize_t receive(std::span<std::byte> buf, std::uint8_t& /*hops*/, std::uint64_t& too_long,
                    std::string& error) override {
        for (;;) {
            // MSG_TRUNC: the frame's real length, even when it did not fit.
            ssize_t n = ::recv(fd(), buf.data(), buf.size(), MSG_TRUNC);
            if (n > 0 && static_cast<std::size_t>(n) > buf.size()) {
                ++too_long;
                continue;
            }
            if (n > 0) return n;
            if (n == 0) {
                error = "the other end was closed";
                return -1;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            error = std::strerror(errno);
            return -1;
        }
    }

    int transmit(std::span<const std::byte> frame, std::uint8_t /*hops*/) override {
        return ::send(fd(), frame.data(), frame.size(), MSG_NOSIGNAL) < 0 ? errno : 0;
    }
};

// The kernel's side of a SocketLink.
class KernelEnd {
  public:
    explicit KernelEnd(UniqueFd fd) : fd_(std::move(fd)) {}

    [[nodiscard]] int fd() const { return fd_.get(); }
    void close() { fd_.reset(); }

    // A frame from the wire: false if the socket stayed full for `limit`.
    bool write(std::span<const std::byte> frame,
               std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (::send(fd_.get(), frame.data(), frame.size(), MSG_NOSIGNAL) >= 0) return true;
            if (errno != EAGAIN && errno != EINTR) return false;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_.get(), POLLOUT, 0};
            ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
        }
    }
    bool write(std::string_view frame) {
        return write(std::as_bytes(std::span<const char>(frame.data(), frame.size())));
    }

    // The next frame the device transmitted, waiting up to `limit` for it.
    std::optional<std::string> read(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        std::vector<char> buf(70000);
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
            if (n > 0) return std::string(buf.data(), static_cast<std::size_t>(n));
            if (n == 0) return std::nullopt;
            if (errno != EAGAIN && errno != EINTR) return std::nullopt;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{fd_.get(), POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 100)));
        }
    }

  private:
    UniqueFd fd_;
};

// A frame of `size` bytes that says which one it is (`n`) in every byte, zeros
// included, so a reordered, cut or mixed-up frame shows.
inline std::string make_frame(std::uint32_t n, std::size_t size) {
    std::string f(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        f[i] = static_cast<char>((n * 131U + i * 7U + (n >> 8)) & 0xff);
    }
    for (std::size_t i = 0; i < 4 && i < size; ++i) f[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return f;
}

// Which frame make_frame() made this one (its first bytes), or -1 if too short.
inline std::int64_t frame_number(std::string_view f) {
    if (f.size() < 4) return -1;
    std::uint32_t n = 0;
    for (std::size_t i = 0; i < 4; ++i)
        n |= static_cast<std::uint32_t>(static_cast<unsigned char>(f[i])) << (8 * i);
    return n;
}

}  // namespace ipnfs::test
