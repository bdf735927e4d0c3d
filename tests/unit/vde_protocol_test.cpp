// VDE's request protocol as vdeplug4's libvdeplug_vde.c speaks it: a packed
// request_v3 (magic, version, type with the port in its upper bits, the
// client's sockaddr_un, a description without its NUL) and a sockaddr_un
// back.  Requests are built here byte by byte, not with the parser's types.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "bus_test_support.hpp"
#include "netdev/vde_protocol.hpp"

namespace ipnfs::test {
namespace {

namespace vde = netdev::vde;

void put32(std::vector<std::byte>& out, std::uint32_t v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof v);
}

// What vde_open() sends: sizeof(request_v3) - MAXDESCR + strlen(description).
std::vector<std::byte> request(std::uint32_t type, const sockaddr_un& addr,
                               std::string_view description, std::uint32_t magic = 0xfeedface,
                               std::uint32_t version = 3) {
    std::vector<std::byte> out;
    put32(out, magic);
    put32(out, version);
    put32(out, type);
    const auto* a = reinterpret_cast<const std::byte*>(&addr);
    out.insert(out.end(), a, a + sizeof addr);
    const auto* d = reinterpret_cast<const std::byte*>(description.data());
    out.insert(out.end(), d, d + description.size());
    return out;
}

sockaddr_un path_address(std::string_view path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

const sockaddr_un kClient = path_address("/tmp/sw/.01234-00000");

TEST(VdeProtocol, TheRequestIsPackedAs122BytesPlusTheDescription) {
    EXPECT_EQ(sizeof(sockaddr_un), 110U);
    EXPECT_EQ(vde::kFixedSize, 122U);
    EXPECT_EQ(vde::kMaxRequest, 250U);
    EXPECT_EQ(request(0, kClient, "vdeplug: user=root pid=7").size(), 122U + 24U);
}

TEST(VdeProtocol, ANewPortRequestGivesTheClientAddressAndDescription) {
    vde::Request r;
    ASSERT_TRUE(IsOk(vde::parse_request(request(0, kClient, "vdeplug: user=root pid=7"), r)));
    EXPECT_FALSE(r.port) << "type 0 asks for any port";
    EXPECT_EQ(r.client.sun_family, AF_UNIX);
    EXPECT_STREQ(r.client.sun_path, "/tmp/sw/.01234-00000");
    EXPECT_EQ(r.description, "vdeplug: user=root pid=7");
}

TEST(VdeProtocol, ThePortAskedForIsTheTypeShiftedRightByEight) {
    vde::Request r;
    ASSERT_TRUE(IsOk(vde::parse_request(request(5U << 8, kClient, ""), r)));
    ASSERT_TRUE(r.port);
    EXPECT_EQ(*r.port, 5U);
    ASSERT_TRUE(IsOk(vde::parse_request(request(1, kClient, ""), r)));
    ASSERT_TRUE(r.port) << "REQ_NEW_PORT0";
    EXPECT_EQ(*r.port, 0U);
    EXPECT_EQ(r.description, "");
}

TEST(VdeProtocol, TheDescriptionStopsAtANulAndLosesControlCharacters) {
    vde::Request r;
    ASSERT_TRUE(IsOk(vde::parse_request(request(0, kClient, std::string("ab\ncd\0xyz", 9)), r)));
    EXPECT_EQ(r.description, "ab?cd");
    ASSERT_TRUE(IsOk(vde::parse_request(request(0, kClient, std::string(128, 'd')), r)));
    EXPECT_EQ(r.description, std::string(128, 'd'));
}

TEST(VdeProtocol, WhatIsNotARequestIsKnownFromItsFirstBytes) {
    auto bad_magic = request(0, kClient, "", 0xdeadbeef);
    auto v1 = request(0, kClient, "", 0xfeedface, 0);  // a v1 request has the type second
    auto v2 = request(0, kClient, "", 0xfeedface, 2);
    auto bad_type = request(7, kClient, "");
    EXPECT_TRUE(
        FailsWith(vde::check_prefix(std::span(bad_magic).first(4)), std::errc::protocol_error));
    EXPECT_TRUE(
        FailsWith(vde::check_prefix(std::span(v1).first(8)), std::errc::protocol_not_supported));
    EXPECT_TRUE(
        FailsWith(vde::check_prefix(std::span(v2).first(8)), std::errc::protocol_not_supported));
    EXPECT_TRUE(FailsWith(vde::check_prefix(std::span(bad_type).first(12)),
                          std::errc::protocol_not_supported));
    vde::Request r;
    bus::Status s = vde::parse_request(bad_magic, r);
    EXPECT_TRUE(FailsWith(s, std::errc::protocol_error));
    EXPECT_NE(s.reason.find("0xdeadbeef"), std::string::npos) << s.reason;
    EXPECT_TRUE(FailsWith(vde::parse_request(bad_type, r), std::errc::protocol_not_supported));
}

TEST(VdeProtocol, EveryPrefixOfAGoodRequestIsFineSoFar) {
    auto good = request(3U << 8, kClient, "qemu");
    for (std::size_t n = 0; n <= good.size(); ++n) {
        EXPECT_TRUE(IsOk(vde::check_prefix(std::span(good).first(n)))) << n << " bytes";
    }
}

TEST(VdeProtocol, AShortOrOverlongRequestIsRefused) {
    auto good = request(0, kClient, "");
    vde::Request r;
    bus::Status s = vde::parse_request(std::span(good).first(121), r);
    EXPECT_TRUE(FailsWith(s, std::errc::protocol_error));
    EXPECT_NE(s.reason.find("short"), std::string::npos) << s.reason;
    EXPECT_TRUE(FailsWith(vde::parse_request({}, r), std::errc::protocol_error));
    auto huge = request(0, kClient, std::string(129, 'x'));
    EXPECT_TRUE(FailsWith(vde::check_prefix(huge), std::errc::message_size));
    EXPECT_TRUE(FailsWith(vde::parse_request(huge, r), std::errc::message_size));
}

TEST(VdeProtocol, TheClientAddressMustBeANonEmptyUnixOne) {
    vde::Request r;
    sockaddr_un inet = kClient;
    inet.sun_family = AF_INET;
    EXPECT_TRUE(FailsWith(vde::parse_request(request(0, inet, ""), r),
                          std::errc::address_family_not_supported));
    sockaddr_un empty{};
    empty.sun_family = AF_UNIX;
    EXPECT_TRUE(FailsWith(vde::parse_request(request(0, empty, ""), r),
                          std::errc::destination_address_required));
}

TEST(VdeProtocol, AnAddressIsShownAsItsPathOrAtAndItsAbstractName) {
    sockaddr_un abstract{};
    abstract.sun_family = AF_UNIX;
    std::memcpy(abstract.sun_path, "\0vde-7", 6);
    EXPECT_EQ(vde::address_text(abstract), "@vde-7");
    EXPECT_EQ(vde::address_text(kClient), "/tmp/sw/.01234-00000");
    sockaddr_un forged{};
    forged.sun_family = AF_UNIX;
    std::memcpy(forged.sun_path, "/tmp/a\nb\x7f", 10);
    EXPECT_EQ(vde::address_text(forged), "/tmp/a?b?") << "a newline would forge a log line";
}

TEST(VdeProtocol, TheReplyIsTheSwitchSocketsWholeSockaddrUn) {
    auto reply = vde::encode_reply("/tmp/sw/003.1");
    ASSERT_EQ(reply.size(), 110U);
    sockaddr_un addr{};
    std::memcpy(&addr, reply.data(), sizeof addr);
    EXPECT_EQ(addr.sun_family, AF_UNIX);
    EXPECT_STREQ(addr.sun_path, "/tmp/sw/003.1");
    EXPECT_EQ(addr.sun_path[sizeof addr.sun_path - 1], 0);
}

}  // namespace
}  // namespace ipnfs::test
