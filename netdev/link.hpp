// A kernel interface's descriptor and how frames cross it: a TAP the daemon
// creates (/dev/net/tun) or an existing interface grabbed through AF_PACKET.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bus/message.hpp"
#include "bus/status.hpp"
#include "netdev/interface_counters.hpp"

namespace ipnfs::netdev {

class Link {
  public:
    virtual ~Link();
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    [[nodiscard]] int fd() const { return fd_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] virtual std::string_view kind() const = 0;

    // The next frame from the kernel, into buf: its length; 0 when there is
    // nothing more now; -1 with `error` set when the link is dead.  A frame
    // longer than buf, or one the link cannot make a wire frame of, is
    // skipped and counted in `too_long`.  `hops`: the cables it has crossed,
    // for links that carry the count (cables between networks of this
    // daemon); others leave it 0.
    virtual ssize_t receive(std::span<std::byte> buf, std::uint8_t& hops, std::uint64_t& too_long,
                            std::string& error) = 0;
    // True while receive() has frames to give that the descriptor does not
    // show as readable (the rest of a superframe being cut): the device
    // asks for them itself, as epoll cannot tell it.
    [[nodiscard]] virtual bool holds_frames() const { return false; }
    // Hands a frame that has crossed `hops` cables to the kernel; 0, or the
    // errno of a frame the kernel (or a cable's hop limit) refused, counted
    // as a drop while the link lives on.
    virtual int transmit(std::span<const std::byte> frame, std::uint8_t hops) = 0;

    // Links with virtio_net_hdr (a TAP): the kernel hands them superframes
    // and frames with a checksum left to fill in, and takes them back so.
    [[nodiscard]] virtual bool takes_offload() const { return false; }
    // The offload state of the frame the last receive() returned; null for
    // a plain frame (and always, on a link that does not take offload).
    [[nodiscard]] virtual const bus::Offload* offload() const { return nullptr; }
    // transmit() of a frame with offload state, on a link that takes it.
    virtual int transmit_offloaded(std::span<const std::byte> /*frame*/,
                                   const bus::Offload& /*offload*/) {
        return EOPNOTSUPP;
    }
    // Where the kernel counts the interface behind this link (stats shows
    // its drops), or nullopt for a link that has none.  Any thread.
    [[nodiscard]] virtual std::optional<InterfaceRef> interface() const { return std::nullopt; }
    // Frames the kernel dropped at this link's own socket before the daemon
    // read them, since it was opened; nullopt where the kernel keeps no such
    // count.  Any thread.
    [[nodiscard]] virtual std::optional<std::uint64_t> socket_drops() const { return std::nullopt; }
    // The socket's receive buffer as `grab ... rcvbuf BYTES` asked it, 0 for
    // the default; EINVAL for a link that has no such setting.
    [[nodiscard]] virtual std::uint64_t rcvbuf() const { return 0; }
    virtual bus::Status set_rcvbuf(std::uint64_t bytes);

  protected:
    Link(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  private:
    const int fd_;
    const std::string name_;
};

// An interface name the kernel accepts: 1-15 bytes, no '/', ':' or space.
bus::Status check_name(std::string_view name);

// Creates TAP `name` (or attaches to an existing persistent one), down,
// without packet information headers, with virtio_net_hdr and the kernel's
// checksum and TSO (and USO, where the kernel has it) offloads on.
bus::Status open_tap(std::string_view name, std::unique_ptr<Link>& out);
// Attaches to existing interface `name`: promiscuous, every protocol, its
// own transmissions left out so that nothing the bus sends comes back.
// `rcvbuf`: its socket's receive buffer in bytes, 0 for the daemon's
// default (kGrabRcvbuf), at most grab_rcvbuf_max().
bus::Status open_grab(std::string_view name, std::uint64_t rcvbuf, std::unique_ptr<Link>& out);

// A grab socket's receive buffer unless `rcvbuf` says otherwise: room for a
// few thousand full frames, so that a burst waits for the daemon's turn
// instead of being dropped (the kernel's default, net.core.rmem_default,
// holds about a hundred).
inline constexpr std::uint64_t kGrabRcvbuf = std::uint64_t{4} << 20;
// The smallest `rcvbuf` taken: the kernel's own minimum is about this.
inline constexpr std::uint64_t kGrabRcvbufMin = 4096;
// The largest `rcvbuf` taken: root's net.core.rmem_max (the bound the
// kernel sets unprivileged sockets), or the default if that is larger.
std::uint64_t grab_rcvbuf_max();

}  // namespace ipnfs::netdev
