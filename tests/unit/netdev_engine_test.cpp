// The engine thread that serves kernel interfaces: wakes run there and
// coalesce, readable descriptors are reported there until paused or
// forgotten, run_sync runs work there (inline when already there), and the
// engine ends by finishing what was asked of it.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "netdev/engine.hpp"
#include "netdev_test_support.hpp"

namespace ipnfs::test {
namespace {

using netdev::Engine;

// A pollable that counts what the engine asks of it, notes on which threads,
// and runs what a test gives it (with the call's number, from 1).
class Probe final : public netdev::Pollable {
  public:
    std::function<void(int)> when_readable;
    std::function<void(int)> when_woken;

    // Each call is counted when it is done with the probe (even by a throw):
    // a test that saw the count may destroy the probe at once, so counting
    // first let the engine thread still touch it after (a race TSan found).
    // Only the engine thread calls these, so the load cannot be overtaken.
    void on_readable() override {
        CountOnExit count(readable_);
        note_thread();
        if (when_readable) when_readable(count.n);
    }
    void on_wake() override {
        CountOnExit count(wakes_);
        note_thread();
        if (when_woken) when_woken(count.n);
    }

    [[nodiscard]] int readable() const { return readable_.load(); }
    [[nodiscard]] int wakes() const { return wakes_.load(); }
    [[nodiscard]] std::vector<std::thread::id> threads() const {
        std::lock_guard lock(mu_);
        return threads_;
    }

  private:
    struct CountOnExit {
        explicit CountOnExit(std::atomic<int>& c) : counter(c), n(c.load() + 1) {}
        CountOnExit(const CountOnExit&) = delete;
        CountOnExit& operator=(const CountOnExit&) = delete;
        ~CountOnExit() { counter.store(n); }
        std::atomic<int>& counter;
        const int n;  // this call's number, from 1
    };

    void note_thread() {
        std::lock_guard lock(mu_);
        if (threads_.empty() || threads_.back() != std::this_thread::get_id()) {
            threads_.push_back(std::this_thread::get_id());
        }
    }

    std::atomic<int> readable_{0};
    std::atomic<int> wakes_{0};
    mutable std::mutex mu_;
    std::vector<std::thread::id> threads_;
};

// A counter that polls readable while non-zero.
class EventFd {
  public:
    EventFd() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
        if (fd_.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    }
    [[nodiscard]] int fd() const { return fd_.get(); }
    void signal() {
        std::uint64_t one = 1;
        ASSERT_EQ(::write(fd_.get(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
    }
    void drain() {
        std::uint64_t count = 0;
        [[maybe_unused]] auto n = ::read(fd_.get(), &count, sizeof count);
    }

  private:
    UniqueFd fd_;
};

std::thread::id engine_thread(Engine& engine) {
    std::thread::id id;
    engine.run_sync([&] { id = std::this_thread::get_id(); });
    return id;
}

// Keeps the engine thread busy in a run_sync task until release(), so that
// what a test queues meanwhile is pending when the engine next looks.
class Blocker {
  public:
    explicit Blocker(Engine& engine) {
        auto entered = entered_.get_future();
        thread_ = std::thread([this, &engine] {
            engine.run_sync([this] {
                entered_.set_value();
                released_.get_future().wait();
            });
        });
        busy_ = entered.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    }
    ~Blocker() { release(); }
    Blocker(const Blocker&) = delete;
    Blocker& operator=(const Blocker&) = delete;

    // False if the engine never ran the blocking task.
    [[nodiscard]] bool busy() const { return busy_; }
    void release() {
        if (!thread_.joinable()) return;
        released_.set_value();
        thread_.join();
    }

  private:
    std::promise<void> entered_;
    std::promise<void> released_;
    std::thread thread_;
    bool busy_ = false;
};

// Runs fn on a thread of its own; false if it did not return within `limit`
// (the thread is left behind then: a deadlock cannot be undone).
bool returns_within(std::function<void()> fn, std::chrono::milliseconds limit) {
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    std::thread([fn = std::move(fn), done] {
        fn();
        done->set_value();
    }).detach();
    return finished.wait_for(limit) == std::future_status::ready;
}

TEST(EngineWake, RunsOnWakeOnTheEngineThread) {
    Engine engine;
    const std::thread::id engine_id = engine_thread(engine);
    EXPECT_NE(engine_id, std::this_thread::get_id());
    Probe p;
    engine.wake(p);
    ASSERT_TRUE(wait_until([&] { return p.wakes() == 1; }));
    EXPECT_EQ(p.threads(), std::vector<std::thread::id>{engine_id});
    EXPECT_EQ(p.readable(), 0);
    engine.run_sync([] {});  // nothing left to run for p after this turn
}

TEST(EngineWake, RepeatedWakesBeforeItRunsCoalesceToOneCall) {
    Engine engine;
    Probe p;
    {
        Blocker blocker(engine);
        ASSERT_TRUE(blocker.busy());
        for (int i = 0; i < 10; ++i) engine.wake(p);
        EXPECT_EQ(p.wakes(), 0) << "woken while the engine was busy elsewhere";
    }
    ASSERT_TRUE(wait_until([&] { return p.wakes() >= 1; }));
    engine.run_sync([] {});  // a whole turn later
    EXPECT_EQ(p.wakes(), 1) << "ten wakes before the engine looked were not one";
    engine.wake(p);
    ASSERT_TRUE(wait_until([&] { return p.wakes() == 2; })) << "a wake after the call was lost";
}

TEST(EngineWake, AWakeFromOnWakeRunsAgainOnALaterTurn) {
    Engine engine;
    Probe p;
    p.when_woken = [&](int n) {
        if (n < 3) engine.wake(p);
    };
    engine.run_sync([&] { engine.wake(p); });
    ASSERT_TRUE(wait_until([&] { return p.wakes() == 3; }));
    engine.run_sync([] {});
    EXPECT_EQ(p.wakes(), 3);
}

TEST(EngineWake, AThrowingPollableDoesNotStopTheEngine) {
    Engine engine;
    Probe bad;
    Probe good;
    bad.when_woken = [](int) { throw std::runtime_error("out of luck"); };
    engine.run_sync([] {});  // started
    engine.wake(bad);
    engine.wake(good);
    ASSERT_TRUE(wait_until([&] { return bad.wakes() == 1 && good.wakes() == 1; }));
    int ran = 0;
    engine.run_sync([&] { ++ran; });
    EXPECT_EQ(ran, 1);
    engine.wake(bad);
    ASSERT_TRUE(wait_until([&] { return bad.wakes() == 2; }));
}

TEST(EngineRunSync, RunsOnTheEngineThreadAndReturnsAfterItRan) {
    Engine engine;
    const std::thread::id engine_id = engine_thread(engine);
    std::thread::id ran_on;
    bool ran = false;
    engine.run_sync([&] {
        std::this_thread::sleep_for(20ms);  // returning early would show
        ran_on = std::this_thread::get_id();
        ran = true;
    });
    EXPECT_TRUE(ran);
    EXPECT_EQ(ran_on, engine_id);
    EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(EngineRunSync, TasksFromManyThreadsRunOneAtATime) {
    Engine engine;
    int total = 0;  // touched only on the engine thread
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) engine.run_sync([&] { ++total; });
        });
    }
    for (auto& t : threads) t.join();
    int seen = 0;
    engine.run_sync([&] { seen = total; });
    EXPECT_EQ(seen, 800);
}

TEST(EngineRunSync, FromTheEngineThreadRunsInline) {
    auto engine = std::make_unique<Engine>();
    std::vector<int> order;
    bool done = returns_within(
        [&] {
            engine->run_sync([&] {
                order.push_back(1);
                engine->run_sync([&] { order.push_back(2); });
                order.push_back(3);
            });
        },
        std::chrono::seconds(5));
    if (!done) {
        [[maybe_unused]] Engine* stuck = engine.release();  // its thread never returns
        FAIL() << "run_sync from the engine thread deadlocked";
    }
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

TEST(EngineRunSync, FromOnWakeRunsInline) {
    auto engine = std::make_unique<Engine>();
    Probe p;
    std::atomic<int> inner{0};
    std::atomic<int> after{0};
    p.when_woken = [&](int) {
        engine->run_sync([&] { inner = 1; });
        after = inner.load() + 1;
    };
    engine->wake(p);
    bool done = returns_within([&] { engine->run_sync([] {}); }, std::chrono::seconds(5));
    if (!done || !wait_until([&] { return after.load() != 0; })) {
        [[maybe_unused]] Engine* stuck = engine.release();
        FAIL() << "run_sync from on_wake deadlocked";
    }
    EXPECT_EQ(after.load(), 2) << "the inner task had not run when run_sync returned";
}

TEST(EngineRunSync, AnExceptionReachesTheCaller) {
    Engine engine;
    try {
        engine.run_sync([] { throw std::runtime_error("no such device"); });
        ADD_FAILURE() << "run_sync swallowed the exception";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "no such device");
    }
    bool caught_inline = false;
    engine.run_sync([&] {
        try {
            engine.run_sync([] { throw std::logic_error("inline"); });
        } catch (const std::logic_error&) {
            caught_inline = true;
        }
    });
    EXPECT_TRUE(caught_inline);
    int ran = 0;
    engine.run_sync([&] { ++ran; });
    EXPECT_EQ(ran, 1) << "the engine stopped serving after a task threw";
}

TEST(EngineWatch, WakesOnceAndReportsAReadableDescriptorOnTheEngineThread) {
    Engine engine;
    EventFd ev;
    Probe p;
    p.when_readable = [&](int) { ev.drain(); };
    engine.watch(p, ev.fd());
    ASSERT_TRUE(wait_until([&] { return p.wakes() == 1; })) << "watch did not wake it";
    EXPECT_EQ(p.readable(), 0) << "reported readable with nothing to read";
    ev.signal();
    ASSERT_TRUE(wait_until([&] { return p.readable() == 1; }));
    EXPECT_TRUE(holds_for([&] { return p.readable() == 1; }, 50ms)) << "reported once drained";
    ev.signal();
    ASSERT_TRUE(wait_until([&] { return p.readable() == 2; }));
    const std::thread::id engine_id = engine_thread(engine);
    EXPECT_EQ(p.threads(), std::vector<std::thread::id>{engine_id});
    EXPECT_EQ(p.wakes(), 1);
    engine.run_sync([&] { engine.forget(p, ev.fd()); });
}

TEST(EngineWatch, SetInputOffStopsReportsAndOnResumesThem) {
    Engine engine;
    EventFd ev;
    Probe p;
    // The first report pauses input without reading, as a device does when
    // the network is full; the level stays up.
    p.when_readable = [&](int n) {
        if (n == 1) engine.set_input(p, ev.fd(), false);
        if (n >= 2) ev.drain();
    };
    engine.watch(p, ev.fd());
    ev.signal();
    ASSERT_TRUE(wait_until([&] { return p.readable() == 1; }));
    EXPECT_TRUE(holds_for([&] { return p.readable() == 1; }, 100ms))
        << "reported " << p.readable() << " times while input was off";
    engine.set_input(p, ev.fd(), true);
    ASSERT_TRUE(wait_until([&] { return p.readable() == 2; })) << "input on did not resume";
    EXPECT_TRUE(holds_for([&] { return p.readable() == 2; }, 50ms));
    engine.run_sync([&] { engine.forget(p, ev.fd()); });
}

// A paused descriptor whose peer hangs up: the device ignores input reports
// while paused, so a report now would come again on every turn, keeping the
// engine thread busy until the network takes the parked frame, forever if it
// never does.
TEST(EngineWatch, PausedInputIsNotReportedEvenWhenThePeerHangsUp) {
    Engine engine;
    auto [mine, peer] = seqpacket_pair();
    int mine_fd = mine.get();  // clang 14 cannot capture a structured binding
    Probe p;
    p.when_readable = [&](int n) {
        if (n == 1) engine.set_input(p, mine_fd, false);
    };
    engine.watch(p, mine.get());
    ASSERT_EQ(::send(peer.get(), "x", 1, MSG_NOSIGNAL), 1);
    ASSERT_TRUE(wait_until([&] { return p.readable() == 1; }));
    peer.reset();
    EXPECT_TRUE(holds_for([&] { return p.readable() == 1; }, 200ms))
        << "input is off, yet the hang-up was reported " << p.readable() - 1 << " times";
    engine.run_sync([&] { engine.forget(p, mine_fd); });
}

TEST(EngineForget, StopsReportsAndDropsPendingWakes) {
    Engine engine;
    EventFd ev;
    auto p = std::make_unique<Probe>();
    engine.watch(*p, ev.fd());
    ASSERT_TRUE(wait_until([&] { return p->wakes() == 1; }));
    // A wake queued in the same turn, then forgotten: never delivered.  The
    // pollable is destroyed right away, as a device is.
    engine.run_sync([&] {
        engine.wake(*p);
        engine.forget(*p, ev.fd());
        EXPECT_EQ(p->wakes(), 1);
        EXPECT_EQ(p->readable(), 0);
        p.reset();
    });
    ev.signal();
    // Anything the engine still did with it would be a use after free, which
    // the ASan build reports; and the engine still serves.
    std::this_thread::sleep_for(50ms);
    int ran = 0;
    engine.run_sync([&] { ++ran; });
    EXPECT_EQ(ran, 1);
}

TEST(EngineForget, ForgottenDescriptorIsNoLongerReported) {
    Engine engine;
    EventFd ev;
    Probe p;
    engine.watch(p, ev.fd());
    engine.run_sync([&] { engine.forget(p, ev.fd()); });
    const int wakes = p.wakes();
    ev.signal();
    EXPECT_TRUE(holds_for([&] { return p.readable() == 0 && p.wakes() == wakes; }, 100ms));
    // It can be watched again.
    p.when_readable = [&](int) { ev.drain(); };
    engine.watch(p, ev.fd());
    ASSERT_TRUE(wait_until([&] { return p.readable() == 1; }));
    engine.run_sync([&] { engine.forget(p, ev.fd()); });
}

TEST(EngineLifetime, DestructorFinishesPendingWorkAndJoins) {
    auto engine = std::make_unique<Engine>();
    Probe p;
    std::atomic<bool> destroyed{false};
    std::thread destroyer;
    {
        Blocker blocker(*engine);
        ASSERT_TRUE(blocker.busy());
        engine->wake(p);
        destroyer = std::thread([&] {
            engine.reset();
            destroyed = true;
        });
        std::this_thread::sleep_for(20ms);
        EXPECT_FALSE(destroyed.load()) << "destroyed while its thread was still running a task";
    }
    destroyer.join();
    EXPECT_TRUE(destroyed.load());
    EXPECT_EQ(p.wakes(), 1) << "a wake pending at destruction was lost";
}

TEST(EngineLifetime, AnEngineThatNeverStartedIsDestroyedAtOnce) {
    EXPECT_TRUE(returns_within([] { Engine engine; }, std::chrono::seconds(5)));
}

}  // namespace
}  // namespace ipnfs::test
