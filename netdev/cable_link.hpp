// One end of a cable between two networks of this daemon: a SOCK_SEQPACKET
// socket pair, each packet one frame behind one byte that counts the cables
// the frame has crossed.  The kernel queues between the ends, so neither
// network's lock is ever held while the other's is taken, and a cable that
// loops back onto its own network cannot deadlock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "bus/status.hpp"
#include "netdev/link.hpp"

namespace ipnfs::netdev {

// Cables a frame may cross (AF_IPN's depth): one more is refused with ELOOP,
// so a frame going round a loop of cables dies after this many crossings
// instead of circling for ever.
constexpr std::uint8_t kHopLimit = 8;

class CableLink final : public Link {
  public:
    // Both ends of a new cable; `a` is named after b's network and `b` after
    // a's, the network each leads to.
    static bus::Status make_pair(std::string a_leads_to, std::string b_leads_to,
                                 std::unique_ptr<CableLink>& a, std::unique_ptr<CableLink>& b);

    [[nodiscard]] std::string_view kind() const override { return "cable"; }
    ssize_t receive(std::span<std::byte> buf, std::uint8_t& hops, std::uint64_t& too_long,
                    std::string& error) override;
    int transmit(std::span<const std::byte> frame, std::uint8_t hops) override;

    // Frames refused here for having crossed kHopLimit cables already.
    [[nodiscard]] std::uint64_t hop_drops() const {
        return hop_drops_.load(std::memory_order_relaxed);
    }

  private:
    CableLink(int fd, std::string leads_to) : Link(fd, std::move(leads_to)) {}

    std::atomic<std::uint64_t> hop_drops_{0};
};

}  // namespace ipnfs::netdev
