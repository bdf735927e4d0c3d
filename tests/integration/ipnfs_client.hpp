// What a client of include/ipnfs.h does, for the integration tests: the
// ioctls, framed records written and parsed by hand, and event lines.
#pragma once

#include <ipnfs.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "test_io.hpp"

namespace ipnfs_it {

static_assert(sizeof(ipnfs_record) == 24, "the record header is 24 bytes");
static_assert(IPNFS_RECORD_SIZE(0) == 24 && IPNFS_RECORD_SIZE(1) == 32 &&
              IPNFS_RECORD_SIZE(8) == 32 && IPNFS_RECORD_SIZE(9) == 40);

// The ioctls: 0 or the errno.
int set_framed(int fd, bool on);
int set_events(int fd, bool on);
int set_creds(int fd, bool on);
int get_port(int fd, std::uint32_t& port);
// IPNFS_IOC_PORT_CTL: a setting of the file's own port ("member 7").
int port_ctl(int fd, std::string_view line);

// One record as a writer sends it: header, payload, zero padding to
// IPNFS_RECORD_SIZE(len).  The fields can be spoiled for error tests.
struct RecordSpec {
    std::string payload;
    std::uint16_t kind = IPNFS_DATA;
    std::uint16_t version = IPNFS_FRAME_VERSION;
    std::uint32_t flags = 0;
    std::int64_t len = -1;  // -1: payload.size()
    std::uint32_t port = 0;
    std::uint64_t seq = 0;
};
std::string encode(const RecordSpec& spec);
std::string encode(std::string_view payload);  // a well-formed data record

// A record as a reader got it.
struct Record {
    ipnfs_record header{};
    ipnfs_creds creds{};   // IPNFS_FLAG_CREDS: who sent it (else zeros)
    std::string payload;   // what the buffer held (less than len if truncated)
    std::size_t size = 0;  // bytes it took in the buffer
    [[nodiscard]] bool has_creds() const { return (header.flags & IPNFS_FLAG_CREDS) != 0; }
};
// Every record in `buf`; the records must tile it exactly (each
// IPNFS_CREDS_SIZE(flags) + IPNFS_RECORD_SIZE(bytes present) long, the last
// possibly cut short by the buffer's end).  On a malformed buffer: a test
// failure and what parsed.
std::vector<Record> decode(std::string_view buf);

// One framed read() of `bufsize` bytes once poll() says there is something.
struct Framed {
    Io io;
    std::vector<Record> records;
};
Framed read_framed(int fd, std::size_t bufsize = 65536, int timeout_ms = 2000);

// "join 3\n", "leave 3\n", "counts 2 1\n" as a record describes them.
std::string event_line(const Record& r);

// Plain reads until one times out after `quiet_ms`: everything queued.
std::vector<std::string> drain(int fd, int quiet_ms = 200);

}  // namespace ipnfs_it
