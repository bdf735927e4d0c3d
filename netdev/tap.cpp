// TAP interfaces: /dev/net/tun in TAP mode, one frame per read and write.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "netdev/link.hpp"

namespace ipnfs::netdev {

namespace {

class Tap final : public Link {
  public:
    Tap(int fd, std::string name) : Link(fd, std::move(name)) {}

    [[nodiscard]] std::string_view kind() const override { return "tap"; }

    ssize_t receive(std::span<std::byte> buf, std::uint8_t& /*hops*/, std::uint64_t& too_long,
                    std::string& error) override {
        for (;;) {
            ssize_t n = ::read(fd(), buf.data(), buf.size());
            if (n >= 0) {
                // tun cuts a frame longer than the read to the read's size.
                if (static_cast<std::size_t>(n) < buf.size()) return n;
                ++too_long;
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            // EBADFD: the interface was deleted (ip link del) under us.
            error = errno == EBADFD ? std::string("the interface was deleted")
                                    : std::string(std::strerror(errno));
            return -1;
        }
    }

    int transmit(std::span<const std::byte> frame, std::uint8_t /*hops*/) override {
        // EIO while the interface is down: the kernel drops what it cannot carry.
        return ::write(fd(), frame.data(), frame.size()) < 0 ? errno : 0;
    }

    // Asked of the descriptor each time: the TAP may have moved to another
    // namespace, or been renamed, since it was made.
    [[nodiscard]] std::optional<InterfaceRef> interface() const override {
        ifreq ifr{};
        if (::ioctl(fd(), TUNGETIFF, &ifr) != 0) return std::nullopt;
        UniqueFd netns(::ioctl(fd(), TUNGETDEVNETNS));
        if (!netns.ok()) return std::nullopt;
        ifr.ifr_name[IFNAMSIZ - 1] = '\0';
        return InterfaceRef{.ifindex = 0, .name = ifr.ifr_name, .netns = std::move(netns)};
    }
};

}  // namespace

bus::Status open_tap(std::string_view name, std::unique_ptr<Link>& out) {
    if (bus::Status s = check_name(name); !s.ok()) return s;
    int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return bus::Status::error(static_cast<std::errc>(err),
                                  fmt::format("/dev/net/tun: {}", std::strerror(err)));
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
        int err = errno;
        ::close(fd);
        std::string why;
        switch (err) {
            case EBUSY:
                why = "a TAP of that name is in use";
                break;
            case EINVAL:
                why = "an interface of that name exists and is not a TAP";
                break;
            case EPERM:
                why = "the daemon lacks CAP_NET_ADMIN";
                break;
            default:
                why = std::strerror(err);
        }
        return bus::Status::error(static_cast<std::errc>(err),
                                  fmt::format("tap {}: {}", name, why));
    }
    out = std::make_unique<Tap>(fd, std::string(name));
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
