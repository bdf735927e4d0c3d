// The framed record format on the read path: messages and membership events
// queued at a port in an order the input chooses, taken by framed reads of
// sizes it chooses (fs::framed_reply, as a framed read() replies), and the
// replies parsed as a client parses them (include/ipnfs.h).  Every reply
// must be whole records inside the read's size, only its first record may
// be cut (and flagged), every data record must be the message sent, in
// order, and nothing may be lost or duplicated between reads.  With
// credentials asked for, a record carries its writer's (or its joiner's)
// exactly when they are known, between header and payload.
//
// Input: byte 0 bit 0 turns the reader's events on, bit 1 its credentials
// (IPNFS_IOC_SET_CREDS); then operations, one byte each and their
// arguments: send (writer, address kind, payload), read (size), a port
// joins or leaves.
#include <fuzzer/FuzzedDataProvider.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bus/network.hpp"
#include "fs/framing.hpp"
#include "fuzz_support.hpp"
#include "include/ipnfs.h"

namespace ipnfs::fuzz {
namespace {

struct Sent {
    bus::PortId from;
    std::uint32_t to;  // IPNFS_TO_*
    std::vector<std::byte> payload;
};

// Writer w's credentials: writers 0 and 1 are processes, writer 2 is not (a
// kernel interface's port, say).  It opens its port with the same.
bus::Credentials creds_of(std::size_t w) {
    if (w == 2) return {};
    return {static_cast<std::uint32_t>(100 + w), static_cast<std::uint32_t>(1000 + w),
            static_cast<std::uint32_t>(2000 + w), true};
}

// Addresses that all reach port 0, the reader (it holds instance 5).
bus::Address address_of(std::uint32_t to) {
    switch (to) {
        case IPNFS_TO_PORT:
            return {bus::To::port, 0, 0};
        case IPNFS_TO_ANYCAST:
            return {bus::To::anycast, 5, 5};
        case IPNFS_TO_MULTICAST:
            return {bus::To::multicast, 0, 10};
        case IPNFS_TO_BROADCAST:
            return {bus::To::broadcast, 0, 0};
        default:
            return {};
    }
}

class Reader {
  public:
    Reader(bus::Network& net, const bus::Connection& conn, bool events, bool creds)
        : net_(net), conn_(conn), events_(events), creds_(creds) {}

    void sent(Sent s) { expected_.push_back(std::move(s)); }

    // One framed read of `size` bytes: false if nothing was queued.
    bool read(std::size_t size) {
        bus::Received got = net_.receive(conn_, nullptr);
        if (got.outcome != bus::Outcome::message) return false;
        fs::FramedReply records = fs::framed_reply(net_, conn_, got.message, size, creds_);
        require(records.iov().size() <= fs::FramedReply::kMaxIov, "few enough iovecs for writev");
        std::string reply = records.flatten();
        require(reply.size() <= size, "a reply fits the read");
        require(reply.size() >= fs::framed_min_read() && size >= fs::framed_min_read(creds_),
                "a reply holds a record");
        parse(reply);
        // Without events the queue is exactly what was sent and not read:
        // the reply took every next record that fitted whole.
        if (!events_ && !expected_.empty() && reply.size() + sizeof(ipnfs_record) <= size) {
            const Sent& next = expected_.front();
            std::size_t extra = creds_ && creds_of(next.from - 1).known ? sizeof(ipnfs_creds) : 0;
            require(reply.size() + extra + IPNFS_RECORD_SIZE(next.payload.size()) > size,
                    "a reply takes every record that fits");
        }
        return true;
    }

    void drained() const { require(expected_.empty(), "every message sent was read"); }

  private:
    // A client's parse: header, payload as far as present, zero padding.
    void parse(std::string_view reply) {
        std::size_t at = 0;
        while (at < reply.size()) {
            require(reply.size() - at >= sizeof(ipnfs_record), "a whole header");
            ipnfs_record h{};
            std::memcpy(&h, reply.data() + at, sizeof h);
            require(h.version == IPNFS_FRAME_VERSION, "version 1");
            std::uint32_t known = IPNFS_FLAG_TRUNCATED | IPNFS_TO_MASK | IPNFS_FLAG_CREDS;
            require((h.flags & ~known) == 0, "known flags only");
            bool cut = (h.flags & IPNFS_FLAG_TRUNCATED) != 0;
            require(!cut || at == 0, "only the first record is cut");
            const std::size_t before = sizeof h + IPNFS_CREDS_SIZE(h.flags);
            require(reply.size() - at >= before, "whole credentials");
            ipnfs_creds who{};
            if ((h.flags & IPNFS_FLAG_CREDS) != 0) {
                std::memcpy(&who, reply.data() + at + sizeof h, sizeof who);
            }
            std::size_t room = reply.size() - at - before;
            std::size_t present = cut ? room : h.len;
            require(present <= room, "a record's payload is inside the reply");
            require(!cut || present < h.len, "a cut record lost bytes");
            std::string_view payload = reply.substr(at + before, present);
            std::size_t end = at + std::min(IPNFS_CREDS_SIZE(h.flags) + IPNFS_RECORD_SIZE(present),
                                            reply.size() - at);
            if (!cut)
                require(end == at + IPNFS_RECORD_FULL_SIZE(&h) || end == reply.size(), "size");
            for (std::size_t i = at + before + present; i < end; ++i) {
                require(reply[i] == '\0', "zero padding");
            }
            require(h.seq > last_seq_, "records in the network's order");
            last_seq_ = h.seq;
            check_creds(h, who);
            check(h, payload, cut);
            at = end;
        }
    }

    // Data and joins of writers 0 and 1 carry theirs, if asked; nothing else does.
    void check_creds(const ipnfs_record& h, const ipnfs_creds& who) const {
        bool carries = (h.flags & IPNFS_FLAG_CREDS) != 0;
        bool should = creds_ && (h.kind == IPNFS_DATA || h.kind == IPNFS_JOIN) && h.port >= 1 &&
                      h.port <= 3 && creds_of(h.port - 1).known;
        require(carries == should, "credentials exactly where they are known and asked for");
        if (!carries) return;
        bus::Credentials want = creds_of(h.port - 1);
        require(who.pid == want.pid && who.uid == want.uid && who.gid == want.gid && who.pad == 0,
                "the writer's credentials");
    }

    void check(const ipnfs_record& h, std::string_view payload, bool cut) {
        switch (h.kind) {
            case IPNFS_DATA: {
                require(!expected_.empty(), "a data record that was never sent");
                Sent s = std::move(expected_.front());
                expected_.pop_front();
                require(h.port == s.from, "a data record's sender");
                require(IPNFS_FLAGS_GET_TO(h.flags) == s.to, "a data record's address kind");
                require(h.len == s.payload.size(), "a data record's length");
                require(std::ranges::equal(std::as_bytes(std::span(payload)),
                                           std::span(s.payload).first(payload.size())),
                        "a data record's payload");
                return;
            }
            case IPNFS_JOIN:
            case IPNFS_LEAVE:
                require(events_, "an event the reader did not ask for");
                require(h.len == 0, "join and leave carry nothing");
                return;
            case IPNFS_COUNTS:
                require(events_, "an event the reader did not ask for");
                require(h.len == sizeof(ipnfs_counts) && (cut || payload.size() == h.len),
                        "counts carry struct ipnfs_counts");
                return;
            default:
                fail("a record of an unknown kind");
        }
    }

    bus::Network& net_;
    const bus::Connection& conn_;
    const bool events_;
    const bool creds_;
    std::deque<Sent> expected_;
    std::uint64_t last_seq_ = 0;
};

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs;
    using namespace ipnfs::fuzz;
    FuzzedDataProvider in(data, size);
    auto flags = in.ConsumeIntegral<std::uint8_t>();
    bool events = (flags & 1) != 0;
    bool creds = (flags & 2) != 0;
    std::shared_ptr<bus::Network> net;
    require(bus::Network::create("framed", {}, catalog(), "group", net).ok(), "a network");
    // The queue holds every message an input can send: nothing is dropped.
    require(net->control("ports 4\nmtu 65535\nqueue 1024\nmember 0 5").ok(), "settings");
    if (events) require(net->control("events 0 on").ok(), "events");
    bus::Connection reader;
    require(net->connect(0, true, false, reader).ok(), "the reader");
    std::vector<bus::Connection> writers(3);
    std::vector<bool> connected(3, false);
    Reader r(*net, reader, events, creds);

    for (int op = 0; op < 256 && in.remaining_bytes() > 0; ++op) {
        switch (in.ConsumeIntegralInRange(0, 2)) {
            case 0: {  // a writer sends
                auto w = in.ConsumeIntegralInRange<std::size_t>(0, 2);
                auto to = in.ConsumeIntegralInRange<std::uint32_t>(0, IPNFS_TO_BROADCAST);
                auto len = in.ConsumeIntegralInRange<std::size_t>(0, 4096);
                std::vector<std::uint8_t> bytes = in.ConsumeBytes<std::uint8_t>(len);
                Sent s{static_cast<bus::PortId>(w + 1), to, {}};
                s.payload.resize(bytes.size());
                if (!bytes.empty()) std::memcpy(s.payload.data(), bytes.data(), bytes.size());
                if (!connected[w]) break;
                require(net->send(writers[w], s.payload, address_of(to), creds_of(w)).ok(),
                        "a send");
                r.sent(std::move(s));
                break;
            }
            case 1:  // a framed read
                r.read(
                    in.ConsumeIntegralInRange<std::size_t>(fs::framed_min_read(creds), 1U << 17));
                break;
            default: {  // a writer joins or leaves: events for the reader
                auto w = in.ConsumeIntegralInRange<std::size_t>(0, 2);
                if (connected[w]) {
                    net->disconnect(writers[w]);
                } else {
                    auto port = static_cast<bus::PortId>(w + 1);
                    require(net->connect(port, false, true, writers[w], false, creds_of(w)).ok(),
                            "a writer");
                }
                connected[w] = !connected[w];
            }
        }
    }
    while (r.read(1U << 17)) {
    }
    r.drained();
    for (std::size_t w = 0; w < writers.size(); ++w) {
        if (connected[w]) net->disconnect(writers[w]);
    }
    net->disconnect(reader);
    return 0;
}
