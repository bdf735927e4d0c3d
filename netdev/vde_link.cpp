#include "netdev/vde_link.hpp"

#include <net/ethernet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "netdev/safe_path.hpp"
#include "netdev/unique_fd.hpp"
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

bus::Status open_vde_link(const std::string& bind_at, const std::string& name,
                          const sockaddr_un& client, const Credentials& who,
                          std::unique_ptr<Link>& out) {
    sockaddr_un own{};
    if (bind_at.size() >= sizeof own.sun_path) {
        return bus::Status::error(std::errc::filename_too_long,
                                  fmt::format("{}: too long for a socket name", bind_at));
    }
    if (client.sun_path[0] == 0) {
        return bus::Status::error(
            std::errc::operation_not_permitted,
            fmt::format("the client's socket {} is an abstract name: only a socket file the "
                        "client owns is served",
                        vde::address_text(client)));
    }
    const std::string theirs(client.sun_path, strnlen(client.sun_path, sizeof client.sun_path));
    if (theirs != vde::address_text(client)) {
        // Its name goes into log lines: no newline may forge one.
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("the client's socket {} has bytes outside printable ASCII",
                        vde::address_text(client)));
    }
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return failure(errno, "socket");
    auto link = std::make_unique<VdeLink>(fd, name);  // closes fd on every way out
    {
        ActingAs acting(who);
        if (!acting.status().ok()) return acting.status();
        UniqueFd target;
        if (bus::Status s = open_no_fuse(theirs, kMaxLinks, target); !s.ok()) {
            return bus::Status::error(s.code, "the client's socket: " + s.reason);
        }
        struct stat st {};
        if (::fstat(target.get(), &st) != 0) return failure(errno, theirs);
        if (!S_ISSOCK(st.st_mode)) {
            return bus::Status::error(std::errc::not_a_socket,
                                      fmt::format("the client's {} is not a socket", theirs));
        }
        if (st.st_uid != who.uid) {
            return bus::Status::error(
                std::errc::operation_not_permitted,
                fmt::format("the client's socket {} belongs to uid {}, not to the client's {}",
                            theirs, st.st_uid, who.uid));
        }
        // The inode the walk found, not its name again: nothing can be
        // swapped in between.  The kernel checks write permission as `who`.
        const std::string via = fmt::format("/proc/self/fd/{}", target.get());
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, via.data(), via.size());
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            return failure(errno, fmt::format("the client's socket {}", theirs));
        }
    }
    own.sun_family = AF_UNIX;
    std::memcpy(own.sun_path, bind_at.data(), bind_at.size());
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&own), sizeof own) != 0) {
        return failure(errno, fmt::format("bind {}", name));
    }
    out = std::move(link);
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
