// Frames a policy sends itself (the switch's BPDUs), and its timer.
#include <algorithm>
#include <chrono>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

namespace {

// A timer never fires sooner than this after the last call: a policy whose
// clock disagrees with the timer's cannot make it spin.
constexpr auto kMinTick = std::chrono::milliseconds(10);

}  // namespace

void Network::policy_tick(AfterUnlock& after) {
    // Policy::tick runs under mu_, and so does every send it makes: the
    // analysis does not follow the virtual call, so it is told.
    struct Sink final : Originate {
        Sink(Network& n, AfterUnlock& a) : net(n), after(a) {}
        void send(PortId port, std::span<const std::byte> payload) override {
            net.mu_.assert_held();
            net.originate(port, payload, after);
        }
        Network& net;
        AfterUnlock& after;
    } sink(*this, after);
    std::optional<Timer::Clock::time_point> next = policy_->tick(sink);
    if (next && !hung_up_) {
        Timer::shared().arm(policy_timer_, std::max(*next, Timer::Clock::now() + kMinTick));
    }
}

void Network::policy_expired() {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (hung_up_) return;
        listener = listener_;
        policy_tick(after);
    }
    after.run(listener);
}

void Network::originate(PortId id, std::span<const std::byte> payload, AfterUnlock& after) {
    if (hung_up_ || id >= ports_.size() || payload.size() > settings_.mtu) return;
    Port& port = *ports_[id];
    if (!port.ring) return;
    MessageRef msg = Message::make(id, payload);
    // It never waits: on a lossless network too, no room means it is lost.
    bool room =
        !settings_.lossless || (pool_used_ < settings_.pool && budget_fits(msg->held_bytes()));
    msg->set_seq(next_seq_++);
    if (capture_readers_ > 0) capture(msg, after);
    if (!room || !enqueue(port, msg, after)) {
        port.counters.drops.fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace ipnfs::bus
