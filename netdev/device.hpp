// One kernel interface plugged into a network as a port.  The engine thread
// moves its frames both ways: kernel -> bus on input, bus -> kernel when its
// port has messages.  Neither direction ever waits: a full lossless network
// stops reading the interface (the kernel queues, then drops, as for any
// slow link) and an empty port parks a waiter that wakes the engine.
// A link that takes offload state (a TAP with vnet headers) sends its
// superframes whole; where the network says a recipient takes only plain
// frames, the device cuts them into wire frames and sends those instead.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bus/network.hpp"
#include "netdev/engine.hpp"
#include "netdev/handoff.hpp"
#include "netdev/link.hpp"
#include "netdev/offload.hpp"

namespace ipnfs::netdev {

struct DeviceCounters {
    std::atomic<std::uint64_t> frames_in{0};  // from the kernel into the network
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> frames_out{0};  // from the network to the kernel
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> drops{0};  // lost here: too long, refused by either side
};

class Device final : public Pollable {
  public:
    // Takes a connection the caller made for it (reads and writes).
    Device(bus::Network& net, Engine& engine, std::unique_ptr<Link> link, bus::Connection conn);
    ~Device() override;
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    // Starts moving frames.  Any thread.
    void start();
    // Stops moving frames and lets go of the port.  On the engine thread.
    void detach();

    [[nodiscard]] const Link& link() const { return *link_; }
    [[nodiscard]] Link& link() { return *link_; }
    [[nodiscard]] bus::PortId port() const { return conn_.id; }
    [[nodiscard]] const DeviceCounters& counters() const { return counters_; }
    // "running", or "failed" once its link died (the log says why).
    [[nodiscard]] std::string_view state() const;

    void on_readable() override;
    void on_wake() override;

  private:
    using Egress = Handoff<bus::Waiter, bus::Received>;
    using Ingress = Handoff<bus::SendWaiter, bus::Status>;

    void pump_out();
    void transmit(const bus::Message& msg);
    // How far a frame from the kernel went: all of it; parked (the network
    // is full: input stays paused, the frame held in buf_, until the send
    // completes); or later (cut into wire frames, the turn's budget spent:
    // the rest goes on the device's next turn, input kept for it).
    enum class Went : std::uint8_t { all, parked, later };
    // Sends a frame from the kernel; every send takes one of `budget`.
    Went forward(std::size_t len, const bus::Offload* offload, std::uint8_t hops, int& budget);
    // A send's end: a superframe a recipient cannot take goes again as
    // plain frames, cut on the device's next turn (later); a refusal is a
    // drop.
    Went settle(const bus::Status& sent, std::size_t len, const bus::Offload* offload,
                std::uint8_t hops);
    // The wire frames of a superframe (or the frame, its checksum filled
    // in), one send each, resumed where a parked send or the budget stopped.
    Went send_plain(int& budget);
    void park();
    void drop(const bus::Status& why);
    void fail(const std::string& why);

    bus::Network& net_;
    Engine& engine_;
    const std::unique_ptr<Link> link_;
    const bus::Connection conn_;
    // Waiters the bus may complete from another thread; each frees itself if
    // its device is gone first (see handoff.hpp).
    Egress* egress_;
    Ingress* ingress_;
    // Engine-thread state.
    bool attached_ = true;
    bool input_paused_ = false;
    std::vector<std::byte> buf_;
    // While input is paused: the frame of buf_ whose send was parked, and
    // its offload state if that went too (a superframe then), so a late
    // "take only plain frames" answer can still cut it.
    std::size_t held_len_ = 0;
    std::uint8_t held_hops_ = 0;
    bool held_offloaded_ = false;
    bus::Offload held_offload_;
    // The superframe in buf_ being cut into wire_, while segmenting_.
    Segmenter segmenter_;
    bool segmenting_ = false;
    std::vector<std::byte> wire_;

    DeviceCounters counters_;
    std::atomic<bool> failed_{false};  // set on the engine thread, read by stats
};

}  // namespace ipnfs::netdev
