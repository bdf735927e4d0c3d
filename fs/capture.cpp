#include "fs/capture.hpp"

#include <algorithm>
#include <cerrno>
#include <memory>

#include "bus/log.hpp"
#include "fs/handle.hpp"
#include "fs/parked_read.hpp"
#include "fs/pcap.hpp"

namespace ipnfs::fs {

namespace {

void append(std::string& out, const bus::Message& msg) {
    pcap::append_record(out, msg.time_ns(), msg.payload());
}

}  // namespace

CaptureStream::CaptureStream(std::uint32_t link_type) {
    auto header = pcap::header(link_type);
    pending_.assign(reinterpret_cast<const char*>(header.data()), header.size());
}

std::string CaptureStream::read(bus::Network& net, const bus::Connection& conn,
                                const bus::Message* first, std::size_t size, bool& ended) {
    MutexLock lock(mu_);
    ended = false;
    if (first != nullptr) {
        append(pending_, *first);
        ++records_;
    }
    while (pending_.size() < size) {
        bus::Received next = net.receive(conn, nullptr);
        if (next.outcome != bus::Outcome::message) {
            ended = next.outcome == bus::Outcome::hung_up;
            break;
        }
        append(pending_, *next.message);
        ++records_;
    }
    std::size_t n = std::min(size, pending_.size());
    std::string out = pending_.substr(0, n);
    pending_.erase(0, n);
    return out;
}

bool CaptureStream::has_pending() const {
    MutexLock lock(mu_);
    return !pending_.empty();
}

std::uint64_t CaptureStream::records() const {
    MutexLock lock(mu_);
    return records_;
}

bus::Status open_capture(Handle& h) {
    bus::Network& net = h.dir->net();
    // The link type is fixed at open: a later `policy` change needs every
    // port closed, and a capture reader is no port, so it may outlive it.
    bool ethernet = net.ethernet();
    if (bus::Status s = net.connect_capture(h.conn); !s.ok()) return s;
    h.capture = std::make_shared<CaptureStream>(ethernet ? pcap::kLinkEthernet : pcap::kLinkUser0);
    bus::log::limited(spdlog::level::info,
                      bus::log::Fields{net.name(), "capture-open"}.by(h.opener.uid),
                      "capture reader joined (link type {})", ethernet ? "EN10MB" : "USER0");
    return bus::Status::success();
}

void log_capture_close(const Handle& h) {
    bus::log::limited(spdlog::level::info,
                      bus::log::Fields{h.dir->name(), "capture-close"}.by(h.opener.uid),
                      "capture reader left ({} records, {} drops)", h.capture->records(),
                      bus::Network::drops(h.conn));
}

void read_capture(fuse_req_t req, Handle& h, std::size_t size, bool nonblock) {
    bool ended = false;
    std::string out = h.capture->read(h.dir->net(), h.conn, nullptr, size, ended);
    if (!out.empty() || ended) {
        fuse_reply_buf(req, out.data(), out.size());  // nothing at all: end of file
        return;
    }
    if (nonblock) {
        fuse_reply_err(req, EAGAIN);
        return;
    }
    ParkedRead::start(req, ReadRequest{h.dir, h.conn, size, false, h.capture});
}

void reply_capture(fuse_req_t req, const ReadRequest& read, const bus::Received& received) {
    const bus::Message* first =
        received.outcome == bus::Outcome::message ? received.message.get() : nullptr;
    bool ended = false;
    std::string out = read.capture->read(read.dir->net(), read.conn, first, read.size, ended);
    fuse_reply_buf(req, out.data(), out.size());
}

}  // namespace ipnfs::fs
