#include "netdev/device.hpp"

#include <cstring>

#include "bus/log.hpp"

namespace ipnfs::netdev {

namespace {

// Frames moved per direction per turn: a busy interface yields the engine to
// the others, and the network lock to file ports, this often.
constexpr int kBudget = 64;
// Room for the largest message plus a VLAN tag the kernel moved into metadata.
constexpr std::size_t kBuffer = bus::Limits::kMaxMtu + 64;

}  // namespace

Device::Device(bus::Network& net, Engine& engine, std::unique_ptr<Link> link, bus::Connection conn)
    : net_(net),
      engine_(engine),
      link_(std::move(link)),
      conn_(conn),
      egress_(new Egress(engine, *this)),
      ingress_(new Ingress(engine, *this)),
      buf_(kBuffer) {}

Device::~Device() {
    // Normally detached on the engine thread already; this covers a device
    // that never started.
    if (attached_) detach();
}

void Device::start() {
    engine_.watch(*this, link_->fd());
}

std::string_view Device::state() const {
    return failed_ ? "failed" : "running";
}

void Device::on_readable() {
    if (!attached_ || input_paused_) return;
    std::uint64_t too_long = 0;
    for (int n = 0; n < kBudget; ++n) {
        std::string error;
        std::uint8_t hops = 0;
        ssize_t len = link_->receive(buf_, hops, too_long, error);
        if (len < 0) {
            fail(error);
            break;
        }
        if (len == 0) break;
        counters_.frames_in.fetch_add(1, std::memory_order_relaxed);
        counters_.bytes_in.fetch_add(len, std::memory_order_relaxed);
        std::span<const std::byte> frame(buf_.data(), static_cast<std::size_t>(len));
        bus::SendResult sent = net_.send(conn_, frame, ingress_, {}, hops);
        if (sent.parked) {
            // A full lossless network: stop reading until it takes this one.
            ingress_->set_parked();
            input_paused_ = true;
            engine_.set_input(*this, link_->fd(), false);
            break;
        }
        if (!sent.status.ok()) {
            counters_.drops.fetch_add(1, std::memory_order_relaxed);
            bus::log::debug({net_.name(), conn_.id, "frame-drop"}, "{} {}: frame dropped: {}",
                            link_->kind(), link_->name(), sent.status.reason);
        }
    }
    counters_.drops.fetch_add(too_long, std::memory_order_relaxed);
    // Out of budget with frames the link holds: epoll would not call again.
    if (attached_ && !input_paused_ && link_->holds_frames()) engine_.wake(*this);
}

void Device::on_wake() {
    if (!attached_) return;
    bus::Status sent;
    if (input_paused_ && ingress_->take(sent)) {
        if (!sent.ok()) counters_.drops.fetch_add(1, std::memory_order_relaxed);
        input_paused_ = false;
        engine_.set_input(*this, link_->fd(), true);
    }
    if (!input_paused_ && link_->holds_frames()) on_readable();
    if (!attached_) return;  // the link died reading
    pump_out();
}

void Device::pump_out() {
    for (int n = 0; n < kBudget; ++n) {
        bus::Received r{bus::Outcome::would_block, nullptr};
        if (!egress_->take(r)) {
            // Woken for another reason (input resumed) while parked.
            if (egress_->waiting()) return;
            r = net_.receive(conn_, nullptr);
            if (r.outcome == bus::Outcome::would_block) {
                r = net_.receive(conn_, egress_);
                if (r.outcome == bus::Outcome::parked) {
                    egress_->set_parked();
                    return;
                }
            }
        }
        // Anything but a message: the network is gone (hang_up detaches us).
        if (r.outcome != bus::Outcome::message) return;
        transmit(*r.message);
    }
    engine_.wake(*this);  // more may be queued: after the other devices' turn
}

void Device::transmit(const bus::Message& msg) {
    if (msg.is_event()) return;  // membership events are for programs, not wires
    if (int err = link_->transmit(msg.payload(), msg.hops()); err != 0) {
        counters_.drops.fetch_add(1, std::memory_order_relaxed);
        bus::log::debug({net_.name(), conn_.id, "frame-drop"},
                        "{} {}: frame of {} bytes not sent: {}", link_->kind(), link_->name(),
                        msg.payload().size(), std::strerror(err));
        return;
    }
    counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_out.fetch_add(msg.payload().size(), std::memory_order_relaxed);
}

void Device::fail(const std::string& why) {
    bus::log::warn({net_.name(), conn_.id, "device-stop"}, "{} {}: stopped, port released: {}",
                   link_->kind(), link_->name(), why);
    failed_ = true;
    detach();
}

void Device::detach() {
    if (!attached_) return;
    attached_ = false;
    bool removed = net_.cancel(conn_, *egress_);
    egress_->release(removed);
    egress_ = nullptr;
    removed = net_.cancel(*ingress_);
    ingress_->release(removed);
    ingress_ = nullptr;
    // Last: until the waiters were released a completion could still queue
    // a wake for this device; forget() takes it off again.
    engine_.forget(*this, link_->fd());
    // Frames it still held are counted as drops of its port, like a reader's.
    net_.disconnect(conn_);
}

}  // namespace ipnfs::netdev
