// A lossless network under contention: senders park on small queues and a
// small pool, readers drain them while parking and cancelling, and sends are
// cancelled at random from the sending thread and from another thread, as
// FUSE interrupts would.  Every message that was not cancelled must reach
// every reader exactly once and in the same order, no waiter may be completed
// twice, and the pool must be empty at the end.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// One send: its waiter (kept alive to the end) and what became of it.
struct Send {
    std::unique_ptr<RecordingSendWaiter> waiter = std::make_unique<RecordingSendWaiter>();
    bool parked = false;
    bool delivered = false;
    bool cancelled_here = false;                 // cancel() by the sending thread returned true
    std::atomic<bool> cancelled_outside{false};  // by the canceller thread
};

struct SenderState {
    Connection conn;
    std::vector<std::unique_ptr<Send>> sends;
    std::atomic<Send*> current{nullptr};
    int failures = 0;
};

struct ReaderState {
    Connection conn;
    std::vector<std::unique_ptr<RecordingWaiter>> waiters;
    std::vector<bool> parked;
    std::vector<std::string> got;     // data, as sent
    std::vector<std::string> events;  // membership events, as show() writes them
    std::vector<std::uint64_t> seqs;
    int failures = 0;
};

// Long enough for any healthy wake-up, short enough to keep a failing run brief.
constexpr std::chrono::milliseconds kStressWait = 3s;

void run_sender(bus::Network& net, SenderState& st, int index, int count) {
    std::mt19937 rng(1000 + index);
    for (int n = 0; n < count; ++n) {
        st.sends.push_back(std::make_unique<Send>());
        Send& s = *st.sends.back();
        st.current.store(&s);
        const std::string payload = std::to_string(index) + ":" + std::to_string(n);
        const unsigned mode = rng() % 20;  // 0-1: cancel first, 2: no waiter, 3-5: cancel later
        if (mode <= 1) net.cancel(*s.waiter);
        bus::SendResult r = net.send(st.conn, bytes(payload), mode == 2 ? nullptr : s.waiter.get());
        if (!r.status.ok()) {
            // Refused at once: EAGAIN without a waiter, EINTR when cancelled first.
            if (r.status.code != std::errc::resource_unavailable_try_again &&
                r.status.code != std::errc::interrupted) {
                ++st.failures;
            }
            continue;
        }
        if (!r.parked) {
            s.delivered = true;
            continue;
        }
        s.parked = true;
        if (mode >= 3 && mode <= 5) {
            // Mostly at once (the cancel usually wins), sometimes racing the readers.
            const unsigned spins = rng() % 4 == 0 ? rng() % 64 : 0;
            for (unsigned spin = spins; spin > 0; --spin) std::this_thread::yield();
            if (net.cancel(*s.waiter)) {
                s.cancelled_here = true;
                continue;
            }
        }
        if (!s.waiter->wait(kStressWait)) {
            ++st.failures;  // never completed: a lost wake-up
            if (net.cancel(*s.waiter)) s.cancelled_here = true;
            return;
        }
        // The bus completes with success (or EPIPE); only the canceller
        // thread completes with EINTR.
        const bus::Status status = s.waiter->status();
        if (status.ok()) {
            s.delivered = true;
        } else if (status.code != std::errc::interrupted) {
            ++st.failures;
        }
    }
    st.current.store(nullptr);
}

void run_reader(bus::Network& net, ReaderState& st) {
    for (int i = 0;; ++i) {
        st.waiters.push_back(std::make_unique<RecordingWaiter>());
        RecordingWaiter& w = *st.waiters.back();
        st.parked.push_back(false);
        bus::Received r = net.receive(st.conn, &w);
        if (r.outcome == Outcome::parked) {
            st.parked.back() = true;
            if (i % 5 == 1 && net.cancel(st.conn, w)) w.complete({Outcome::cancelled, nullptr});
            if (!w.wait(kStressWait)) {
                ++st.failures;
                if (net.cancel(st.conn, w)) w.complete({Outcome::cancelled, nullptr});
                return;
            }
            r = w.result();
        }
        switch (r.outcome) {
            case Outcome::message:
                if (r.message->is_event()) {
                    st.events.push_back(show(r.message));
                } else {
                    st.got.push_back(text(r.message));
                }
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

class NetworkLosslessStress : public HubNetworkTest {
  protected:
    // With events, readers of ports 0 and 1 also take membership events while
    // another thread keeps opening and closing port 12 and observers.
    void run(bool events);
};

TEST_F(NetworkLosslessStress, EveryUncancelledMessageReachesEveryReaderOnceInOneOrder) {
    run(false);
}

TEST_F(NetworkLosslessStress, SoWhileReadersAlsoTakeMembershipEventsUnderChurn) {
    run(true);
}

void NetworkLosslessStress::run(bool events) {
    constexpr int kSenders = 4;
    constexpr int kPerSender = 1500;
    constexpr int kReaders = 3;
    constexpr int kCancelAttempts = 3000;
    control_ok("ports 16\nlossless on\nqueue 4\npool 6");

    std::vector<std::unique_ptr<ReaderState>> readers;
    for (int i = 0; i < kReaders; ++i) {
        readers.push_back(std::make_unique<ReaderState>());
        readers.back()->conn = reader(static_cast<bus::PortId>(i));
    }
    std::vector<std::unique_ptr<SenderState>> senders;
    for (int i = 0; i < kSenders; ++i) {
        senders.push_back(std::make_unique<SenderState>());
        senders.back()->conn = writer(static_cast<bus::PortId>(8 + i));
    }

    if (events) {
        ASSERT_TRUE(IsOk(net_->set_events(0, true)));
        ASSERT_TRUE(IsOk(net_->set_events(1, true)));
    }

    std::vector<std::thread> reader_threads;
    for (auto& st : readers) {
        reader_threads.emplace_back([&, s = st.get()] { run_reader(*net_, *s); });
    }
    std::atomic<bool> senders_done{false};
    std::atomic<int> cancelled_outside{0};
    std::thread canceller([&] {
        std::mt19937 rng(5);
        for (int i = 0; i < kCancelAttempts && !senders_done.load(); ++i) {
            SenderState& st = *senders[rng() % senders.size()];
            if (Send* s = st.current.load()) {
                if (net_->cancel(*s->waiter)) {
                    s->cancelled_outside.store(true);
                    cancelled_outside.fetch_add(1);
                    s->waiter->complete(
                        bus::Status::error(std::errc::interrupted, "cancelled by the test"));
                }
            }
            std::this_thread::yield();
        }
    });
    std::atomic<int> churns{0};
    std::thread churner([&] {
        if (!events) return;
        for (int i = 0; !senders_done.load(); ++i) {
            Connection c;
            bus::Status s = i % 4 == 3 ? net_->connect_observer(c)
                                       : net_->connect(12, i % 4 != 0, i % 4 != 1, c);
            if (!s.ok()) return;
            net_->disconnect(c);
            churns.fetch_add(1);
            if (i % 8 == 0) std::this_thread::yield();
        }
    });
    std::vector<std::thread> sender_threads;
    for (int i = 0; i < kSenders; ++i) {
        sender_threads.emplace_back([&, i] { run_sender(*net_, *senders[i], i, kPerSender); });
    }
    for (auto& t : sender_threads) t.join();
    senders_done.store(true);
    canceller.join();
    churner.join();
    EXPECT_EQ(stat("parked_senders"), "0");
    net_->hang_up();  // every sender is done: the readers drain their queues and stop
    for (auto& t : reader_threads) t.join();

    // What the senders believe was delivered, in each sender's order.
    std::multiset<std::string> delivered;
    int parked_sends = 0;
    int cancelled = 0;
    for (int i = 0; i < kSenders; ++i) {
        SenderState& st = *senders[i];
        EXPECT_EQ(st.failures, 0) << "sender " << i;
        for (std::size_t n = 0; n < st.sends.size(); ++n) {
            Send& s = *st.sends[n];
            const std::string payload = std::to_string(i) + ":" + std::to_string(n);
            parked_sends += s.parked ? 1 : 0;
            const int calls = s.waiter->calls();
            if (s.cancelled_here) {
                ++cancelled;
                ASSERT_EQ(calls, 0) << payload << ": cancelled, then completed by the bus";
            } else if (s.cancelled_outside.load()) {
                ++cancelled;
                ASSERT_EQ(calls, 1) << payload << ": cancelled by the other thread";
                EXPECT_TRUE(FailsWith(s.waiter->status(), std::errc::interrupted));
            } else if (s.parked) {
                ASSERT_EQ(calls, 1) << payload << ": parked and not cancelled";
            } else {
                ASSERT_EQ(calls, 0) << payload << ": never parked, yet completed";
            }
            if (s.delivered) delivered.insert(payload);
        }
    }

    // Every reader got exactly the delivered messages, in one common order.
    for (int i = 0; i < kReaders; ++i) {
        ReaderState& st = *readers[i];
        EXPECT_EQ(st.failures, 0) << "reader " << i;
        for (std::size_t k = 0; k < st.waiters.size(); ++k) {
            ASSERT_EQ(st.waiters[k]->calls(), st.parked[k] ? 1 : 0)
                << "reader " << i << " waiter " << k;
        }
        EXPECT_EQ(std::multiset<std::string>(st.got.begin(), st.got.end()), delivered)
            << "reader " << i;
        EXPECT_TRUE(std::is_sorted(st.seqs.begin(), st.seqs.end())) << "reader " << i;
        EXPECT_EQ(st.got, readers[0]->got) << "readers 0 and " << i << " disagree on the order";
    }
    // Replaying the events gives each subscriber the membership at the end.
    if (events) {
        for (int i = 0; i < 2; ++i) {
            std::set<bus::PortId> view;
            for (const std::string& e : readers[i]->events) {
                const bool join = e.rfind("join ", 0) == 0;
                if (!join && e.rfind("leave ", 0) != 0) continue;
                const auto port = static_cast<bus::PortId>(std::stoul(e.substr(e.find(' ') + 1)));
                if (join) {
                    EXPECT_TRUE(view.insert(port).second) << "reader " << i << ": " << e;
                } else {
                    EXPECT_EQ(view.erase(port), 1u) << "reader " << i << ": " << e;
                }
            }
            std::set<bus::PortId> want{0, 1, 2, 8, 9, 10, 11};
            want.erase(static_cast<bus::PortId>(i));
            EXPECT_EQ(view, want) << "reader " << i;
            ASSERT_FALSE(readers[i]->events.empty());
            EXPECT_EQ(readers[i]->events.back(), "counts 3 4") << "reader " << i;
        }
        EXPECT_TRUE(readers[2]->events.empty()) << "port 2 did not ask for events";
        EXPECT_GT(churns.load(), 0);
        EXPECT_EQ(stat("event_readers"), "0");
    }
    // Each sender's messages arrive in the order it sent them.
    std::vector<int> last(kSenders, -1);
    for (const std::string& m : readers[0]->got) {
        const auto colon = m.find(':');
        const int sender = std::stoi(m.substr(0, colon));
        const int n = std::stoi(m.substr(colon + 1));
        EXPECT_LT(last[sender], n) << m;
        last[sender] = n;
    }

    Stats st = stats();
    EXPECT_EQ(st.totals["pool_used"], "0");
    EXPECT_EQ(st.totals["parked_senders"], "0");
    EXPECT_EQ(st.totals["parked_readers"], "0");
    for (bus::PortId port = 0; port < kReaders; ++port) {
        EXPECT_EQ(st.rows[port].drops, 0u) << "port " << port;  // port 12 discards, by design
    }
    EXPECT_GT(parked_sends, 20) << "the test hardly exercised parked sends";
    EXPECT_GT(cancelled, 0) << "the test never cancelled a send";
    RecordProperty("delivered", static_cast<int>(delivered.size()));
    RecordProperty("parked_sends", parked_sends);
    RecordProperty("cancelled_sends", cancelled);
    RecordProperty("cancelled_by_other_thread", cancelled_outside.load());
    RecordProperty("churns", churns.load());
}

}  // namespace
}  // namespace ipnfs::test
