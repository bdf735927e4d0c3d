#include "netdev/vde_link.hpp"

#include <net/ethernet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "netdev/vde_protocol.hpp"

namespace ipnfs::netdev {

namespace {

class VdeLink final : public Link {
  public:
    VdeLink(int fd, std::string name) : Link(fd, std::move(name)) {}

    [[nodiscard]] std::string_view kind() const override { return "vde"; }

    // A client cannot kill the link from here: what it sends is either a
    // frame or a drop, and its going away is its control connection closing.
    ssize_t receive(std::span<std::byte> buf, std::uint8_t& /*hops*/, std::uint64_t& dropped,
                    std::string& error) override {
        for (;;) {
            ssize_t n = ::recv(fd(), buf.data(), buf.size(), MSG_TRUNC | MSG_DONTWAIT);
            if (n >= 0) {
                // Too long for any network, or too short to be Ethernet (an
                // empty datagram would read as "nothing more").
                if (static_cast<std::size_t>(n) > buf.size() || n < ETH_HLEN) {
                    ++dropped;
                    continue;
                }
                return n;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == ECONNREFUSED || errno == ECONNRESET) return 0;
            error = std::strerror(errno);
            return -1;
        }
    }

    // EAGAIN (the client's queue is full) and ECONNREFUSED (it is gone, its
    // control connection not closed yet) are counted drops.
    int transmit(std::span<const std::byte> frame, std::uint8_t /*hops*/) override {
        return ::send(fd(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? errno
                                                                                         : 0;
    }
};

bus::Status failure(int err, std::string what) {
    return bus::Status::error(static_cast<std::errc>(err),
                              fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace

bus::Status open_vde_link(const std::string& path, const sockaddr_un& client,
                          std::unique_ptr<Link>& out) {
    sockaddr_un own{};
    if (path.size() >= sizeof own.sun_path) {
        return bus::Status::error(std::errc::filename_too_long,
                                  fmt::format("{}: too long for a socket name", path));
    }
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return failure(errno, "socket");
    auto link = std::make_unique<VdeLink>(fd, path);  // closes fd on every way out
    // The daemon's credentials decide, not the mode the client chose for its
    // socket: as root a 0600 socket of another user is reached all the same.
    int err = ECONNREFUSED;
    for (socklen_t len : vde::address_lengths(client)) {
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&client), len) == 0) {
            err = 0;
            break;
        }
        err = errno;
    }
    if (err != 0) {
        return failure(err, fmt::format("the client's socket {}", vde::address_text(client)));
    }
    own.sun_family = AF_UNIX;
    std::memcpy(own.sun_path, path.data(), path.size());
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&own), sizeof own) != 0) {
        return failure(errno, fmt::format("bind {}", path));
    }
    out = std::move(link);
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
