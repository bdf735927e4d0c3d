#include "policies/mac_table.hpp"

namespace ipnfs::policies {

std::size_t MacTable::KeyHash::operator()(std::uint64_t key) const {
    // libstdc++ hashes integers to themselves; addresses that differ only in
    // their high bits (or are chosen by a sender to collide) would share
    // buckets.  A 64-bit finalizer (splitmix64's) spreads every bit.
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return static_cast<std::size_t>(key);
}

MacTable::Learned MacTable::learn(Vid vlan, Mac mac, Where where, Clock::time_point now) {
    auto found = index_.find(key(vlan, mac));
    if (found != index_.end()) {
        auto it = found->second;
        bool moved = it->where != where;
        it->where = where;
        it->seen = now;
        order_.splice(order_.end(), order_, it);
        return moved ? Learned::moved : Learned::refreshed;
    }
    if (index_.size() >= limit_) {
        forget_expired(now);
        if (index_.size() >= limit_) return Learned::full;
    }
    order_.push_back(Entry{vlan, mac, where, now});
    index_.emplace(key(vlan, mac), std::prev(order_.end()));
    return Learned::added;
}

std::optional<MacTable::Where> MacTable::find(Vid vlan, Mac mac, Clock::time_point now) {
    auto found = index_.find(key(vlan, mac));
    if (found == index_.end()) return std::nullopt;
    if (expired(*found->second, now)) {
        forget(found->second);
        return std::nullopt;
    }
    return found->second->where;
}

void MacTable::forget(Order::iterator it) {
    index_.erase(key(it->vlan, it->mac));
    order_.erase(it);
}

void MacTable::forget_expired(Clock::time_point now) {
    while (!order_.empty() && expired(order_.front(), now)) forget(order_.begin());
}

void MacTable::forget_ports_from(bus::PortId count) {
    for (auto it = order_.begin(); it != order_.end();) {
        auto next = std::next(it);
        if (it->where.node == 0 && it->where.port >= count) forget(it);
        it = next;
    }
}

void MacTable::forget_remote() {
    for (auto it = order_.begin(); it != order_.end();) {
        auto next = std::next(it);
        if (it->where.node != 0) forget(it);
        it = next;
    }
}

void MacTable::clear() {
    index_.clear();
    order_.clear();
}

void MacTable::set_limit(std::size_t limit) {
    limit_ = limit;
    while (index_.size() > limit_) forget(order_.begin());
}

std::vector<MacTable::Entry> MacTable::live(Clock::time_point now) const {
    std::vector<Entry> out;
    out.reserve(order_.size());
    for (const Entry& e : order_) {
        if (!expired(e, now)) out.push_back(e);
    }
    return out;
}

}  // namespace ipnfs::policies
