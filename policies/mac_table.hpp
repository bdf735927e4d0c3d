// The switch's learning table: where each (VLAN, MAC) was last seen, with
// aging and a size limit.  Entries are also kept in the order they were last
// seen, so expired ones are found from the front without a scan and every
// operation is O(1) amortized, however large the table.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

#include "bus/message.hpp"
#include "policies/ethernet.hpp"

namespace ipnfs::policies {

class MacTable {
  public:
    using Clock = std::chrono::steady_clock;
    using Mac = ethernet::Mac;
    using Vid = ethernet::Vid;

    static constexpr std::size_t kDefaultLimit = 4096;
    static constexpr std::chrono::seconds kDefaultExpire{300};  // vde_switch's default

    // Where an address was seen: a port of this host (node 0), or, on a
    // switch that spans hosts, node `node`'s port `port`.
    struct Where {
        std::uint32_t node = 0;
        bus::PortId port = 0;
        auto operator<=>(const Where&) const = default;
    };

    struct Entry {
        Vid vlan;
        Mac mac;
        Where where;
        Clock::time_point seen;
    };

    enum class Learned { added, refreshed, moved, full };

    // `mac` was just seen at `where` in `vlan`.  With the table full, expired
    // entries go first; if none did, a new address is not learned (full).
    Learned learn(Vid vlan, Mac mac, Where where, Clock::time_point now);

    // Where `mac` was last seen in `vlan`; nullopt when it is unknown or its
    // entry expired (which is then forgotten).
    std::optional<Where> find(Vid vlan, Mac mac, Clock::time_point now);

    // Forgets entries of this host's ports at or above `count`.
    void forget_ports_from(bus::PortId count);
    // Forgets entries of other hosts' ports.
    void forget_remote();
    void clear();

    // A smaller limit forgets the least recently seen entries beyond it.
    void set_limit(std::size_t limit);
    [[nodiscard]] std::size_t limit() const { return limit_; }
    void set_expire(std::chrono::seconds expire) { expire_ = expire; }
    // While set, entries also expire after `cap` (a spanning tree's
    // topology change ages them out after the forward delay).
    void set_expire_cap(std::optional<Clock::duration> cap) { cap_ = cap; }
    [[nodiscard]] std::chrono::seconds expire() const { return expire_; }

    // Entries held, expired ones not yet forgotten included.
    [[nodiscard]] std::size_t size() const { return index_.size(); }
    // The entries not expired at `now`, in no particular order.
    [[nodiscard]] std::vector<Entry> live(Clock::time_point now) const;

  private:
    using Order = std::list<Entry>;  // least recently seen first

    struct KeyHash {
        std::size_t operator()(std::uint64_t key) const;
    };
    static std::uint64_t key(Vid vlan, Mac mac) { return (std::uint64_t{vlan} << 48) | mac; }

    [[nodiscard]] bool expired(const Entry& e, Clock::time_point now) const {
        return now - e.seen > (cap_ ? std::min<Clock::duration>(*cap_, expire_) : expire_);
    }
    void forget(Order::iterator it);
    void forget_expired(Clock::time_point now);

    Order order_;
    std::unordered_map<std::uint64_t, Order::iterator, KeyHash> index_;
    std::size_t limit_ = kDefaultLimit;
    std::chrono::seconds expire_ = kDefaultExpire;
    std::optional<Clock::duration> cap_;
};

}  // namespace ipnfs::policies
