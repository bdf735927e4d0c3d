#include "fs/pcap.hpp"

#include <algorithm>
#include <cstring>

namespace ipnfs::fs::pcap {

namespace {

// pcap_file_header and pcap_sf_pkthdr of libpcap's savefile format.
struct FileHeader {
    std::uint32_t magic;
    std::uint16_t version_major;
    std::uint16_t version_minor;
    std::int32_t thiszone;
    std::uint32_t sigfigs;
    std::uint32_t snaplen;
    std::uint32_t linktype;
};
struct RecordHeader {
    std::uint32_t ts_sec;
    std::uint32_t ts_usec;
    std::uint32_t incl_len;
    std::uint32_t orig_len;
};
static_assert(sizeof(FileHeader) == kHeaderSize);
static_assert(sizeof(RecordHeader) == kRecordHeaderSize);

constexpr std::uint64_t kNsPerSec = 1'000'000'000;
constexpr std::uint64_t kNsPerUsec = 1'000;

}  // namespace

std::array<std::byte, kHeaderSize> header(std::uint32_t link_type) {
    FileHeader h{kMagic, kVersionMajor, kVersionMinor, 0, 0, kSnapLen, link_type};
    std::array<std::byte, kHeaderSize> out{};
    std::memcpy(out.data(), &h, sizeof h);
    return out;
}

void append_record(std::string& out, std::uint64_t time_ns, std::span<const std::byte> packet) {
    auto kept = std::min<std::size_t>(packet.size(), kSnapLen);
    // 32-bit seconds, as the classic format has them (until 2106, unsigned).
    RecordHeader h{static_cast<std::uint32_t>(time_ns / kNsPerSec),
                   static_cast<std::uint32_t>(time_ns % kNsPerSec / kNsPerUsec),
                   static_cast<std::uint32_t>(kept), static_cast<std::uint32_t>(packet.size())};
    out.append(reinterpret_cast<const char*>(&h), sizeof h);
    out.append(reinterpret_cast<const char*>(packet.data()), kept);
}

}  // namespace ipnfs::fs::pcap
