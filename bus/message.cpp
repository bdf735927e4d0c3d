#include "bus/message.hpp"

#include <cstring>
#include <new>

namespace ipnfs::bus {

static_assert(sizeof(Message) == 80, "a plain message's header costs 80 bytes: keep it so");

MessageRef Message::make(PortId from, std::span<const std::byte> payload, Kind kind,
                         const Offload* offload) {
    void* mem = ::operator new(sizeof(Message) + payload.size() +
                               extra_bytes(payload.size(), offload != nullptr));
    auto* m = new (mem)
        Message(from, static_cast<std::uint32_t>(payload.size()), kind, offload != nullptr);
    auto* body = reinterpret_cast<std::byte*>(m + 1);
    if (!payload.empty()) std::memcpy(body, payload.data(), payload.size());
    if (offload != nullptr) std::memcpy(body + m->offload_at(), offload, sizeof(Offload));
    return MessageRef{m};
}

void intrusive_ptr_release(Message* m) {
    if (m->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        m->~Message();
        ::operator delete(m);
    }
}

}  // namespace ipnfs::bus
