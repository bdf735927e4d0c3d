// The events that found a port's ring full, waiting in order beyond it, and
// the rule that keeps them within a bound whatever clients do.  Internal to
// bus/ (Port::overflow).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

#include "bus/message.hpp"

namespace ipnfs::bus {

// Events only: data never waits beyond a ring.  A new event coalesces with
// the waiting ones so that what waits says the same about the network as
// all of them would, in at most two events per other port plus one counts
// and one lost:
//   - `leave P` cancels a waiting `join P` (P came and went unseen), so a
//     port waits as at most `leave P` (its join was already queued or read)
//     followed by `join P` (it came back: a new connection, maybe another
//     user's, so the two are not merged);
//   - a `counts` replaces the waiting one, at the end: the newest is true;
//   - a `lost N` replaces the waiting `lost M` with `lost N+M`, at the end.
// None of them passes data: while anything waits here no data is queued
// behind it, so "join P before P's first message, leave P after its last"
// holds.  Cancelled events leave a hole that the next read skips; holes are
// packed away once they outnumber the events, so the memory follows the
// events, amortized O(1) a push.
class Backlog {
  public:
    [[nodiscard]] bool empty() const { return live() == 0; }
    // Events waiting (holes not counted).
    [[nodiscard]] std::size_t size() const { return live(); }
    [[nodiscard]] const MessageRef& front() const { return held_->q.front(); }
    MessageRef take_front();
    void push(const MessageRef& event);

  private:
    // Made on first use: few ports ever need one, and an empty std::deque
    // already takes about 600 bytes, most of an idle port
    // (docs/benchmark.md, "Profiles").
    struct Held {
        std::deque<MessageRef> q;  // null: a cancelled event; never null at the front
        std::uint64_t base = 0;    // position of q.front() since the backlog was made
        std::size_t live = 0;
        std::unordered_map<PortId, std::uint64_t>
            join;  // a member's waiting join, last of its events
        std::optional<std::uint64_t> counts;
        std::optional<std::uint64_t> lost;
    };

    [[nodiscard]] std::size_t live() const { return held_ ? held_->live : 0; }
    MessageRef erase(std::uint64_t at);
    void append(const MessageRef& event);
    void pack();

    std::unique_ptr<Held> held_;
};

}  // namespace ipnfs::bus
