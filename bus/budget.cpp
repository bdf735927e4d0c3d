#include "bus/budget.hpp"

namespace ipnfs::bus {

bool ByteBudget::queue_fits(std::uint64_t n) const {
    std::uint64_t max = limit();
    return max == 0 || queued() + n <= max;
}

bool ByteBudget::try_keep(std::uint64_t n) {
    if (!try_charge(n)) return false;
    kept_.fetch_add(n, std::memory_order_relaxed);
    return true;
}

void ByteBudget::release_kept(std::uint64_t n) {
    kept_.fetch_sub(n, std::memory_order_relaxed);
    release(n);
}

bool ByteBudget::try_charge(std::uint64_t n) {
    std::uint64_t max = limit();
    if (max == 0) {
        charge(n);
        return true;
    }
    // Several networks share an owner's budget, each under its own lock.
    std::uint64_t held = held_.load(std::memory_order_relaxed);
    do {
        if (held + n > max) return false;
    } while (!held_.compare_exchange_weak(held, held + n, std::memory_order_relaxed));
    return true;
}

ByteBudget* Budgets::owner(uid_t uid) {
    if (uid == 0) return nullptr;
    MutexLock lock(mu_);
    auto& budget = by_uid_[uid];
    if (!budget) budget = std::make_unique<ByteBudget>(limits_.owner);
    return budget.get();
}

}  // namespace ipnfs::bus
