// What a plain read left of a message: a buffer smaller than the message
// gets its first bytes, and the rest waits for the next reads of the same
// open file (one per open file description, never shared with another
// descriptor of the port), as a byte stream's reader expects.
#pragma once

#include <cstddef>
#include <deque>
#include <span>
#include <string>

#include "bus/budget.hpp"
#include "bus/network.hpp"
#include "bus/thread_safety.hpp"

namespace ipnfs::fs {

// Bytes for one read's reply: a slice of a message (whose buffer it keeps
// alive) or of an event's text line.
struct Piece {
    bus::MessageRef message;
    std::string line;  // an event's text line (then message is null)
    std::size_t offset = 0;
    std::size_t size = 0;
    [[nodiscard]] const char* data() const;
};

class Rest {
  public:
    // A read of `size` bytes that does not wait: the kept rest first, else
    // the next queued message of `conn`, as hand() gives it.  Anything but
    // Outcome::message is the bus's answer (nothing queued, end of file).
    // `creds`: event lines say who opened a joining port (IPNFS_IOC_SET_CREDS).
    bus::Outcome read_now(bus::Network& net, const bus::Connection& conn, std::size_t size,
                          bool creds, Piece& out) EXCLUDES(mu_);
    // A read of `size` bytes took `message`: its first bytes, the rest
    // kept.  If a rest is kept already (another read of this descriptor
    // left it meanwhile), the message queues behind it and the read gets
    // the oldest bytes: a message's bytes always come before the bytes of
    // any message taken after it.
    Piece hand(bus::Network& net, const bus::Connection& conn, bus::MessageRef message,
               std::size_t size, bool creds) EXCLUDES(mu_);
    // The bytes the next read would get whole, 0 when nothing is kept.
    [[nodiscard]] std::size_t next_size() const EXCLUDES(mu_);

  private:
    struct Kept {
        Piece bytes;  // offset: where the next read starts; size: the end
        bus::Charge charge;
    };
    // The message's first `size` bytes; the rest is kept (charged), if any.
    Piece cut(bus::Network& net, const bus::Connection& conn, bus::MessageRef message,
              std::size_t size, bool creds) REQUIRES(mu_);
    // Keeps `bytes` from its offset on, charged to the network's byte bounds
    // (an event line is not: it is a few dozen bytes, like the open file's
    // own state).  Nothing is kept if the bounds have no room (counted).
    void keep(bus::Network& net, const bus::Connection& conn, Piece bytes) REQUIRES(mu_);
    Piece take_kept(std::size_t size) REQUIRES(mu_);

    // Never held across a receive (whose completions may take it); taken
    // before Network::mu_ (charge_rest), never under a bus lock.
    mutable Mutex mu_;
    // The rest being read, then (rarely) whole messages other reads of this
    // descriptor took while it was kept: at most one per such read.
    std::deque<Kept> kept_ GUARDED_BY(mu_);
};

}  // namespace ipnfs::fs
