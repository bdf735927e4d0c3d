// Grabbed interfaces: an AF_PACKET socket bound to one existing interface.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "netdev/link.hpp"
#include "netdev/offload.hpp"

namespace ipnfs::netdev {

namespace {

constexpr std::size_t kMacs = 12;  // destination and source MAC: a tag goes after them
constexpr std::size_t kTag = 4;

// Sets the socket's receive buffer past net.core.rmem_max (the daemon
// is root and grab_rcvbuf_max() bounds it); 0 asks for kGrabRcvbuf.  A
// daemon without CAP_NET_ADMIN gets what rmem_max allows.
int set_receive_buffer(int fd, std::uint64_t bytes) {
    int value = static_cast<int>(bytes != 0 ? bytes : kGrabRcvbuf);
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &value, sizeof value) == 0) return 0;
    if (errno != EPERM) return errno;
    return ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, sizeof value) == 0 ? 0 : errno;
}

bus::Status check_rcvbuf(std::uint64_t bytes) {
    std::uint64_t max = grab_rcvbuf_max();
    if (bytes >= kGrabRcvbufMin && bytes <= max) return bus::Status::success();
    return bus::Status::error(
        std::errc::invalid_argument,
        fmt::format("rcvbuf {} is out of range ({}-{} bytes; root raises the top with sysctl "
                    "net.core.rmem_max)",
                    bytes, kGrabRcvbufMin, max));
}

class Grab final : public Link {
  public:
    Grab(int fd, std::string name, unsigned ifindex, std::uint64_t rcvbuf)
        : Link(fd, std::move(name)), ifindex_(ifindex), rcvbuf_(rcvbuf) {}

    [[nodiscard]] std::string_view kind() const override { return "grab"; }

    // A frame comes with the virtio_net_hdr PACKET_VNET_HDR puts before
    // it: the sending kernel may have left its checksum to be completed
    // (CHECKSUM_PARTIAL, as veth does by default) or handed over a GSO
    // superframe of up to 64 KiB (its TSO, or GRO here).  Both become
    // wire frames before the bus sees them, so that every port may take
    // them as they come; a superframe is cut one frame per call.
    ssize_t receive(std::span<std::byte> buf, std::uint8_t& /*hops*/, std::uint64_t& dropped,
                    std::string& error) override {
        for (;;) {
            if (!cut_.done()) return static_cast<ssize_t>(cut_.next(buf));
            // Room is kept for a VLAN tag the kernel took off into metadata.
            if (buf.size() <= kTag) return 0;
            std::array<std::byte, kVnetHeaderSize> vnet{};
            std::array<iovec, 2> iov{iovec{vnet.data(), vnet.size()},
                                     iovec{buf.data(), buf.size() - kTag}};
            sockaddr_ll from{};
            std::array<std::byte, CMSG_SPACE(sizeof(tpacket_auxdata))> control{};
            msghdr msg{};
            msg.msg_name = &from;
            msg.msg_namelen = sizeof from;
            msg.msg_iov = iov.data();
            msg.msg_iovlen = iov.size();
            msg.msg_control = control.data();
            msg.msg_controllen = control.size();
            ssize_t n = ::recvmsg(fd(), &msg, MSG_TRUNC);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return 0;
                // EINVAL: the kernel could not describe the frame's offload
                // (a GSO type virtio_net_hdr has no word for); it is gone.
                if (errno == EINVAL) {
                    drop(dropped, "the kernel could not describe its offload");
                    continue;
                }
                // ENETDOWN: the interface went down (it may come back up) or
                // away; only the second ends the link.
                if (errno == ENETDOWN && exists()) continue;
                error = errno == ENETDOWN ? std::string("the interface was deleted")
                                          : std::string(std::strerror(errno));
                return -1;
            }
            if (from.sll_pkttype == PACKET_OUTGOING) continue;
            if ((msg.msg_flags & MSG_TRUNC) != 0 || static_cast<std::size_t>(n) < kVnetHeaderSize) {
                ++dropped;
                continue;
            }
            auto len = static_cast<std::size_t>(n) - kVnetHeaderSize;
            VnetHeader hdr = VnetHeader::parse(vnet);
            if (len >= kMacs && restore_tag(msg, buf, len)) {
                len += kTag;
                // The kernel counted offsets without the tag.
                hdr.csum_start = static_cast<std::uint16_t>(
                    std::min<std::size_t>(hdr.csum_start + kTag, UINT16_MAX));
            }
            std::span<std::byte> frame = buf.first(len);
            if (hdr.gso() == VnetHeader::kGsoNone) {
                if (complete_checksum(frame, hdr)) return static_cast<ssize_t>(len);
                drop(dropped, "its checksum offsets fall outside it");
                continue;
            }
            // The superframe moves aside; its segments are cut into buf.
            superframe_.assign(frame.begin(), frame.end());
            if (bus::Status s = cut_.start(superframe_, hdr); !s.ok()) {
                drop(dropped, s.reason);
            } else if (cut_.max_frame() > buf.size()) {
                cut_ = {};
                drop(dropped, "its segments are longer than a message");
            }
        }
    }

    [[nodiscard]] bool holds_frames() const override { return !cut_.done(); }

    int transmit(std::span<const std::byte> frame, std::uint8_t /*hops*/) override {
        // With PACKET_VNET_HDR a header goes first: all zero, a plain frame
        // with its checksums done.
        std::array<std::byte, kVnetHeaderSize> vnet{};
        std::array<iovec, 2> iov{iovec{vnet.data(), vnet.size()},
                                 iovec{const_cast<std::byte*>(frame.data()), frame.size()}};
        msghdr msg{};
        msg.msg_iov = iov.data();
        msg.msg_iovlen = iov.size();
        return ::sendmsg(fd(), &msg, MSG_DONTWAIT) < 0 ? errno : 0;
    }

    [[nodiscard]] std::optional<InterfaceRef> interface() const override {
        return InterfaceRef{.ifindex = ifindex_, .name = name(), .netns = {}};
    }

    // Reading PACKET_STATISTICS zeroes the kernel's counts, so they are
    // added up here; concurrent readers each add what they took.
    [[nodiscard]] std::optional<std::uint64_t> socket_drops() const override {
        tpacket_stats st{};
        socklen_t len = sizeof st;
        if (::getsockopt(fd(), SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) {
            return socket_drops_.load(std::memory_order_relaxed);
        }
        return socket_drops_.fetch_add(st.tp_drops, std::memory_order_relaxed) + st.tp_drops;
    }

    [[nodiscard]] std::uint64_t rcvbuf() const override {
        return rcvbuf_.load(std::memory_order_relaxed);
    }

    bus::Status set_rcvbuf(std::uint64_t bytes) override {
        if (bus::Status s = check_rcvbuf(bytes); !s.ok()) return s;
        if (int err = set_receive_buffer(fd(), bytes); err != 0) {
            return bus::Status::error(
                static_cast<std::errc>(err),
                fmt::format("grab {}: SO_RCVBUFFORCE: {}", name(), std::strerror(err)));
        }
        rcvbuf_.store(bytes, std::memory_order_relaxed);
        return bus::Status::success();
    }

  private:
    [[nodiscard]] bool exists() const {
        std::array<char, IFNAMSIZ> name{};
        return if_indextoname(ifindex_, name.data()) != nullptr;
    }

    void drop(std::uint64_t& dropped, std::string_view why) const {
        ++dropped;
        bus::log::limited(spdlog::level::debug, {"frame-drop"}, "grab {}: frame dropped: {}",
                          name(), why);
    }

    // Puts back the 802.1Q tag that VLAN offload moved into metadata, so the
    // bus sees the frame as it was on the wire.  True if it did (kTag bytes
    // more).
    static bool restore_tag(msghdr& msg, std::span<std::byte> buf, std::size_t len) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) continue;
            tpacket_auxdata aux{};
            std::memcpy(&aux, CMSG_DATA(c), sizeof aux);
            if ((aux.tp_status & TP_STATUS_VLAN_VALID) == 0) return false;
            std::uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) != 0
                                     ? aux.tp_vlan_tpid
                                     : static_cast<std::uint16_t>(ETH_P_8021Q);
            std::memmove(buf.data() + kMacs + kTag, buf.data() + kMacs, len - kMacs);
            std::array<std::byte, kTag> tag{std::byte(tpid >> 8), std::byte(tpid & 0xff),
                                            std::byte(aux.tp_vlan_tci >> 8),
                                            std::byte(aux.tp_vlan_tci & 0xff)};
            std::memcpy(buf.data() + kMacs, tag.data(), kTag);
            return true;
        }
        return false;
    }

    const unsigned ifindex_;
    // A superframe being cut, and the cutting (done() when none is).
    std::vector<std::byte> superframe_;
    Segmenter cut_;
    std::atomic<std::uint64_t> rcvbuf_;  // as asked: 0 for the default
    mutable std::atomic<std::uint64_t> socket_drops_{0};
};

bus::Status failed(std::string_view name, const char* step) {
    int err = errno;
    std::string why = err == EPERM ? std::string("the daemon lacks CAP_NET_ADMIN")
                                   : std::string(std::strerror(err));
    return bus::Status::error(static_cast<std::errc>(err),
                              fmt::format("grab {}: {}: {}", name, step, why));
}

}  // namespace

std::uint64_t grab_rcvbuf_max() {
    std::uint64_t rmem_max = 0;
    std::ifstream("/proc/sys/net/core/rmem_max") >> rmem_max;
    // SO_RCVBUFFORCE takes an int, which the kernel doubles.
    return std::min(std::max(rmem_max, kGrabRcvbuf), std::uint64_t{INT32_MAX / 2});
}

bus::Status open_grab(std::string_view name, std::uint64_t rcvbuf, std::unique_ptr<Link>& out) {
    if (bus::Status s = check_name(name); !s.ok()) return s;
    if (rcvbuf != 0) {
        if (bus::Status s = check_rcvbuf(rcvbuf); !s.ok()) return s;
    }
    std::string iface(name);
    unsigned ifindex = if_nametoindex(iface.c_str());
    if (ifindex == 0) {
        return bus::Status::error(std::errc::no_such_device,
                                  fmt::format("grab {}: no such interface", name));
    }
    // Protocol 0 until bound: a socket open to every protocol would queue
    // frames of every interface in between.
    int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return failed(name, "socket");
    int on = 1;
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(ifindex);
    packet_mreq promisc{};
    promisc.mr_ifindex = static_cast<int>(ifindex);
    promisc.mr_type = PACKET_MR_PROMISC;
    const char* step = nullptr;
    if (::setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof on) != 0) {
        step = "PACKET_IGNORE_OUTGOING";
    } else if (int err = set_receive_buffer(fd, rcvbuf); err != 0) {
        errno = err;
        step = "SO_RCVBUFFORCE";
    } else if (::setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &on, sizeof on) != 0) {
        step = "PACKET_AUXDATA";
    } else if (::setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof on) != 0) {
        step = "PACKET_VNET_HDR";
    } else if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        step = "bind";
    } else if (::setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) != 0) {
        step = "promiscuous mode";
    }
    if (step != nullptr) {
        bus::Status s = failed(name, step);
        ::close(fd);
        return s;
    }
    out = std::make_unique<Grab>(fd, iface, ifindex, rcvbuf);
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
