#include "vde_stream.hpp"

#include <stdexcept>

namespace ipnfs::cable {

std::array<char, 2> length_prefix(std::size_t n) {
    return {static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
}

std::string encode(std::string_view frame) {
    if (frame.size() > kMaxFrame)
        throw std::length_error("a VDE stream frame holds at most 65535 bytes");
    auto prefix = length_prefix(frame.size());
    std::string out(prefix.begin(), prefix.end());
    out.append(frame);
    return out;
}

void StreamDecoder::feed(std::string_view bytes) {
    // Drop what was popped before appending, so the buffer holds at most
    // one partial frame plus the newest chunk.
    buf_.erase(0, start_);
    start_ = 0;
    buf_.append(bytes);
}

std::optional<std::string_view> StreamDecoder::front() const {
    std::string_view rest(buf_);
    rest.remove_prefix(start_);
    if (rest.size() < 2) return std::nullopt;
    std::size_t len = (static_cast<std::size_t>(static_cast<unsigned char>(rest[0])) << 8) |
                      static_cast<unsigned char>(rest[1]);
    if (rest.size() < 2 + len) return std::nullopt;
    return rest.substr(2, len);
}

void StreamDecoder::pop() {
    if (auto frame = front()) start_ += 2 + frame->size();
}

}  // namespace ipnfs::cable
