// VDE's stream format, as vde_plug and dpipe carry frames over a byte
// stream (a pipe, ssh): each frame is preceded by its length, 2 bytes big
// endian.  A stream has no other framing, so one lost byte desynchronises
// it for good; the decoder therefore never skips or resynchronises.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ipnfs::cable {

// The largest frame a 2-byte length can describe.
inline constexpr std::size_t kMaxFrame = 65535;

// The 2-byte length that goes before a frame of n bytes (n <= kMaxFrame).
std::array<char, 2> length_prefix(std::size_t n);
// Length prefix and frame in one string; throws std::length_error above kMaxFrame.
std::string encode(std::string_view frame);

// Reassembles frames from a stream read in chunks of any size: a length
// split across reads, a frame split across reads, many frames in one read.
class StreamDecoder {
  public:
    void feed(std::string_view bytes);
    // The oldest complete frame (possibly empty), or nothing yet.  The view
    // stays valid until the next feed().
    [[nodiscard]] std::optional<std::string_view> front() const;
    // Forgets the frame front() returned.
    void pop();
    // Bytes held that are not yet a whole frame, or a whole frame not yet popped.
    [[nodiscard]] std::size_t buffered() const { return buf_.size() - start_; }

  private:
    std::string buf_;
    std::size_t start_ = 0;  // where the oldest unpopped frame begins in buf_
};

}  // namespace ipnfs::cable
