#include "netdev/cable_link.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace ipnfs::netdev {

bus::Status CableLink::make_pair(std::string a_leads_to, std::string b_leads_to,
                                 std::unique_ptr<CableLink>& a, std::unique_ptr<CableLink>& b) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        int err = errno;
        return bus::Status::error(static_cast<std::errc>(err),
                                  fmt::format("cable: socketpair: {}", std::strerror(err)));
    }
    a.reset(new CableLink(fds[0], std::move(a_leads_to)));
    b.reset(new CableLink(fds[1], std::move(b_leads_to)));
    return bus::Status::success();
}

ssize_t CableLink::receive(std::span<std::byte> buf, std::uint8_t& hops, std::uint64_t& too_long,
                           std::string& error) {
    for (;;) {
        std::array<iovec, 2> iov{{{&hops, 1}, {buf.data(), buf.size()}}};
        msghdr msg{};
        msg.msg_iov = iov.data();
        msg.msg_iovlen = iov.size();
        ssize_t n = ::recvmsg(fd(), &msg, 0);
        if (n > 0) {
            if ((msg.msg_flags & MSG_TRUNC) != 0) {
                ++too_long;
                continue;
            }
            // An empty message does not cross: 0 would mean "nothing now".
            if (n == 1) continue;
            return n - 1;
        }
        if (n == 0) {
            error = "the other end of the cable is gone";
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        error = std::strerror(errno);
        return -1;
    }
}

int CableLink::transmit(std::span<const std::byte> frame, std::uint8_t hops) {
    // An empty message has no frame to carry (and would read as "nothing").
    if (frame.empty()) return EINVAL;
    if (hops >= kHopLimit) {
        hop_drops_.fetch_add(1, std::memory_order_relaxed);
        return ELOOP;
    }
    auto crossed = static_cast<std::uint8_t>(hops + 1);
    std::array<iovec, 2> iov{{{&crossed, 1}, {const_cast<std::byte*>(frame.data()), frame.size()}}};
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    // EAGAIN: the far network has not taken what is queued in the cable yet
    // (a full lossless network stops reading its end): this frame is lost,
    // as on a congested wire, and counted.
    return ::sendmsg(fd(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 ? errno : 0;
}

}  // namespace ipnfs::netdev
