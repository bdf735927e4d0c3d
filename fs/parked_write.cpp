#include "fs/parked_write.hpp"

#include <cerrno>

#include "bus/log.hpp"
#include "fs/uring_transport.hpp"

namespace ipnfs::fs {

void ParkedWrite::start(fuse_req_t req, std::shared_ptr<NetDir> dir, const bus::Connection& conn,
                        std::span<const std::byte> payload, std::size_t written,
                        const bus::Credentials& sender, const bus::Address& address) {
    auto* self = new ParkedWrite(req, std::move(dir), written);
    // The same hand-off as ParkedRead: register first, never under a bus lock.
    fuse_req_interrupt_func(req, &ParkedWrite::on_interrupt, self);
    bus::SendResult sent = self->dir_->net().send(conn, payload, self, address, 0, sender);
    if (sent.parked) {
        if (uring_may_park()) return;
        // As ParkedRead::start: no ring entry to spare for a parked write.
        if (self->dir_->net().cancel(*self)) {
            fuse_req_interrupt_func(req, nullptr, nullptr);
            fuse_reply_err(req, ENOBUFS);
            delete self;
        }
        return;
    }
    fuse_req_interrupt_func(req, nullptr, nullptr);
    self->reply(sent.status);
    delete self;
}

void ParkedWrite::reply(const bus::Status& status) {
    if (status.ok()) {
        fuse_reply_write(req_, written_);
    } else {
        bus::log::limited(spdlog::level::debug,
                          bus::log::Fields{dir_->name(), "write-error"}.by(fuse_req_ctx(req_)->uid),
                          "{}", status.reason);
        fuse_reply_err(req_, static_cast<int>(status.code));
    }
}

void ParkedWrite::complete(bus::Status status) {
    fuse_req_interrupt_func(req_, nullptr, nullptr);  // see ParkedRead::complete
    reply(status);
    delete this;
}

void ParkedWrite::on_interrupt(fuse_req_t req, void* data) {
    auto* self = static_cast<ParkedWrite*>(data);
    if (self->dir_->net().cancel(*self)) {
        fuse_reply_err(req, EINTR);
        delete self;
    }
}

}  // namespace ipnfs::fs
