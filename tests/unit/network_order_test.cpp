// One total order per network: whatever threads send and receive, every
// reader sees the messages it gets in the same order as every other reader.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;
using bus::PortId;

struct Seen {
    std::uint64_t seq;
    PortId from;
    std::string text;
    bool operator==(const Seen&) const = default;
};

// Receives `count` messages, blocking through waiters as a reader would.
std::vector<Seen> read_messages(bus::Network& net, const Connection& conn, std::size_t count) {
    std::vector<Seen> seen;
    seen.reserve(count);
    while (seen.size() < count) {
        bus::Received r = receive_blocking(net, conn);
        if (r.outcome != Outcome::message) {
            ADD_FAILURE() << "port " << conn.id << " stopped after " << seen.size() << " messages";
            break;
        }
        seen.push_back({r.message->seq(), r.message->from(), text(r.message)});
    }
    return seen;
}

void send_messages(bus::Network& net, const Connection& conn, int count) {
    for (int i = 0; i < count; ++i) {
        std::string m = std::to_string(conn.id) + ":" + std::to_string(i);
        bus::Status s = net.send(conn, bytes(m));
        ASSERT_TRUE(IsOk(s));
        if (i % 64 == 0) std::this_thread::yield();
    }
}

// Each sender's own messages arrive in the order it sent them.
void expect_per_sender_fifo(const std::vector<Seen>& seen, PortId reader) {
    std::map<PortId, int> next;
    for (const Seen& s : seen) {
        std::string want = std::to_string(s.from) + ":" + std::to_string(next[s.from]++);
        ASSERT_EQ(s.text, want) << "reader " << reader;
    }
}

void expect_strictly_increasing(const std::vector<Seen>& seen, PortId reader) {
    for (std::size_t i = 1; i < seen.size(); ++i) {
        ASSERT_LT(seen[i - 1].seq, seen[i].seq) << "reader " << reader << " at " << i;
    }
}

using NetworkOrder = HubNetworkTest;

TEST_F(NetworkOrder, AllReadersSeeOneOrderWhileManyThreadsSend) {
    constexpr int kSenders = 4;
    constexpr int kReaders = 4;
    constexpr int kPerSender = 1500;
    constexpr std::size_t kTotal = static_cast<std::size_t>(kSenders) * kPerSender;
    remake({.ports = 16, .mtu = 1514, .queue = kTotal});  // room for all: nothing dropped

    std::vector<Connection> senders;
    std::vector<Connection> readers;
    senders.reserve(kSenders);
    readers.reserve(kReaders);
    for (int i = 0; i < kSenders; ++i) senders.push_back(writer(i));
    for (int i = 0; i < kReaders; ++i) readers.push_back(reader(kSenders + i));

    std::vector<std::vector<Seen>> seen(kReaders);
    std::vector<std::thread> threads;
    threads.reserve(kReaders + kSenders);
    for (int i = 0; i < kReaders; ++i) {
        threads.emplace_back([&, i] { seen[i] = read_messages(*net_, readers[i], kTotal); });
    }
    for (int i = 0; i < kSenders; ++i) {
        threads.emplace_back([&, i] { send_messages(*net_, senders[i], kPerSender); });
    }
    for (auto& t : threads) t.join();

    for (int i = 0; i < kReaders; ++i) {
        ASSERT_EQ(seen[i].size(), kTotal) << "reader " << i;
        expect_strictly_increasing(seen[i], readers[i].id);
        expect_per_sender_fifo(seen[i], readers[i].id);
        EXPECT_EQ(seen[i], seen[0]) << "readers " << i << " and 0 saw different orders";
    }
    EXPECT_EQ(stats().totals["drops"], "0");
}

TEST_F(NetworkOrder, PortsThatSendAndReceiveSeeTheOthersInOneOrder) {
    // Every port both sends and reads: each reader sees all messages but its
    // own, and those in the order of the network's one sequence.
    constexpr int kPorts = 4;
    constexpr int kPerSender = 1500;
    constexpr std::size_t kEach = static_cast<std::size_t>(kPorts - 1) * kPerSender;
    remake({.ports = kPorts, .mtu = 1514, .queue = kEach});

    std::vector<Connection> conns;
    conns.reserve(kPorts);
    for (int i = 0; i < kPorts; ++i) conns.push_back(duplex(i));
    std::vector<std::vector<Seen>> seen(kPorts);
    std::vector<std::thread> threads;
    for (int i = 0; i < kPorts; ++i) {
        threads.emplace_back([&, i] { seen[i] = read_messages(*net_, conns[i], kEach); });
        threads.emplace_back([&, i] { send_messages(*net_, conns[i], kPerSender); });
    }
    for (auto& t : threads) t.join();

    // The network's order: every message anyone saw, by seq, each once.
    std::map<std::uint64_t, Seen> order;
    for (const auto& list : seen) {
        for (const Seen& s : list) {
            auto [it, fresh] = order.emplace(s.seq, s);
            ASSERT_EQ(it->second, s) << "two messages share seq " << s.seq;
        }
    }
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kPorts * kPerSender));
    for (int i = 0; i < kPorts; ++i) {
        std::vector<Seen> want;
        for (const auto& [seq, s] : order) {
            if (s.from != static_cast<PortId>(i)) want.push_back(s);
        }
        EXPECT_EQ(seen[i], want) << "port " << i << " saw the network's order differently";
        expect_per_sender_fifo(seen[i], i);
    }
}

}  // namespace
}  // namespace ipnfs::test
