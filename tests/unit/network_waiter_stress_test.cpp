// Waiters under contention: readers park, cancel and re-park while senders
// run and another thread cancels at random, as FUSE interrupts would.  Every
// parked waiter must end with exactly one complete() call, from the bus or
// from whoever cancelled it, and no message may be lost on the way.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::Outcome;

// One reader descriptor: its connection, the waiters it used (kept alive
// to the end so late or doubled completions are seen), what it received.
struct ReaderState {
    Connection conn;
    std::vector<std::unique_ptr<RecordingWaiter>> waiters;
    std::vector<bool> parked;                        // per waiter: receive() parked it
    std::atomic<RecordingWaiter*> current{nullptr};  // for the canceller thread
    std::vector<std::uint64_t> seqs;
    int failures = 0;
};

// Cancels `w` and, if that removed it, completes it as the caller must.
void cancel_and_complete(bus::Network& net, const Connection& conn, RecordingWaiter& w) {
    if (net.cancel(conn, w)) w.complete({Outcome::cancelled, nullptr});
}

void run_reader(bus::Network& net, ReaderState& st) {
    for (int i = 0;; ++i) {
        st.waiters.push_back(std::make_unique<RecordingWaiter>());
        RecordingWaiter& w = *st.waiters.back();
        st.parked.push_back(false);
        st.current.store(&w);
        const int mode = i % 4;  // 0, 2: wait; 1: cancel once parked; 3: cancel first
        if (mode == 3) cancel_and_complete(net, st.conn, w);

        bus::Received r = net.receive(st.conn, &w);
        if (r.outcome == Outcome::parked) {
            st.parked.back() = true;
            if (mode == 1) {
                if (i % 8 == 5) std::this_thread::yield();
                cancel_and_complete(net, st.conn, w);
            }
            if (!w.wait()) {
                ++st.failures;  // never completed: lost
                cancel_and_complete(net, st.conn, w);
                return;
            }
            r = w.result();
        }
        switch (r.outcome) {
            case Outcome::message:
                st.seqs.push_back(r.message->seq());
                break;
            case Outcome::cancelled:
                break;
            case Outcome::hung_up:
                return;
            case Outcome::would_block:
            case Outcome::parked:
                ++st.failures;
                return;
        }
    }
}

using NetworkWaiterStress = HubNetworkTest;

TEST_F(NetworkWaiterStress, EveryParkedWaiterIsCompletedExactlyOnceAndNoMessageIsLost) {
    constexpr int kSenders = 4;
    constexpr int kPerSender = 2000;
    constexpr std::size_t kTotal = static_cast<std::size_t>(kSenders) * kPerSender;
    constexpr int kCancelAttempts = 4000;
    remake({.ports = 16, .mtu = 1514, .queue = kTotal});

    // Ports 0-2 have one reader each; port 3 has two sharing its queue.
    std::vector<std::unique_ptr<ReaderState>> readers;
    for (bus::PortId port : {0u, 1u, 2u, 3u, 3u}) {
        readers.push_back(std::make_unique<ReaderState>());
        readers.back()->conn = reader(port);
    }
    std::vector<Connection> senders;
    senders.reserve(kSenders);
    for (int i = 0; i < kSenders; ++i) senders.push_back(writer(8 + i));

    std::vector<std::thread> reader_threads;
    reader_threads.reserve(readers.size());
    for (auto& st : readers) {
        reader_threads.emplace_back([&, s = st.get()] { run_reader(*net_, *s); });
    }
    std::atomic<int> cancelled_by_other{0};
    std::thread canceller([&] {
        std::mt19937 rng(99);
        for (int i = 0; i < kCancelAttempts; ++i) {
            ReaderState& st = *readers[rng() % readers.size()];
            if (RecordingWaiter* w = st.current.load()) {
                if (net_->cancel(st.conn, *w)) {
                    w->complete({Outcome::cancelled, nullptr});
                    cancelled_by_other.fetch_add(1);
                }
            }
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> sender_threads;
    sender_threads.reserve(kSenders);
    for (int i = 0; i < kSenders; ++i) {
        sender_threads.emplace_back([&, i] {
            for (int n = 0; n < kPerSender; ++n) {
                ASSERT_TRUE(IsOk(net_->send(senders[i], bytes("s" + std::to_string(n)))));
                if (n % 32 == 0) std::this_thread::yield();
            }
        });
    }
    for (auto& t : sender_threads) t.join();
    canceller.join();
    net_->hang_up();  // releases every reader once its queue is drained
    for (auto& t : reader_threads) t.join();

    std::size_t parked = 0;
    std::size_t waiters = 0;
    for (auto& st : readers) {
        EXPECT_EQ(st->failures, 0) << "port " << st->conn.id;
        for (std::size_t i = 0; i < st->waiters.size(); ++i) {
            ++waiters;
            parked += st->parked[i] ? 1 : 0;
            ASSERT_EQ(st->waiters[i]->calls(), st->parked[i] ? 1 : 0)
                << "port " << st->conn.id << " waiter " << i
                << (st->parked[i] ? " (parked)" : " (never parked)");
        }
        EXPECT_TRUE(std::is_sorted(st->seqs.begin(), st->seqs.end()));
        EXPECT_EQ(std::adjacent_find(st->seqs.begin(), st->seqs.end()), st->seqs.end());
    }
    // Every port got every message exactly once, across its readers.
    for (bus::PortId port = 0; port < 4; ++port) {
        std::multiset<std::uint64_t> got;
        for (auto& st : readers) {
            if (st->conn.id == port) got.insert(st->seqs.begin(), st->seqs.end());
        }
        EXPECT_EQ(got.size(), kTotal) << "port " << port;
        EXPECT_EQ(std::set<std::uint64_t>(got.begin(), got.end()).size(), got.size())
            << "port " << port << " got a message twice";
    }
    EXPECT_EQ(stats().totals["drops"], "0");
    EXPECT_GT(parked, 0u) << "the test never exercised parking";
    RecordProperty("waiters", static_cast<int>(waiters));
    RecordProperty("parked", static_cast<int>(parked));
    RecordProperty("cancelled_by_other_thread", cancelled_by_other.load());
}

}  // namespace
}  // namespace ipnfs::test
