#include "fs/parked_read.hpp"

#include <algorithm>
#include <cerrno>

namespace ipnfs::fs {

void reply_received(fuse_req_t req, std::size_t size, const bus::Received& received) {
    switch (received.outcome) {
        case bus::Outcome::message: {
            auto payload = received.message->payload();
            fuse_reply_buf(req, reinterpret_cast<const char*>(payload.data()),
                           std::min(size, payload.size()));
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

void ParkedRead::start(fuse_req_t req, std::size_t size, std::shared_ptr<NetDir> dir,
                       const bus::Connection& conn) {
    auto* self = new ParkedRead(req, size, std::move(dir), conn);
    // Registered before the waiter is visible to senders, and never under a
    // bus lock: libfuse runs the callback right here if the interrupt came
    // first, and the callback takes the network lock.
    fuse_req_interrupt_func(req, &ParkedRead::on_interrupt, self);
    bus::Received received = self->dir_->net().receive(self->conn_, self);
    if (received.outcome == bus::Outcome::parked) return;
    fuse_req_interrupt_func(req, nullptr, nullptr);
    reply_received(req, size, received);
    delete self;
}

void ParkedRead::complete(bus::Received received) {
    // Waits out an interrupt callback that may be running for this request
    // (libfuse holds the request's lock around it), and stops later ones, so
    // nothing touches this object after the delete below.
    fuse_req_interrupt_func(req_, nullptr, nullptr);
    reply_received(req_, size_, received);
    delete this;
}

void ParkedRead::on_interrupt(fuse_req_t req, void* data) {
    auto* self = static_cast<ParkedRead*>(data);
    if (self->dir_->net().cancel(self->conn_, *self)) {
        fuse_reply_err(req, EINTR);
        delete self;
    }
    // Otherwise: not parked yet (start() will see it cancelled) or already
    // handed a message (complete() replies).
}

}  // namespace ipnfs::fs
