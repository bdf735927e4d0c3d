// The cluster wire format: what a cluster network's daemons multicast to
// each other through the engine's group.  Each group message is a batch of
// records, packed by one daemon and decoded by every member, its own
// included.  Corosync authenticates the members, yet a peer with a bug must
// not crash or corrupt a daemon: decode() checks a whole batch before it
// hands out any record.  Bytes in, values out: no engine, no FUSE here.
//
// Every field is little-endian, read and written byte by byte, so neither
// the host's byte order nor the buffer's alignment matters (CPG hands over
// bytes at any address).  A batch (version 2) is
//   header (12 bytes): "IPNC", uint16 version, uint16 0, uint32 records;
//   then each record (48 bytes and its body, padded with zeros to a
//   multiple of 8 bytes):
//     uint16 type, uint8 address kind (bus::To), uint8 flags, uint8 hops,
//     3 bytes 0, uint32 port, lower, upper, pid, uid, gid, body length,
//     target node, target daemon, target port, then the body.
//   Flags: bit 0, the credentials are known; bit 1 (data), placed: the
//   target names the one port it goes to; bit 2 (join), the port
//   receives; bit 3 (join), it holds an instance, in `lower`.  No other
//   bit is defined.
// A unicast or anycast data record is placed, and only those are.
// A credit record's body is 16 bytes (see Credit); decode() refuses another
// length.
// A field a record's type does not use is 0, credentials that are not
// known are 0, and nothing follows the last record: one set of records has
// exactly one encoding.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "bus/credentials.hpp"
#include "bus/member.hpp"
#include "bus/message.hpp"
#include "bus/network.hpp"
#include "bus/status.hpp"

namespace ipnfs::cluster::wire {

constexpr std::uint16_t kVersion = 2;
constexpr std::size_t kHeaderBytes = 12;
constexpr std::size_t kRecordHeaderBytes = 48;
// A body's bound: a network's largest MTU.  A cluster network carries no
// offload state, so no kernel superframe is ever one record's body.
constexpr std::size_t kMaxBody = bus::Limits::kMaxMtu;

enum class Type : std::uint16_t { data = 1, join = 2, leave = 3, hello = 4, credit = 5 };

struct Record {
    Type type = Type::data;
    bus::PortId port = 0;    // data: the sender's port; join, leave: the port; hello: 0
    bus::Address address;    // data: where its sender asked it to go
    bus::Credentials creds;  // data: the writer's; join: the opener's (creds.known says if any)
    std::uint8_t hops = 0;   // data: cables crossed
    std::optional<bus::Origin> target;  // data: the port its sender's daemon placed it at
    bus::Presence presence;             // join: whether the port receives, its instance
    std::span<const std::byte> body;    // data: the payload; hello: the sender's network
                                        // settings as text; credit: a Credit
                                        // (credit_body()); join, leave: empty
};

// A lossless network's flow control: the bytes of one daemon's messages
// (node, pid) that the credit's sender has delivered to its own ports since
// its last credit to that daemon.  A credit's body is exactly kCreditBytes:
// uint32 node, uint32 pid, uint64 bytes.
struct Credit {
    std::uint32_t node = 0;
    std::uint32_t pid = 0;
    std::uint64_t bytes = 0;
    bool operator==(const Credit&) const = default;
};
constexpr std::size_t kCreditBytes = 16;
std::array<std::byte, kCreditBytes> credit_body(const Credit& c);
// Only for a body decode() accepted in a credit record.
Credit read_credit(std::span<const std::byte> body);

// Packs records into one batch, in a buffer it keeps: once it has held a
// full batch, adding and clearing allocate nothing.
class BatchWriter {
  public:
    // max_bytes: the largest batch, header included (the engine's
    // max_message()).
    explicit BatchWriter(std::size_t max_bytes);

    // Appends `r`, or returns false and leaves the batch as it was when it
    // would make the batch longer than max_bytes, or when no batch can hold
    // it (a body over kMaxBody, a body on a join or leave, a unicast or
    // anycast without a target or another message with one): an empty writer
    // that refuses a record will always refuse it.  Fields r's type does not
    // use are written as 0, so they decode as 0.
    bool add(const Record& r);

    [[nodiscard]] bool empty() const { return records_ == 0; }
    [[nodiscard]] std::size_t records() const { return records_; }
    // The whole batch, header included; valid until the next add() or clear().
    [[nodiscard]] std::span<const std::byte> bytes() const { return buffer_; }
    void clear();

    // What one record with a body of that many bytes adds to a batch.
    static std::size_t record_bytes(std::size_t body);

  private:
    void set_count();

    std::size_t max_bytes_;
    std::size_t records_ = 0;
    std::vector<std::byte> buffer_;
};

// Checks the whole batch, then hands each record to `each` in order; a
// record's body points into `batch`.  Calls `each` for no record unless all
// are well formed: else EPROTO, with a reason that names what is wrong and
// in which record.
bus::Status decode(std::span<const std::byte> batch,
                   const std::function<void(const Record&)>& each);

}  // namespace ipnfs::cluster::wire
