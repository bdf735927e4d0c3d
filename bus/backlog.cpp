#include "bus/backlog.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <utility>

namespace ipnfs::bus {

namespace {

std::uint64_t lost_count(const Message& event) {
    std::uint64_t n = 0;
    std::memcpy(&n, event.payload().data(), std::min(sizeof n, event.payload().size()));
    return n;
}

}  // namespace

void Backlog::push(const MessageRef& event) {
    if (!held_) held_ = std::make_unique<Held>();
    Held& h = *held_;
    switch (event->kind()) {
        case Kind::leave:
            if (auto it = h.join.find(event->from()); it != h.join.end()) {
                std::uint64_t at = it->second;
                h.join.erase(it);
                erase(at);
                return;
            }
            break;
        case Kind::counts:
            if (h.counts) erase(*std::exchange(h.counts, std::nullopt));
            h.counts = h.base + h.q.size();
            break;
        case Kind::lost:
            if (h.lost) {
                MessageRef before = erase(*std::exchange(h.lost, std::nullopt));
                std::uint64_t sum = lost_count(*before) + lost_count(*event);
                MessageRef merged =
                    Message::make(event->from(), std::as_bytes(std::span(&sum, 1)), Kind::lost);
                merged->set_seq(event->seq());
                h.lost = h.base + h.q.size();
                append(merged);
                return;
            }
            h.lost = h.base + h.q.size();
            break;
        case Kind::join:
            h.join[event->from()] = h.base + h.q.size();
            break;
        default:
            break;
    }
    append(event);
}

void Backlog::append(const MessageRef& event) {
    held_->q.push_back(event);
    ++held_->live;
}

MessageRef Backlog::take_front() {
    Held& h = *held_;
    std::uint64_t at = h.base;
    if (h.q.front()->kind() == Kind::join) {
        if (auto it = h.join.find(h.q.front()->from()); it != h.join.end() && it->second == at)
            h.join.erase(it);
    }
    return erase(at);
}

MessageRef Backlog::erase(std::uint64_t at) {
    Held& h = *held_;
    MessageRef event = std::exchange(h.q[at - h.base], nullptr);
    --h.live;
    if (h.counts == at) h.counts.reset();
    if (h.lost == at) h.lost.reset();
    while (!h.q.empty() && !h.q.front()) {
        h.q.pop_front();
        ++h.base;
    }
    if (h.q.size() > 2 * h.live + 16) pack();
    return event;
}

void Backlog::pack() {
    Held& h = *held_;
    std::deque<MessageRef> kept;
    h.join.clear();
    h.counts.reset();
    h.lost.reset();
    for (MessageRef& event : h.q) {
        if (!event) continue;
        std::uint64_t at = h.base + kept.size();
        switch (event->kind()) {
            case Kind::join:
                h.join[event->from()] = at;
                break;
            case Kind::leave:
                h.join.erase(event->from());
                break;
            case Kind::counts:
                h.counts = at;
                break;
            case Kind::lost:
                h.lost = at;
                break;
            default:
                break;
        }
        kept.push_back(std::move(event));
    }
    h.q = std::move(kept);
}

}  // namespace ipnfs::bus
