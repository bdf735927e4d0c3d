// TAP interfaces: /dev/net/tun in TAP mode, one frame per read and write,
// each behind a virtio_net_hdr, so that the kernel hands over TCP (and UDP)
// superframes and frames whose checksum is left to fill in, and takes them
// back so: between two TAPs a superframe crosses the network whole.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "netdev/link.hpp"
#include "netdev/offload.hpp"

namespace ipnfs::netdev {

namespace {

// linux/if_tun.h of older userspace headers lacks them (kernel 6.2 and up).
constexpr unsigned kTunUso4 = 0x20;
constexpr unsigned kTunUso6 = 0x40;
constexpr unsigned kTso = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

static_assert(sizeof(bus::Offload::state) == kVnetHeaderSize);

class Tap final : public Link {
  public:
    Tap(int fd, std::string name) : Link(fd, std::move(name)) {}

    [[nodiscard]] std::string_view kind() const override { return "tap"; }
    [[nodiscard]] bool takes_offload() const override { return true; }
    [[nodiscard]] const bus::Offload* offload() const override {
        return has_offload_ ? &offload_ : nullptr;
    }

    ssize_t receive(std::span<std::byte> buf, std::uint8_t& /*hops*/, std::uint64_t& too_long,
                    std::string& error) override {
        for (;;) {
            std::array<iovec, 2> iov{iovec{offload_.state.data(), offload_.state.size()},
                                     iovec{buf.data(), buf.size()}};
            ssize_t n = ::readv(fd(), iov.data(), static_cast<int>(iov.size()));
            if (n >= static_cast<ssize_t>(kVnetHeaderSize)) {
                auto len = static_cast<std::size_t>(n) - kVnetHeaderSize;
                // tun cuts a frame longer than the read to the read's size
                // (and may report its whole length): a frame that fills
                // the buffer is taken as cut.
                if (len >= buf.size()) {
                    ++too_long;
                    continue;
                }
                note_offload(buf.first(len));
                return static_cast<ssize_t>(len);
            }
            if (n >= 0) continue;  // shorter than its header: not a frame
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            // EBADFD: the interface was deleted (ip link del) under us.
            error = errno == EBADFD ? std::string("the interface was deleted")
                                    : std::string(std::strerror(errno));
            return -1;
        }
    }

    int transmit(std::span<const std::byte> frame, std::uint8_t /*hops*/) override {
        static constexpr std::array<std::byte, kVnetHeaderSize> kPlain{};  // nothing left to do
        return write(kPlain.data(), frame);
    }

    int transmit_offloaded(std::span<const std::byte> frame, const bus::Offload& offload) override {
        return write(offload.state.data(), frame);
    }

  private:
    void note_offload(std::span<const std::byte> frame) {
        VnetHeader h = VnetHeader::parse(offload_.state);
        // DATA_VALID alone says the kernel checked a complete checksum: plain.
        has_offload_ = h.gso() != VnetHeader::kGsoNone || h.needs_csum();
        if (!has_offload_) return;
        // The longest wire frame it stands for bounds it against the MTU.  A
        // frame the segmenter refuses counts whole: too long for any MTU it
        // is dropped, else only a kernel (which checks it again) takes it.
        measure_.start(frame, h);
        offload_.wire_bytes = static_cast<std::uint32_t>(
            measure_.max_frame() != 0 ? measure_.max_frame() : frame.size());
    }

    int write(const std::byte* header, std::span<const std::byte> frame) {
        // writev() never reads the header: iovec's base is not const.
        std::array<iovec, 2> iov{iovec{const_cast<std::byte*>(header), kVnetHeaderSize},
                                 iovec{const_cast<std::byte*>(frame.data()), frame.size()}};
        // EIO while the interface is down: the kernel drops what it cannot
        // carry.  EINVAL: offload state the kernel refused.
        return ::writev(fd(), iov.data(), static_cast<int>(iov.size())) < 0 ? errno : 0;
    }

    bool has_offload_ = false;
    bus::Offload offload_;  // of the frame last received; its state read in place
    Segmenter measure_;
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

bus::Status fail(int fd, std::string_view name, const char* step) {
    int err = errno;
    ::close(fd);
    return bus::Status::error(static_cast<std::errc>(err),
                              fmt::format("tap {}: {}: {}", name, step, std::strerror(err)));
}

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
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
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
    int header_size = kVnetHeaderSize;
    if (::ioctl(fd, TUNSETVNETHDRSZ, &header_size) != 0) return fail(fd, name, "TUNSETVNETHDRSZ");
    // USO where the kernel knows it (6.2 and up); TSO and checksums anywhere.
    if (::ioctl(fd, TUNSETOFFLOAD, kTso | kTunUso4 | kTunUso6) != 0 &&
        ::ioctl(fd, TUNSETOFFLOAD, kTso) != 0) {
        return fail(fd, name, "TUNSETOFFLOAD");
    }
    out = std::make_unique<Tap>(fd, std::string(name));
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
