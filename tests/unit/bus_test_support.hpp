// Helpers shared by the unit tests: byte views of text, a Waiter, a
// SendWaiter and a Listener that record what the bus tells them, status checks that print the
// reason, and a fixture owning a hub network built by the real catalog.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "bus/network.hpp"
#include "policies/catalog.hpp"
#include "stats_text.hpp"

namespace ipnfs::bus {

// Readable gtest output for the bus's own types.
inline void PrintTo(Outcome o, std::ostream* os) {
    switch (o) {
        case Outcome::message:
            *os << "message";
            return;
        case Outcome::would_block:
            *os << "would_block";
            return;
        case Outcome::parked:
            *os << "parked";
            return;
        case Outcome::hung_up:
            *os << "hung_up";
            return;
        case Outcome::cancelled:
            *os << "cancelled";
            return;
    }
    *os << "Outcome(" << static_cast<int>(o) << ")";
}

inline void PrintTo(const Status& s, std::ostream* os) {
    if (s.ok()) {
        *os << "success";
    } else {
        *os << std::make_error_code(s.code).message() << ": " << s.reason;
    }
}

}  // namespace ipnfs::bus

namespace ipnfs::test {

using namespace std::chrono_literals;
using stats_text::parse_stats;
using stats_text::PortRow;
using stats_text::Stats;

// Upper bound for anything a test waits on; reached only when a test fails.
inline constexpr std::chrono::milliseconds kWaitLimit = 10s;

inline std::span<const std::byte> bytes(std::string_view s) {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

inline std::string text(const bus::MessageRef& m) {
    auto p = m->payload();
    return {reinterpret_cast<const char*>(p.data()), p.size()};
}

inline std::string describe_code(std::errc code) {
    return code == std::errc{} ? "success" : std::make_error_code(code).message();
}

inline ::testing::AssertionResult IsOk(const bus::Status& s) {
    if (s.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "failed: " << describe_code(s.code) << ": " << s.reason;
}

inline ::testing::AssertionResult FailsWith(const bus::Status& s, std::errc want) {
    if (s.code == want && !s.reason.empty()) return ::testing::AssertionSuccess();
    if (s.code == want) return ::testing::AssertionFailure() << "right code but no reason given";
    return ::testing::AssertionFailure()
           << "expected '" << describe_code(want) << "', got '" << describe_code(s.code) << "'"
           << (s.reason.empty() ? "" : ": ") << s.reason;
}

// A policy's own ctl, describe and stats, as its unit tests drive them.
inline bus::Status run_policy_command(const bus::Policy& policy, std::string_view line) {
    std::array<const bus::CommandTable*, 1> tables{&policy.commands()};
    return bus::dispatch(tables, line, bus::Caller{});
}
// Runs each non-empty line; every one must succeed.
inline void run_policy_lines(const bus::Policy& policy, std::string_view lines) {
    std::size_t start = 0;
    while (start < lines.size()) {
        std::size_t end = lines.find('\n', start);
        if (end == std::string_view::npos) end = lines.size();
        std::string_view line = lines.substr(start, end - start);
        if (!line.empty()) {
            EXPECT_TRUE(IsOk(run_policy_command(policy, line))) << line;
        }
        start = end + 1;
    }
}
inline std::string policy_describe(const bus::Policy& policy) {
    std::string out;
    policy.describe(out);
    return out;
}
inline std::string policy_stats(const bus::Policy& policy) {
    std::string out;
    policy.stats(out);
    return out;
}

// Every complete() call a waiter gets, so a test can tell "never", "once"
// and "twice" apart, see what the first one handed over, and wait for it.
template <typename Result>
class CompletionRecord {
  public:
    explicit CompletionRecord(Result initial) : first_(std::move(initial)) {}

    void add(Result result) {
        // Notify while holding the lock: the owner may destroy the waiter as
        // soon as it sees the call, and must not do so before we let go.
        std::lock_guard lock(mu_);
        if (calls_++ == 0) first_ = std::move(result);
        cv_.notify_all();
    }
    [[nodiscard]] int calls() const {
        std::lock_guard lock(mu_);
        return calls_;
    }
    [[nodiscard]] Result first() const {
        std::lock_guard lock(mu_);
        return first_;
    }
    // True once complete() has been called; false if the limit passed first.
    bool wait(std::chrono::milliseconds limit) {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, limit, [this] { return calls_ > 0; });
    }

  private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    int calls_ = 0;
    Result first_;
};

class RecordingWaiter : public bus::Waiter {
  public:
    void complete(bus::Received received) override { record_.add(std::move(received)); }
    [[nodiscard]] int calls() const { return record_.calls(); }
    // What the first complete() handed over.
    [[nodiscard]] bus::Received result() const { return record_.first(); }
    bool wait(std::chrono::milliseconds limit = kWaitLimit) { return record_.wait(limit); }

  private:
    CompletionRecord<bus::Received> record_{{bus::Outcome::would_block, nullptr}};
};

// The order in which several waiters were completed, by their labels.
class CompletionLog {
  public:
    void add(const std::string& label) {
        std::lock_guard lock(mu_);
        labels_.push_back(label);
    }
    [[nodiscard]] std::vector<std::string> labels() const {
        std::lock_guard lock(mu_);
        return labels_;
    }

  private:
    mutable std::mutex mu_;
    std::vector<std::string> labels_;
};

// A parked send that records its completions (and, given a log, its label
// there, to check the order several were completed in).
class RecordingSendWaiter : public bus::SendWaiter {
  public:
    explicit RecordingSendWaiter(std::string label = {}, CompletionLog* log = nullptr)
        : label_(std::move(label)), log_(log) {}

    void complete(bus::Status status) override {
        if (log_ != nullptr) log_->add(label_);
        record_.add(std::move(status));
    }
    [[nodiscard]] int calls() const { return record_.calls(); }
    // What the first complete() handed over.
    [[nodiscard]] bus::Status status() const { return record_.first(); }
    bool wait(std::chrono::milliseconds limit = kWaitLimit) { return record_.wait(limit); }

  private:
    const std::string label_;
    CompletionLog* const log_;
    CompletionRecord<bus::Status> record_{bus::Status{}};
};

// A message in a test's words: "data TEXT", "join P", "leave P" or
// "counts RECEIVING SENDING" or "lost N".
inline std::string show(const bus::MessageRef& m) {
    switch (m->kind()) {
        case bus::Kind::data:
            return "data " + text(m);
        case bus::Kind::join:
            return "join " + std::to_string(m->from());
        case bus::Kind::leave:
            return "leave " + std::to_string(m->from());
        case bus::Kind::counts: {
            std::uint32_t counts[2] = {0, 0};
            auto p = m->payload();
            if (p.size() != sizeof counts) return "counts (" + std::to_string(p.size()) + " bytes)";
            std::memcpy(counts, p.data(), sizeof counts);
            return "counts " + std::to_string(counts[0]) + " " + std::to_string(counts[1]);
        }
        case bus::Kind::lost: {
            std::uint64_t lost = 0;
            auto p = m->payload();
            if (p.size() != sizeof lost) return "lost (" + std::to_string(p.size()) + " bytes)";
            std::memcpy(&lost, p.data(), sizeof lost);
            return "lost " + std::to_string(lost);
        }
    }
    return "kind " + std::to_string(static_cast<int>(m->kind()));
}

// Records the ports a network reports ready, in order.
class RecordingListener : public bus::Listener {
  public:
    void ready(bus::PortId port) override {
        std::lock_guard lock(mu_);
        ports_.push_back(port);
    }

    [[nodiscard]] std::vector<bus::PortId> ports() const {
        std::lock_guard lock(mu_);
        return ports_;
    }

    void clear() {
        std::lock_guard lock(mu_);
        ports_.clear();
    }

  private:
    mutable std::mutex mu_;
    std::vector<bus::PortId> ports_;
};

// The next message of a connection, waiting for it through a parked waiter
// if none is queued.  would_block only if nothing came within the limit.
inline bus::Received receive_blocking(bus::Network& net, const bus::Connection& conn) {
    RecordingWaiter waiter;
    bus::Received r = net.receive(conn, &waiter);
    if (r.outcome != bus::Outcome::parked) return r;
    if (!waiter.wait() && net.cancel(conn, waiter)) return {bus::Outcome::would_block, nullptr};
    // Either completed, or cancel() lost the race and completion is under way.
    waiter.wait();
    return waiter.result();
}

// A fixture owning one hub network, "net0", made through the real catalog.
class HubNetworkTest : public ::testing::Test {
  protected:
    void SetUp() override { remake({}); }

    void remake(const bus::Settings& settings) {
        net_.reset();
        bus::Status s = bus::Network::create("net0", settings, catalog_, "hub", net_);
        ASSERT_TRUE(IsOk(s));
        ASSERT_NE(net_, nullptr);
    }

    bus::Connection connect(bus::PortId id, bool reads, bool writes) {
        bus::Connection conn;
        EXPECT_TRUE(IsOk(net_->connect(id, reads, writes, conn))) << "port " << id;
        return conn;
    }
    bus::Connection reader(bus::PortId id) { return connect(id, true, false); }
    bus::Connection writer(bus::PortId id) { return connect(id, false, true); }
    bus::Connection duplex(bus::PortId id) { return connect(id, true, true); }

    void send(const bus::Connection& conn, std::string_view message) {
        EXPECT_TRUE(IsOk(net_->send(conn, bytes(message)))) << "from port " << conn.id;
    }

    // Where the tests of waiting senders start: sends wait for room (lossless
    // on) and a port holds one message, so one send fills it; `more` adds
    // ctl lines.
    void lossless(std::string_view more = "") {
        control_ok("lossless on\nqueue 1\n" + std::string(more));
    }
    // A send that must be parked on `waiter`.
    void park(const bus::Connection& from, std::string_view message, RecordingSendWaiter& waiter) {
        bus::SendResult r = net_->send(from, bytes(message), &waiter);
        EXPECT_TRUE(IsOk(r.status)) << message;
        EXPECT_TRUE(r.parked) << message << " was not parked";
        EXPECT_EQ(waiter.calls(), 0) << message << " was completed while parking";
    }
    // The same on a waiter of the fixture's.
    RecordingSendWaiter& park(const bus::Connection& from, std::string_view message) {
        RecordingSendWaiter& waiter = send_waiter();
        park(from, message, waiter);
        return waiter;
    }
    // A send that must go through at once, waiter or not.
    void send_now(const bus::Connection& from, std::string_view message,
                  bus::SendWaiter* waiter = nullptr) {
        bus::SendResult r = net_->send(from, bytes(message), waiter);
        EXPECT_TRUE(IsOk(r.status)) << message;
        EXPECT_FALSE(r.parked) << message << " was parked";
    }

    // The next queued message's text, or nullopt when the port has none.
    std::optional<std::string> take(const bus::Connection& conn) {
        bus::Received r = net_->receive(conn, nullptr);
        if (r.outcome == bus::Outcome::message) return text(r.message);
        EXPECT_EQ(r.outcome, bus::Outcome::would_block);
        return std::nullopt;
    }

    // Every queued message's text, oldest first.
    std::vector<std::string> drain(const bus::Connection& conn) {
        std::vector<std::string> out;
        while (auto m = take(conn)) out.push_back(*m);
        return out;
    }

    // Every queued message, events included, as show() writes it.
    std::vector<std::string> drain_all(const bus::Connection& conn) {
        std::vector<std::string> out;
        for (;;) {
            bus::Received r = net_->receive(conn, nullptr);
            if (r.outcome != bus::Outcome::message) {
                EXPECT_EQ(r.outcome, bus::Outcome::would_block);
                return out;
            }
            out.push_back(show(r.message));
        }
    }

    // Runs ctl lines that must succeed.
    void control_ok(std::string_view lines) { EXPECT_TRUE(IsOk(net_->control(lines))) << lines; }

    // One total of stats(), as printed.
    [[nodiscard]] std::string stat(const std::string& key) const {
        Stats st = stats();
        auto it = st.totals.find(key);
        EXPECT_NE(it, st.totals.end()) << "no '" << key << "' in stats";
        return it == st.totals.end() ? std::string() : it->second;
    }

    [[nodiscard]] Stats stats() const { return parse_stats(net_->stats()); }

    // Waiters owned by the fixture: they outlive the network, so a test that
    // fails (or ends) with one still parked does not leave the network a
    // dangling one.
    RecordingSendWaiter& send_waiter(std::string label = {}, CompletionLog* log = nullptr) {
        return *send_waiters_.emplace_back(
            std::make_unique<RecordingSendWaiter>(std::move(label), log));
    }
    RecordingWaiter& receive_waiter() {
        return *receive_waiters_.emplace_back(std::make_unique<RecordingWaiter>());
    }

    // Declared before net_, so destroyed after it.
    std::vector<std::unique_ptr<RecordingSendWaiter>> send_waiters_;
    std::vector<std::unique_ptr<RecordingWaiter>> receive_waiters_;
    policies::Catalog catalog_;  // outlives net_, which refers to it
    std::shared_ptr<bus::Network> net_;
};

// The hub network of HubNetworkTest, telling listener_ which ports became
// ready (what poll() waits for).
class PolledHubNetworkTest : public HubNetworkTest {
  protected:
    void SetUp() override {
        HubNetworkTest::SetUp();
        net_->set_listener(&listener_);
    }
    void TearDown() override { net_->set_listener(nullptr); }

    RecordingListener listener_;
};

}  // namespace ipnfs::test
