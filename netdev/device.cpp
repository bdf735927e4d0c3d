#include "netdev/device.hpp"

#include <cstring>

#include "bus/log.hpp"

namespace ipnfs::netdev {

namespace {

// Frames moved per direction per turn: a busy interface yields the engine to
// the others, and the network lock to file ports, this often.
constexpr int kBudget = 64;
// Room for the largest message plus a VLAN tag the kernel moved into
// metadata, and for the largest superframe.
constexpr std::size_t kBuffer = bus::Limits::kMaxSuperframe;
// A wire frame cut from a superframe: no longer than the network's MTU.
constexpr std::size_t kWire = bus::Limits::kMaxMtu;

}  // namespace

Device::Device(bus::Network& net, Engine& engine, std::unique_ptr<Link> link, bus::Connection conn)
    : net_(net),
      engine_(engine),
      link_(std::move(link)),
      conn_(conn),
      egress_(new Egress(engine, *this)),
      ingress_(new Ingress(engine, *this)),
      buf_(kBuffer) {
    if (link_->takes_offload()) {
        wire_.resize(kWire);
        net_.accept_offload(conn_);
    }
}

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
    // A superframe being cut goes on in on_wake (queued), before anything
    // new: one budget per turn for either, so that the receiving ports
    // drain at the pace this device fills them.
    if (segmenting_) return;
    int budget = kBudget;
    std::uint64_t too_long = 0;
    while (budget > 0) {
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
        if (forward(static_cast<std::size_t>(len), link_->offload(), hops, budget) != Went::all) {
            break;
        }
    }
    counters_.drops.fetch_add(too_long, std::memory_order_relaxed);
    // Out of budget with frames the link holds: epoll would not call again.
    if (attached_ && !input_paused_ && link_->holds_frames()) engine_.wake(*this);
}

void Device::on_wake() {
    if (!attached_) return;
    bus::Status sent;
    int budget = kBudget;
    if (input_paused_ && ingress_->take(sent) == Ingress::Turn::completed) {
        Went went = settle(sent, held_len_, held_offloaded_ ? &held_offload_ : nullptr, held_hops_);
        if (went == Went::all && segmenting_) went = send_plain(budget);
        if (went != Went::parked) {
            input_paused_ = false;
            engine_.set_input(*this, link_->fd(), true);
        }
    } else if (!input_paused_ && segmenting_) {
        send_plain(budget);
    }
    if (!input_paused_ && link_->holds_frames()) on_readable();
    if (!attached_) return;  // the link died reading
    pump_out();
}

Device::Went Device::forward(std::size_t len, const bus::Offload* offload, std::uint8_t hops,
                             int& budget) {
    --budget;
    std::span<const std::byte> frame(buf_.data(), len);
    bus::SendResult sent = net_.send(conn_, frame, ingress_, {}, hops, {}, offload);
    held_len_ = len;
    held_hops_ = hops;
    if (sent.parked) {
        held_offloaded_ = offload != nullptr;
        if (held_offloaded_) held_offload_ = *offload;
        park();
        return Went::parked;
    }
    return settle(sent.status, len, offload, hops);
}

Device::Went Device::settle(const bus::Status& sent, std::size_t len, const bus::Offload* offload,
                            std::uint8_t hops) {
    held_offloaded_ = false;
    if (offload == nullptr || sent.code != std::errc::not_supported) {
        if (!sent.ok()) drop(sent);
        return Went::all;
    }
    std::span<const std::byte> frame(buf_.data(), len);
    VnetHeader header = VnetHeader::parse(offload->state);
    if (bus::Status s = segmenter_.start(frame, header); !s.ok()) {
        drop(s);
        return Went::all;
    }
    held_hops_ = hops;
    segmenting_ = true;
    // Cut on the device's next turn (on_wake), with a budget of its own.
    engine_.wake(*this);
    return Went::later;
}

Device::Went Device::send_plain(int& budget) {
    while (segmenting_ && !segmenter_.done()) {
        if (budget <= 0) {
            // The rest after the other devices' turn, so that a receiving
            // port drains between bursts (its queue holds 64 by default).
            engine_.wake(*this);
            return Went::later;
        }
        --budget;
        std::size_t n = segmenter_.next(wire_);
        if (n == 0) {
            drop(bus::Status::error(std::errc::message_size, "a cut frame is longer than the MTU"));
            break;
        }
        bus::SendResult sent =
            net_.send(conn_, std::span<const std::byte>(wire_.data(), n), ingress_, {}, held_hops_);
        if (sent.parked) {
            park();
            return Went::parked;
        }
        if (!sent.status.ok()) drop(sent.status);
    }
    segmenting_ = false;
    return Went::all;
}

void Device::park() {
    // A full lossless network: stop reading until it takes this one.
    ingress_->set_parked();
    if (!input_paused_) {
        input_paused_ = true;
        engine_.set_input(*this, link_->fd(), false);
    }
}

void Device::drop(const bus::Status& why) {
    counters_.drops.fetch_add(1, std::memory_order_relaxed);
    bus::log::debug({net_.name(), conn_.id, "frame-drop"}, "{} {}: frame dropped: {}",
                    link_->kind(), link_->name(), why.reason);
}

void Device::pump_out() {
    for (int n = 0; n < kBudget; ++n) {
        bus::Received r{bus::Outcome::would_block, nullptr};
        Egress::Turn turn = egress_->take(r);
        // Woken for another reason (input resumed) while parked.
        if (turn == Egress::Turn::waiting) return;
        if (turn == Egress::Turn::idle) {
            // Only here may the waiter go to the bus: take() saw it neither
            // parked nor holding a result, in one look (see Handoff::take).
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
    // Offload state reaches only a link that takes it (Network::accept_offload).
    const bus::Offload* offload = msg.offload();
    int err = offload != nullptr ? link_->transmit_offloaded(msg.payload(), *offload)
                                 : link_->transmit(msg.payload(), msg.hops());
    if (err != 0) {
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
    detach();
    // After detach: whoever reads "failed" may count on the port being free.
    failed_ = true;
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
