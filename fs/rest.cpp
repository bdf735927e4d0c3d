#include "fs/rest.hpp"

#include <algorithm>
#include <utility>

#include "fs/framing.hpp"

namespace ipnfs::fs {

const char* Piece::data() const {
    const char* start =
        message ? reinterpret_cast<const char*>(message->payload().data()) : line.data();
    return start + offset;
}

bus::Outcome Rest::read_now(bus::Network& net, const bus::Connection& conn, std::size_t size,
                            bool creds, Piece& out) {
    {
        MutexLock lock(mu_);
        if (!kept_.empty()) {
            out = take_kept(size);
            return bus::Outcome::message;
        }
    }
    // Not under mu_: a receive may complete parked reads (a lossless
    // network's freed room, a stalled port's `lost`), this descriptor's
    // among them, and their replies take mu_.
    bus::Received got = net.receive(conn, nullptr);
    if (got.outcome != bus::Outcome::message) return got.outcome;
    out = hand(net, conn, std::move(got.message), size, creds);
    return bus::Outcome::message;
}

Piece Rest::hand(bus::Network& net, const bus::Connection& conn, bus::MessageRef message,
                 std::size_t size, bool creds) {
    MutexLock lock(mu_);
    if (kept_.empty()) return cut(net, conn, std::move(message), size, creds);
    (void)cut(net, conn, std::move(message), 0, creds);  // kept whole, behind the rest
    return take_kept(size);
}

std::size_t Rest::next_size() const {
    MutexLock lock(mu_);
    return kept_.empty() ? 0 : kept_.front().bytes.size;
}

Piece Rest::cut(bus::Network& net, const bus::Connection& conn, bus::MessageRef message,
                std::size_t size, bool creds) {
    Piece piece;
    if (message->is_event()) {
        piece.line = event_text(*message, creds);
        piece.size = piece.line.size();
    } else {
        piece.size = message->payload().size();
        piece.message = std::move(message);
    }
    if (piece.size <= size) return piece;
    Piece rest = piece;
    rest.offset = size;
    rest.size = piece.size - size;
    piece.size = size;
    keep(net, conn, std::move(rest));
    return piece;
}

void Rest::keep(bus::Network& net, const bus::Connection& conn, Piece bytes) {
    bus::Charge charge;
    if (bytes.message && !net.charge_rest(conn, bytes.message->held_bytes(), charge)) return;
    kept_.push_back(Kept{std::move(bytes), std::move(charge)});
}

Piece Rest::take_kept(std::size_t size) {
    Kept& front = kept_.front();
    Piece out = front.bytes;
    out.size = std::min(size, front.bytes.size);
    front.bytes.offset += out.size;
    front.bytes.size -= out.size;
    if (front.bytes.size == 0) kept_.pop_front();  // its charge goes back
    return out;
}

}  // namespace ipnfs::fs
