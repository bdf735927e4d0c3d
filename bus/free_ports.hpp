// The ports nobody is connected to, as a two-level bitmap: finding the
// lowest one (connect_any) and marking one taken or free cost the same
// whatever the port count, so opening and closing a port stays O(1) on a
// network of 65536 ports.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "bus/message.hpp"

namespace ipnfs::bus {

class FreePorts {
  public:
    // `count` ports, numbered 0..count-1; those added are free, those cut off
    // forgotten (the caller cuts off only unconnected ports).
    void resize(PortId count) {
        for (PortId id = count; id < count_; ++id) set_free(id, false);
        words_.resize((count + 63) / 64, 0);
        summary_.resize((words_.size() + 63) / 64, 0);
        PortId old = count_;
        count_ = count;
        for (PortId id = old; id < count; ++id) set_free(id, true);
    }

    void set_free(PortId id, bool free) {
        std::uint64_t bit = std::uint64_t{1} << (id % 64);
        std::uint64_t& word = words_[id / 64];
        word = free ? (word | bit) : (word & ~bit);
        refresh(id / 64);
    }

    // The lowest free port, or the port count if none is free.
    [[nodiscard]] PortId lowest() const {
        for (std::size_t s = 0; s < summary_.size(); ++s) {
            if (summary_[s] == 0) continue;
            std::size_t w = s * 64 + static_cast<std::size_t>(std::countr_zero(summary_[s]));
            return static_cast<PortId>(w * 64 +
                                       static_cast<std::size_t>(std::countr_zero(words_[w])));
        }
        return count_;
    }

  private:
    void refresh(std::size_t w) {
        std::uint64_t bit = std::uint64_t{1} << (w % 64);
        std::uint64_t& s = summary_[w / 64];
        s = words_[w] != 0 ? (s | bit) : (s & ~bit);
    }

    PortId count_ = 0;
    std::vector<std::uint64_t> words_;    // bit set: port free
    std::vector<std::uint64_t> summary_;  // bit set: that word has a free port (16 words at most)
};

}  // namespace ipnfs::bus
