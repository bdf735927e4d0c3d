#include "bus/message.hpp"

#include <cstring>
#include <new>

namespace ipnfs::bus {

MessageRef Message::make(PortId from, std::span<const std::byte> payload, Kind kind) {
    void* mem = ::operator new(sizeof(Message) + payload.size());
    auto* m = new (mem) Message(from, static_cast<std::uint32_t>(payload.size()), kind);
    if (!payload.empty()) {
        std::memcpy(reinterpret_cast<std::byte*>(m + 1), payload.data(), payload.size());
    }
    return MessageRef{m};
}

void intrusive_ptr_release(Message* m) {
    if (m->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        m->~Message();
        ::operator delete(m);
    }
}

}  // namespace ipnfs::bus
