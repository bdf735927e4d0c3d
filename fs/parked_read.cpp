#include "fs/parked_read.hpp"

#include <cerrno>

#include "fs/capture.hpp"
#include "fs/framing.hpp"
#include "fs/rest.hpp"
#include "fs/uring_transport.hpp"

namespace ipnfs::fs {

void reply_received(fuse_req_t req, const ReadRequest& read, const bus::Received& received) {
    bool capture_reply =
        received.outcome == bus::Outcome::message || received.outcome == bus::Outcome::hung_up;
    if (read.capture && capture_reply) {
        reply_capture(req, read, received);
        return;
    }
    switch (received.outcome) {
        case bus::Outcome::message: {
            if (read.framed) {
                // Lives until fuse_reply_iov() returns: it holds the
                // messages whose payloads the iovecs point at.
                FramedReply records = framed_reply(read.dir->net(), read.conn, received.message,
                                                   read.size, read.creds);
                std::span<const iovec> iov = records.iov();
                fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
            } else {
                Piece piece = read.rest->hand(read.dir->net(), read.conn, received.message,
                                              read.size, read.creds);
                fuse_reply_buf(req, piece.data(), piece.size);
            }
            return;
        }
        case bus::Outcome::hung_up:
            fuse_reply_buf(req, nullptr, 0);
            return;
        case bus::Outcome::would_block:
            fuse_reply_err(req, EAGAIN);
            return;
        case bus::Outcome::cancelled:
            fuse_reply_err(req, EINTR);
            return;
        case bus::Outcome::parked:
            break;
    }
    fuse_reply_err(req, EIO);  // a parked outcome is never replied to
}

void ParkedRead::start(fuse_req_t req, ReadRequest read) {
    auto* self = new ParkedRead(req, std::move(read));
    // Registered before the waiter is visible to senders, and never under a
    // bus lock: libfuse runs the callback right here if the interrupt came
    // first, and the callback takes the network lock.
    fuse_req_interrupt_func(req, &ParkedRead::on_interrupt, self);
    bus::Received received = self->read_.dir->net().receive(self->read_.conn, self);
    if (received.outcome == bus::Outcome::parked) {
        if (uring_may_park()) return;
        // Its ring queue has no entry to spare (fs/uring_transport.hpp): taken
        // back as an interrupt would, unless a sender got there first.
        if (self->read_.dir->net().cancel(self->read_.conn, *self)) {
            fuse_req_interrupt_func(req, nullptr, nullptr);
            fuse_reply_err(req, ENOBUFS);
            delete self;
        }
        return;
    }
    fuse_req_interrupt_func(req, nullptr, nullptr);
    reply_received(req, self->read_, received);
    delete self;
}

void ParkedRead::complete(bus::Received received) {
    // Waits out an interrupt callback that may be running for this request
    // (libfuse holds the request's lock around it), and stops later ones, so
    // nothing touches this object after the delete below.
    fuse_req_interrupt_func(req_, nullptr, nullptr);
    reply_received(req_, read_, received);
    delete this;
}

void ParkedRead::on_interrupt(fuse_req_t req, void* data) {
    auto* self = static_cast<ParkedRead*>(data);
    if (self->read_.dir->net().cancel(self->read_.conn, *self)) {
        fuse_reply_err(req, EINTR);
        delete self;
    }
    // Otherwise: not parked yet (start() will see it cancelled) or already
    // handed a message (complete() replies).
}

}  // namespace ipnfs::fs
