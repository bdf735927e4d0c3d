// Bytes of queued messages the daemon holds for a network and for the owner
// of networks: what a client can make the daemon keep in memory.  A message
// is charged once while any queue holds a copy (Message::pending_copies).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "bus/thread_safety.hpp"

namespace ipnfs::bus {

// The bounds root sets at mount (-o net_mib, -o user_mib); 0: none.
struct ByteLimits {
    std::uint64_t network = 64ULL << 20;  // every network, root's included
    std::uint64_t owner = 256ULL << 20;   // all networks of one non-root owner together
};

// One count of held bytes against a limit.  Charged by senders, released by
// whichever thread takes or discards the last copy, without a common lock.
class ByteBudget {
  public:
    explicit ByteBudget(std::uint64_t limit = 0) : limit_(limit) {}
    ByteBudget(const ByteBudget&) = delete;
    ByteBudget& operator=(const ByteBudget&) = delete;

    // False, charging nothing, if n more bytes would pass the limit.
    bool try_charge(std::uint64_t n);
    // Charges even beyond the limit (a lossless network's message that must
    // not be lost once routed).
    void charge(std::uint64_t n) { held_.fetch_add(n, std::memory_order_relaxed); }
    void release(std::uint64_t n) { held_.fetch_sub(n, std::memory_order_relaxed); }
    // try_charge() for bytes kept outside any queue (a reader's rest), which
    // queue_fits() leaves out; release_kept() gives them back.
    bool try_keep(std::uint64_t n);
    void release_kept(std::uint64_t n);
    // Whether n more bytes of queued messages fit.  Kept bytes do not count:
    // a lossless sender waits only for what a stall can take back (queues),
    // so kept and queued bytes together may reach twice the limit there.
    [[nodiscard]] bool queue_fits(std::uint64_t n) const;
    [[nodiscard]] std::uint64_t held() const { return held_.load(std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t queued() const {
        return held() - kept_.load(std::memory_order_relaxed);
    }
    [[nodiscard]] std::uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
    void set_limit(std::uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> held_{0};
    std::atomic<std::uint64_t> kept_{0};  // the part of held_ outside queues
    std::atomic<std::uint64_t> limit_;    // 0: none
};

// Bytes charged to a network's budget and its owner's outside any queue (a
// reader's rest of a message, kept by fs per open file), given back when
// this goes.  The budgets outlive it: the network's is a member of the
// network its holder keeps alive, an owner's lives as long as Budgets.
class Charge {
  public:
    Charge() = default;
    Charge(ByteBudget* network, ByteBudget* owner, std::uint64_t bytes)
        : network_(network), owner_(owner), bytes_(bytes) {}
    Charge(Charge&& other) noexcept
        : network_(std::exchange(other.network_, nullptr)),
          owner_(std::exchange(other.owner_, nullptr)),
          bytes_(std::exchange(other.bytes_, 0)) {}
    Charge& operator=(Charge&& other) noexcept {
        if (this != &other) {
            release();
            network_ = std::exchange(other.network_, nullptr);
            owner_ = std::exchange(other.owner_, nullptr);
            bytes_ = std::exchange(other.bytes_, 0);
        }
        return *this;
    }
    Charge(const Charge&) = delete;
    Charge& operator=(const Charge&) = delete;
    ~Charge() { release(); }

  private:
    void release() {
        if (network_ != nullptr) network_->release_kept(bytes_);
        if (owner_ != nullptr) owner_->release_kept(bytes_);
        network_ = owner_ = nullptr;
    }
    ByteBudget* network_ = nullptr;
    ByteBudget* owner_ = nullptr;
    std::uint64_t bytes_ = 0;
};

// The daemon's per-owner budgets: networks owned by the same uid share one.
// Messages point at their owner's budget while queued, so a budget lives as
// long as this object (one small entry per uid that ever owned a network).
class Budgets {
  public:
    explicit Budgets(const ByteLimits& limits) : limits_(limits) {}
    Budgets(const Budgets&) = delete;
    Budgets& operator=(const Budgets&) = delete;

    [[nodiscard]] const ByteLimits& limits() const { return limits_; }
    // The budget networks owned by `uid` share; null for root, whose
    // networks are bounded each by the per-network limit only.
    ByteBudget* owner(uid_t uid) EXCLUDES(mu_);

  private:
    const ByteLimits limits_;
    Mutex mu_;  // guards by_uid_ (its entries are never removed)
    std::map<uid_t, std::unique_ptr<ByteBudget>> by_uid_ GUARDED_BY(mu_);
};

}  // namespace ipnfs::bus
