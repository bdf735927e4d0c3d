#include "ether.hpp"

#include <arpa/inet.h>

#include <cstdio>

namespace ipnfs_it {

namespace {

void put16(std::string& out, std::uint16_t v) {
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v & 0xff);
}

void put32(std::string& out, std::uint32_t v) {
    put16(out, static_cast<std::uint16_t>(v >> 16));
    put16(out, static_cast<std::uint16_t>(v & 0xffff));
}

void put_mac(std::string& out, const Mac& mac) {
    for (auto b : mac) out += static_cast<char>(b);
}

std::uint16_t get16(std::string_view s, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<std::uint8_t>(s[at]) << 8) |
                                      static_cast<std::uint8_t>(s[at + 1]));
}

std::uint32_t get32(std::string_view s, std::size_t at) {
    return (static_cast<std::uint32_t>(get16(s, at)) << 16) | get16(s, at + 2);
}

Mac get_mac(std::string_view s, std::size_t at) {
    Mac mac{};
    for (std::size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<std::uint8_t>(s[at + i]);
    return mac;
}

// The Internet checksum (RFC 1071) of `data`.
std::uint16_t checksum(std::string_view data) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < data.size(); i += 2) sum += get16(data, i);
    if (data.size() % 2 == 1) sum += static_cast<std::uint8_t>(data.back()) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

}  // namespace

std::optional<Mac> parse_mac(std::string_view text) {
    Mac mac{};
    unsigned b[6];
    std::string s(text);
    char extra = 0;
    if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                    &b[5], &extra) != 6) {
        return std::nullopt;
    }
    for (int i = 0; i < 6; ++i) mac[i] = static_cast<std::uint8_t>(b[i]);
    return mac;
}

std::string mac_text(const Mac& mac) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                  mac[4], mac[5]);
    return buf;
}

std::uint32_t ipv4(const std::string& dotted) {
    in_addr a{};
    if (inet_pton(AF_INET, dotted.c_str(), &a) != 1) return 0;
    return ntohl(a.s_addr);
}

std::string build_frame(const Frame& frame) {
    std::string out;
    put_mac(out, frame.dst);
    put_mac(out, frame.src);
    if (frame.vid) {
        put16(out, 0x8100);
        put16(out, static_cast<std::uint16_t>(*frame.vid & 0x0fff));
    }
    put16(out, frame.type);
    out += frame.payload;
    std::size_t min = frame.vid ? 64 : 60;
    if (out.size() < min) out.resize(min, '\0');
    return out;
}

std::optional<Frame> parse_frame(std::string_view bytes) {
    if (bytes.size() < 14) return std::nullopt;
    Frame f;
    f.dst = get_mac(bytes, 0);
    f.src = get_mac(bytes, 6);
    std::size_t at = 12;
    std::uint16_t type = get16(bytes, at);
    if (type == 0x8100) {
        if (bytes.size() < 18) return std::nullopt;
        f.vid = get16(bytes, 14) & 0x0fff;
        at = 16;
        type = get16(bytes, at);
    }
    f.type = type;
    f.payload = std::string(bytes.substr(at + 2));
    return f;
}

std::string arp_payload(const Arp& arp) {
    std::string out;
    put16(out, 1);       // Ethernet
    put16(out, 0x0800);  // IPv4
    out += static_cast<char>(6);
    out += static_cast<char>(4);
    put16(out, arp.op);
    put_mac(out, arp.sha);
    put32(out, arp.spa);
    put_mac(out, arp.tha);
    put32(out, arp.tpa);
    return out;
}

std::optional<Arp> parse_arp(std::string_view p) {
    if (p.size() < 28 || get16(p, 0) != 1 || get16(p, 2) != 0x0800) return std::nullopt;
    Arp arp;
    arp.op = get16(p, 6);
    arp.sha = get_mac(p, 8);
    arp.spa = get32(p, 14);
    arp.tha = get_mac(p, 18);
    arp.tpa = get32(p, 24);
    return arp;
}

std::string icmp_echo_request(std::uint32_t src, std::uint32_t dst, std::uint16_t id,
                              std::uint16_t seq, std::string_view data) {
    std::string icmp;
    icmp += static_cast<char>(8);  // echo request
    icmp += static_cast<char>(0);
    put16(icmp, 0);  // checksum, below
    put16(icmp, id);
    put16(icmp, seq);
    icmp += data;
    std::uint16_t sum = checksum(icmp);
    icmp[2] = static_cast<char>(sum >> 8);
    icmp[3] = static_cast<char>(sum & 0xff);

    std::string ip;
    ip += static_cast<char>(0x45);
    ip += static_cast<char>(0);
    put16(ip, static_cast<std::uint16_t>(20 + icmp.size()));
    put16(ip, id);      // identification
    put16(ip, 0x4000);  // don't fragment
    ip += static_cast<char>(64);
    ip += static_cast<char>(1);  // ICMP
    put16(ip, 0);
    put32(ip, src);
    put32(ip, dst);
    std::uint16_t hsum = checksum(ip);
    ip[10] = static_cast<char>(hsum >> 8);
    ip[11] = static_cast<char>(hsum & 0xff);
    return ip + icmp;
}

bool is_icmp_echo_reply(std::string_view p, std::uint32_t src, std::uint16_t id,
                        std::uint16_t seq) {
    if (p.size() < 28 || (static_cast<std::uint8_t>(p[0]) >> 4) != 4) return false;
    std::size_t ihl = std::size_t{4} * (static_cast<std::uint8_t>(p[0]) & 0x0fU);
    if (p.size() < ihl + 8 || p[9] != 1 || get32(p, 12) != src) return false;
    return p[ihl] == 0 && get16(p, ihl + 4) == id && get16(p, ihl + 6) == seq;
}

}  // namespace ipnfs_it
