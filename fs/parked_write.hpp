// A send on a full lossless network: the write request waits in the bus,
// holding no thread, until every recipient has room, the network goes away,
// or an interrupt ends it (then nothing was sent: delivery is all-or-none).
#pragma once

#include <fuse_lowlevel.h>

#include <cstddef>
#include <memory>
#include <span>

#include "bus/network.hpp"
#include "bus/waiter.hpp"
#include "fs/tree.hpp"

namespace ipnfs::fs {

class ParkedWrite final : public bus::SendWaiter {
  public:
    // Sends `payload` from `conn` as written by `sender`, parking the
    // request if it must wait.  On success the reply reports `written` bytes.
    static void start(fuse_req_t req, std::shared_ptr<NetDir> dir, const bus::Connection& conn,
                      std::span<const std::byte> payload, std::size_t written,
                      const bus::Credentials& sender, const bus::Address& address = {});

    void complete(bus::Status status) override;

  private:
    ParkedWrite(fuse_req_t req, std::shared_ptr<NetDir> dir, std::size_t written)
        : req_(req), dir_(std::move(dir)), written_(written) {}
    static void on_interrupt(fuse_req_t req, void* data);
    void reply(const bus::Status& status);

    fuse_req_t req_;
    std::shared_ptr<NetDir> dir_;
    std::size_t written_;
};

}  // namespace ipnfs::fs
