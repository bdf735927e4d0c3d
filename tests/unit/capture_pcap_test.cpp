// The pcap bytes of the capture file: the classic savefile format, byte for
// byte as libpcap reads it (host order, microsecond magic).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "fs/pcap.hpp"

namespace ipnfs::fs::pcap {
namespace {

std::uint32_t u32_at(const std::string& s, std::size_t off) {
    std::uint32_t v = 0;
    std::memcpy(&v, s.data() + off, sizeof v);
    return v;
}

std::uint16_t u16_at(const std::byte* p) {
    std::uint16_t v = 0;
    std::memcpy(&v, p, sizeof v);
    return v;
}

TEST(CapturePcap, GlobalHeaderIsTheClassicFormat) {
    auto h = header(kLinkEthernet);
    ASSERT_EQ(h.size(), 24u);
    std::string s(reinterpret_cast<const char*>(h.data()), h.size());
    EXPECT_EQ(u32_at(s, 0), 0xa1b2c3d4u);
    EXPECT_EQ(u16_at(h.data() + 4), 2u);
    EXPECT_EQ(u16_at(h.data() + 6), 4u);
    EXPECT_EQ(u32_at(s, 8), 0u);   // thiszone
    EXPECT_EQ(u32_at(s, 12), 0u);  // sigfigs
    EXPECT_EQ(u32_at(s, 16), 65535u);
    EXPECT_EQ(u32_at(s, 20), 1u);
    auto user = header(kLinkUser0);
    EXPECT_EQ(std::memcmp(user.data(), h.data(), 20), 0);
    std::string u(reinterpret_cast<const char*>(user.data()), user.size());
    EXPECT_EQ(u32_at(u, 20), 147u);
}

TEST(CapturePcap, ARecordIsSecondsMicrosecondsTwoLengthsAndThePacket) {
    std::string out = "prefix";
    std::string packet = "hello, pcap";
    // 1700000000.123456789 s: the nanoseconds are cut to microseconds.
    append_record(out, 1'700'000'000'123'456'789ULL, std::as_bytes(std::span(packet)));
    ASSERT_EQ(out.size(), 6 + 16 + packet.size());
    EXPECT_EQ(record_size(packet.size()), 16 + packet.size());
    EXPECT_EQ(u32_at(out, 6), 1'700'000'000u);
    EXPECT_EQ(u32_at(out, 10), 123'456u);
    EXPECT_EQ(u32_at(out, 14), packet.size());
    EXPECT_EQ(u32_at(out, 18), packet.size());
    EXPECT_EQ(out.substr(22), packet);
}

TEST(CapturePcap, AnEmptyMessageIsAnEmptyRecord) {
    std::string out;
    append_record(out, 0, {});
    ASSERT_EQ(out.size(), 16u);
    EXPECT_EQ(u32_at(out, 8), 0u);
    EXPECT_EQ(u32_at(out, 12), 0u);
}

TEST(CapturePcap, ThePacketIsCutAtTheSnapLength) {
    std::vector<std::byte> big(kSnapLen + 10, std::byte{0x5a});
    std::string out;
    append_record(out, 0, big);
    ASSERT_EQ(out.size(), 16u + kSnapLen);
    EXPECT_EQ(record_size(big.size()), 16u + kSnapLen);
    EXPECT_EQ(u32_at(out, 8), kSnapLen);
    EXPECT_EQ(u32_at(out, 12), big.size());
}

}  // namespace
}  // namespace ipnfs::fs::pcap
