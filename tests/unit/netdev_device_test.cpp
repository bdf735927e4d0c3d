// A kernel interface plugged into a network as a port, with a socket pair
// standing in for the kernel: frames the kernel hands over reach the other
// ports, messages to the port reach the kernel, intact and in order; a full
// lossless network holds the kernel back instead of dropping; a device can
// be torn down at any moment, and one whose interface dies lets go of its
// port without stopping the engine.
#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "netdev/device.hpp"
#include "netdev/engine.hpp"
#include "netdev/handoff.hpp"
#include "netdev_test_support.hpp"

namespace ipnfs::test {
namespace {

using bus::Connection;
using bus::PortId;

// One device and the kernel's end of its link.
struct Plugged {
    std::unique_ptr<netdev::Device> device;
    std::unique_ptr<KernelEnd> kernel;

    [[nodiscard]] const netdev::DeviceCounters& counters() const { return device->counters(); }
};

class NetdevDevice : public ::testing::Test {
  protected:
    void SetUp() override { make_network(""); }

    void TearDown() override {
        // A device adds at most one parked receive (its own); more means the
        // port's list of waiters is corrupt, and tearing it down would crash
        // or hang: leave it all behind, failed.
        if (net_) {
            std::uint64_t parked = std::stoull(stat("parked_readers"));
            std::size_t running = 0;
            for (auto& p : plugged_) running += p->device && p->device->state() == "running";
            if (parked > running) {
                ADD_FAILURE() << parked << " receives parked on the network, " << running
                              << " running devices: a waiter was parked twice";
                for (auto& p : plugged_) [[maybe_unused]] auto* leaked = p.release();
                [[maybe_unused]] auto* net = new std::shared_ptr<bus::Network>(net_);
                return;
            }
        }
        for (auto& p : plugged_) unplug(*p);
    }

    void make_network(std::string_view ctl) {
        ASSERT_TRUE(plugged_.empty());
        net_.reset();
        ASSERT_TRUE(IsOk(bus::Network::create("net0", {}, catalog_, "hub", net_)));
        if (!ctl.empty()) {
            ASSERT_TRUE(IsOk(net_->control(ctl))) << ctl;
        }
    }

    // A device on the lowest free port, started; null if it could not be made.
    // `buffer`: how many bytes of frames may wait in each direction of the link.
    Plugged* plug(const std::string& name = "test0", int buffer = 4 << 20) {
        auto [mine, theirs] = seqpacket_pair();
        set_send_buffer(mine.get(), buffer);
        set_send_buffer(theirs.get(), buffer);
        Connection conn;
        bus::Status s = net_->connect_any(true, true, conn);
        EXPECT_TRUE(IsOk(s));
        if (!s.ok()) return nullptr;
        auto p = std::make_unique<Plugged>();
        p->kernel = std::make_unique<KernelEnd>(std::move(theirs));
        p->device = std::make_unique<netdev::Device>(
            *net_, engine_, std::make_unique<SocketLink>(mine.release(), name), conn);
        p->device->start();
        return plugged_.emplace_back(std::move(p)).get();
    }

    // As Interfaces::destroy does it: on the engine thread, between turns.
    void unplug(Plugged& p) {
        if (!p.device) return;
        engine_.run_sync([&] {
            p.device->detach();
            p.device.reset();
        });
    }

    Connection connect_any(bool reads, bool writes) {
        Connection conn;
        EXPECT_TRUE(IsOk(net_->connect_any(reads, writes, conn)));
        return conn;
    }

    // True if a new connection may have port `id` to itself: nobody holds it.
    bool port_is_free(PortId id) {
        Connection conn;
        bus::Status s = net_->connect(id, true, true, conn, true);
        if (!s.ok()) return false;
        net_->disconnect(conn);
        return true;
    }

    // The next message of a file-like port, waiting up to `limit` for it.
    bus::MessageRef take_within(const Connection& conn,
                                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
        bus::MessageRef got;
        wait_until(
            [&] {
                bus::Received r = net_->receive(conn, nullptr);
                if (r.outcome == bus::Outcome::message) got = std::move(r.message);
                return got != nullptr;
            },
            limit);
        return got;
    }

    // A send on a lossless network, retried while it would wait.
    bool send_patiently(const Connection& conn, std::string_view payload) {
        bus::Status last;
        bool sent = wait_until([&] {
            last = net_->send(conn, bytes(payload));
            return last.code != std::errc::resource_unavailable_try_again;
        });
        EXPECT_TRUE(IsOk(last));
        return sent && last.ok();
    }

    [[nodiscard]] std::string stat(const std::string& key) const {
        Stats st = parse_stats(net_->stats());
        auto it = st.totals.find(key);
        EXPECT_NE(it, st.totals.end()) << "no '" << key << "' in stats";
        return it == st.totals.end() ? std::string() : it->second;
    }
    [[nodiscard]] PortRow row(PortId id) const { return parse_stats(net_->stats()).rows[id]; }

    // Declared in this order so that the engine stops before the network
    // goes, and the network goes before the catalog it refers to.
    policies::Catalog catalog_;
    std::shared_ptr<bus::Network> net_;
    netdev::Engine engine_;
    std::vector<std::unique_ptr<Plugged>> plugged_;
};

std::uint64_t load(const std::atomic<std::uint64_t>& v) {
    return v.load(std::memory_order_relaxed);
}

// A counter the device bumps just after the frame left: the kernel may see
// the frame first.
::testing::AssertionResult settles_at(const std::atomic<std::uint64_t>& v, std::uint64_t want) {
    wait_until([&] { return load(v) == want; }, std::chrono::seconds(1));
    if (load(v) == want) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "counter is " << load(v) << ", not " << want;
}

// ---- a lossy hub ----

TEST_F(NetdevDevice, FramesFromTheKernelReachAFilePortInOrder) {
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    Connection r = connect_any(true, false);
    const std::vector<std::size_t> sizes = {60, 4, 1514, 333, 64};
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < sizes.size(); ++i) {
        ASSERT_TRUE(d->kernel->write(make_frame(i, sizes[i])));
        total += sizes[i];
    }
    for (std::uint32_t i = 0; i < sizes.size(); ++i) {
        bus::MessageRef m = take_within(r);
        ASSERT_NE(m, nullptr) << "frame " << i << " never arrived";
        EXPECT_EQ(text(m), make_frame(i, sizes[i])) << "frame " << i;
        EXPECT_EQ(m->from(), d->device->port());
        EXPECT_EQ(m->kind(), bus::Kind::data);
    }
    EXPECT_EQ(take_within(r, 50ms), nullptr) << "more frames than the kernel handed over";
    EXPECT_EQ(load(d->counters().frames_in), sizes.size());
    EXPECT_EQ(load(d->counters().bytes_in), total);
    EXPECT_TRUE(settles_at(d->counters().frames_out, 0U));
    EXPECT_TRUE(settles_at(d->counters().bytes_out, 0U));
    EXPECT_EQ(load(d->counters().drops), 0U);
    PortRow port = row(d->device->port());
    EXPECT_EQ(port.msgs_in, sizes.size());
    EXPECT_EQ(port.bytes_in, total);
    EXPECT_EQ(d->device->state(), "running");
}

TEST_F(NetdevDevice, MessagesToThePortReachTheKernelIntactAndInOrder) {
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    Connection w = connect_any(false, true);
    std::vector<std::string> sent;
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < 20; ++i) {
        sent.push_back(make_frame(i, (i * 97) % 1514 + 4));
        total += sent.back().size();
        ASSERT_TRUE(IsOk(net_->send(w, bytes(sent.back()))));
    }
    for (std::uint32_t i = 0; i < sent.size(); ++i) {
        std::optional<std::string> got = d->kernel->read();
        ASSERT_TRUE(got.has_value()) << "frame " << i << " never reached the kernel";
        EXPECT_EQ(*got, sent[i]) << "frame " << i << " (kernel got frame " << frame_number(*got)
                                 << ")";
    }
    EXPECT_EQ(d->kernel->read(50ms), std::nullopt) << "the kernel got more than was sent";
    EXPECT_TRUE(settles_at(d->counters().frames_out, sent.size()));
    EXPECT_TRUE(settles_at(d->counters().bytes_out, total));
    EXPECT_EQ(load(d->counters().frames_in), 0U);
    EXPECT_EQ(load(d->counters().drops), 0U);
    EXPECT_EQ(row(d->device->port()).msgs_out, sent.size());
}

TEST_F(NetdevDevice, MembershipEventsAreNotTransmitted) {
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    // A join for itself and the counts, then a join and counts for the new port.
    ASSERT_TRUE(IsOk(net_->control(fmt::format("events {} on", d->device->port()))));
    Connection other = connect_any(true, true);
    ASSERT_TRUE(IsOk(net_->send(other, bytes("data"))));
    EXPECT_EQ(d->kernel->read(), "data");
    EXPECT_EQ(d->kernel->read(100ms), std::nullopt) << "an event reached the wire";
    EXPECT_TRUE(settles_at(d->counters().frames_out, 1U));
    EXPECT_TRUE(settles_at(d->counters().bytes_out, 4U));
    EXPECT_EQ(load(d->counters().drops), 0U);
    EXPECT_EQ(row(d->device->port()).queued, 0U) << "events were left queued";
}

TEST_F(NetdevDevice, FramesTooLongForTheNetworkAreCountedAsDrops) {
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    Connection r = connect_any(true, false);
    ASSERT_TRUE(d->kernel->write(std::string(70000, 'L')));  // longer than any MTU
    ASSERT_TRUE(d->kernel->write(std::string(2000, 'M')));   // longer than this network's
    ASSERT_TRUE(d->kernel->write("ok"));
    bus::MessageRef m = take_within(r);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(text(m), "ok");
    EXPECT_EQ(take_within(r, 50ms), nullptr);
    EXPECT_EQ(load(d->counters().drops), 2U);
    EXPECT_EQ(d->device->state(), "running");
}

TEST_F(NetdevDevice, ABurstBothWaysAtOnceArrivesCompleteWhenQueuesAreLargeEnough) {
    make_network("queue 4096");
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    Connection peer = connect_any(true, true);
    constexpr std::uint32_t kFrames = 1000;
    auto size_of = [](std::uint32_t i) { return 60 + (i * 37) % 240; };

    std::vector<std::string> to_kernel;
    std::vector<std::string> from_kernel;
    std::atomic<bool> kernel_wrote_all{true};
    std::atomic<bool> bus_sent_all{true};
    std::thread kernel_writer([&] {
        for (std::uint32_t i = 0; i < kFrames; ++i) {
            if (!d->kernel->write(make_frame(i, size_of(i)))) {
                kernel_wrote_all = false;
                return;
            }
        }
    });
    std::thread kernel_reader([&] {
        while (to_kernel.size() < kFrames) {
            std::optional<std::string> f = d->kernel->read();
            if (!f) return;
            to_kernel.push_back(std::move(*f));
        }
    });
    std::thread bus_sender([&] {
        for (std::uint32_t i = 0; i < kFrames; ++i) {
            if (!net_->send(peer, bytes(make_frame(i + kFrames, size_of(i)))).ok()) {
                bus_sent_all = false;
            }
        }
    });
    while (from_kernel.size() < kFrames) {
        bus::MessageRef m = take_within(peer);
        if (m == nullptr) break;
        from_kernel.push_back(text(m));
    }
    kernel_writer.join();
    kernel_reader.join();
    bus_sender.join();

    EXPECT_TRUE(kernel_wrote_all.load());
    EXPECT_TRUE(bus_sent_all.load());
    ASSERT_EQ(from_kernel.size(), kFrames) << "frames from the kernel were lost";
    ASSERT_EQ(to_kernel.size(), kFrames) << "frames to the kernel were lost";
    std::uint64_t bytes_each_way = 0;
    for (std::uint32_t i = 0; i < kFrames; ++i) {
        ASSERT_EQ(from_kernel[i], make_frame(i, size_of(i))) << "from the kernel, frame " << i;
        ASSERT_EQ(to_kernel[i], make_frame(i + kFrames, size_of(i)))
            << "to the kernel, frame " << i;
        bytes_each_way += size_of(i);
    }
    EXPECT_EQ(load(d->counters().frames_in), kFrames);
    EXPECT_EQ(load(d->counters().bytes_in), bytes_each_way);
    EXPECT_TRUE(settles_at(d->counters().frames_out, kFrames));
    EXPECT_TRUE(settles_at(d->counters().bytes_out, bytes_each_way));
    EXPECT_EQ(load(d->counters().drops), 0U);
    EXPECT_EQ(stat("drops"), "0");
}

// ---- a lossless network ----

TEST_F(NetdevDevice, LosslessFullNetworkHoldsTheKernelBackAndDropsNothing) {
    make_network("lossless on\nqueue 4");
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    Connection r = connect_any(true, false);
    constexpr std::uint32_t kFrames = 100;
    for (std::uint32_t i = 0; i < kFrames; ++i) {
        ASSERT_TRUE(d->kernel->write(make_frame(i, 60 + i)));
    }
    // Four queued for the reader, the fifth parked; the rest stay with the kernel.
    ASSERT_TRUE(wait_until([&] { return stat("parked_senders") == "1"; }))
        << "the device never waited for the full network";
    EXPECT_TRUE(holds_for([&] { return load(d->counters().frames_in) == 5; }, 50ms))
        << "the device read " << load(d->counters().frames_in) << " frames, not 4 + 1 parked";
    for (std::uint32_t i = 0; i < kFrames; ++i) {
        bus::MessageRef m = take_within(r);
        ASSERT_NE(m, nullptr) << "frame " << i << " never arrived";
        ASSERT_EQ(text(m), make_frame(i, 60 + i))
            << "frame " << i << " (got frame " << frame_number(text(m)) << ")";
        if (i % 10 == 0) std::this_thread::sleep_for(2ms);  // a slow reader
    }
    EXPECT_EQ(take_within(r, 50ms), nullptr);
    EXPECT_EQ(load(d->counters().frames_in), kFrames);
    EXPECT_EQ(load(d->counters().drops), 0U);
    EXPECT_EQ(stat("drops"), "0");
    EXPECT_EQ(stat("parked_senders"), "0");
    // Only the device's own receive may wait on the network.
    EXPECT_EQ(stat("parked_readers"), "1") << "the device's receive waiter was parked again";
}

// Input paused and resumed once; then the other direction must still work.
TEST_F(NetdevDevice, LosslessMessagesReachTheKernelAfterItsInputWasHeldBack) {
    make_network("lossless on\nqueue 4");
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    Connection peer = connect_any(true, true);
    for (std::uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(d->kernel->write(make_frame(i, 64)));
    ASSERT_TRUE(wait_until([&] { return stat("parked_senders") == "1"; }));
    for (std::uint32_t i = 0; i < 10; ++i) {
        bus::MessageRef m = take_within(peer);
        ASSERT_NE(m, nullptr) << "frame " << i << " never arrived";
        EXPECT_EQ(text(m), make_frame(i, 64));
    }
    // More than its one receive parked is a corrupt list of waiters, on which
    // a send would crash: fail here instead.
    ASSERT_TRUE(wait_until([&] { return stat("parked_readers") == "1"; }, 1s))
        << "the device's receive waiter is parked " << stat("parked_readers") << " times";
    std::vector<std::string> got;
    std::thread kernel_reader([&] {
        while (got.size() < 50) {
            std::optional<std::string> f = d->kernel->read();
            if (!f) return;
            got.push_back(std::move(*f));
        }
    });
    for (std::uint32_t i = 0; i < 50; ++i) {
        if (!send_patiently(peer, make_frame(100 + i, 64))) break;
    }
    kernel_reader.join();
    ASSERT_EQ(got.size(), 50U) << "messages to the device were lost";
    for (std::uint32_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], make_frame(100 + i, 64));
    EXPECT_TRUE(settles_at(d->counters().frames_out, 50U));
    EXPECT_EQ(load(d->counters().drops), 0U);
}

// The kernel side does not read for a while: its socket fills, transmit
// fails with EAGAIN and those frames are dropped at the device, counted; the
// network itself drops nothing and whatever reaches the kernel is in order.
TEST_F(NetdevDevice, LosslessKernelNotReadingDropsOnlyAtTheDeviceAndCountsThem) {
    make_network("lossless on\nqueue 4");
    Plugged* d = plug("test0", 4096);
    ASSERT_NE(d, nullptr);
    Connection w = connect_any(false, true);
    constexpr std::uint32_t kFrames = 200;
    for (std::uint32_t i = 0; i < kFrames; ++i) {
        ASSERT_TRUE(send_patiently(w, make_frame(i, 500))) << "message " << i;
    }
    ASSERT_TRUE(wait_until([&] {
        return load(d->counters().frames_out) + load(d->counters().drops) == kFrames;
    })) << "the device did not finish: "
        << load(d->counters().frames_out) << " out, " << load(d->counters().drops) << " dropped";
    std::this_thread::sleep_for(100ms);  // the kernel still is not reading
    std::vector<std::int64_t> delivered;
    while (std::optional<std::string> f = d->kernel->read(100ms)) {
        EXPECT_EQ(f->size(), 500U);
        delivered.push_back(frame_number(*f));
    }
    EXPECT_EQ(delivered.size() + load(d->counters().drops), kFrames);
    EXPECT_TRUE(settles_at(d->counters().frames_out, delivered.size()));
    EXPECT_TRUE(settles_at(d->counters().bytes_out, delivered.size() * 500));
    EXPECT_GT(load(d->counters().drops), 0U) << "the kernel's socket never filled";
    for (std::size_t i = 1; i < delivered.size(); ++i) {
        EXPECT_LT(delivered[i - 1], delivered[i]) << "out of order at " << i;
    }
    EXPECT_EQ(stat("drops"), "0") << "the lossless network dropped";
    EXPECT_EQ(row(d->device->port()).msgs_out, kFrames);
}

// ---- teardown ----

TEST_F(NetdevDevice, DetachWithItsReceiveParkedFreesThePort) {
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    const PortId id = d->device->port();
    ASSERT_TRUE(wait_until([&] { return stat("parked_readers") == "1"; }))
        << "the device never waited for messages";
    unplug(*d);
    EXPECT_EQ(stat("parked_readers"), "0");
    EXPECT_TRUE(port_is_free(id));
    // Messages to the port now have nowhere to go; nothing completes a freed waiter.
    Connection w;
    ASSERT_TRUE(IsOk(net_->connect(30, false, true, w)));
    EXPECT_TRUE(IsOk(net_->send(w, bytes("late"))));
    EXPECT_TRUE(port_is_free(id));
}

TEST_F(NetdevDevice, DetachWithASendParkedFreesThePort) {
    make_network("lossless on\nqueue 1");
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    const PortId id = d->device->port();
    Connection r = connect_any(true, false);
    for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(d->kernel->write(make_frame(i, 64)));
    ASSERT_TRUE(wait_until([&] { return stat("parked_senders") == "1"; }));
    unplug(*d);
    EXPECT_EQ(stat("parked_senders"), "0");
    EXPECT_EQ(stat("parked_readers"), "0");
    EXPECT_TRUE(port_is_free(id));
    bus::MessageRef m = take_within(r);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(text(m), make_frame(0, 64));
    EXPECT_EQ(take_within(r, 50ms), nullptr) << "a cancelled send was delivered";
}

// Devices come and go while another thread sends to them without pause and
// their kernels hand over frames: every teardown leaves the port free, and
// nothing of a destroyed device is touched afterwards (the ASan build sees).
TEST_F(NetdevDevice, StartBurstDestroyAThousandTimes) {
    Connection sender;
    ASSERT_TRUE(IsOk(net_->connect(31, false, true, sender)));
    // Sends until the test ends, however it ends.
    struct Burst {
        std::atomic<bool> stop{false};
        std::atomic<std::uint64_t> sends{0};
        std::thread thread;
        ~Burst() {
            stop = true;
            if (thread.joinable()) thread.join();
        }
    } burst;
    burst.thread = std::thread([&] {
        const std::string frame = make_frame(7, 100);
        for (std::uint32_t i = 0; !burst.stop.load(); ++i) {
            [[maybe_unused]] bus::Status s = net_->send(sender, bytes(frame));
            burst.sends.fetch_add(1, std::memory_order_relaxed);
            if (i % 32 == 0) std::this_thread::yield();
        }
    });
    for (int i = 0; i < 1000; ++i) {
        Plugged* d = plug();
        ASSERT_NE(d, nullptr);
        const PortId id = d->device->port();
        for (int k = 0; k < i % 8; ++k) d->kernel->write(make_frame(k, 60));
        // Let it run for a varying while: from not at all to some frames out.
        if (i % 3 != 0) {
            std::uint64_t want = i % 5;
            wait_until([&] { return load(d->counters().frames_out) >= want; }, 1s);
        }
        unplug(*d);
        ASSERT_TRUE(port_is_free(id)) << "iteration " << i;
        plugged_.clear();
    }
    burst.stop = true;
    burst.thread.join();
    EXPECT_GT(burst.sends.load(), 1000U);
    EXPECT_EQ(stat("parked_readers"), "0");
    EXPECT_EQ(stat("parked_senders"), "0");
}

// ---- failure ----

TEST_F(NetdevDevice, ADeadLinkFailsTheDeviceReleasesItsPortAndTheEngineServesOthers) {
    Plugged* first = plug("first");
    ASSERT_NE(first, nullptr);
    const PortId id = first->device->port();
    Connection r = connect_any(true, false);
    ASSERT_TRUE(first->kernel->write("before"));
    bus::MessageRef m = take_within(r);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(text(m), "before");

    first->kernel->close();
    ASSERT_TRUE(wait_until([&] { return first->device->state() == "failed"; }))
        << "state is still " << first->device->state();
    EXPECT_TRUE(port_is_free(id)) << "a failed device kept its port";
    PortRow port = row(id);
    EXPECT_EQ(port.readers, 0U);
    EXPECT_EQ(port.writers, 0U);
    EXPECT_EQ(stat("parked_readers"), "0");

    Plugged* second = plug("second");
    ASSERT_NE(second, nullptr);
    ASSERT_TRUE(second->kernel->write("after"));
    m = take_within(r);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(text(m), "after");
    EXPECT_EQ(m->from(), second->device->port());
    Connection w = connect_any(false, true);
    ASSERT_TRUE(IsOk(net_->send(w, bytes("to second"))));
    EXPECT_EQ(second->kernel->read(), "to second");
    EXPECT_EQ(second->device->state(), "running");
}

// An interface that dies while a full lossless network holds its input back:
// the engine must not spin on the dead descriptor meanwhile, and the frames
// the kernel handed over before still arrive.
TEST_F(NetdevDevice, ALinkDyingWhileHeldBackDoesNotKeepTheEngineBusy) {
    make_network("lossless on\nqueue 2");
    Plugged* d = plug();
    ASSERT_NE(d, nullptr);
    const PortId id = d->device->port();
    Connection r = connect_any(true, false);
    for (std::uint32_t i = 0; i < 6; ++i) ASSERT_TRUE(d->kernel->write(make_frame(i, 64)));
    ASSERT_TRUE(wait_until([&] { return stat("parked_senders") == "1"; }));
    d->kernel->close();

    pthread_t engine_thread{};
    engine_.run_sync([&] { engine_thread = pthread_self(); });
    clockid_t clock{};
    ASSERT_EQ(pthread_getcpuclockid(engine_thread, &clock), 0);
    auto cpu_ms = [&] {
        timespec t{};
        clock_gettime(clock, &t);
        return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
    };
    const double before = cpu_ms();
    std::this_thread::sleep_for(300ms);
    const double busy = cpu_ms() - before;
    EXPECT_LT(busy, 100.0) << "the engine thread used " << busy
                           << " ms of CPU in 300 ms while the device waited";

    for (std::uint32_t i = 0; i < 6; ++i) {
        bus::MessageRef m = take_within(r);
        ASSERT_NE(m, nullptr) << "frame " << i << " never arrived";
        EXPECT_EQ(text(m), make_frame(i, 64));
    }
    ASSERT_TRUE(wait_until([&] { return d->device->state() == "failed"; }));
    EXPECT_TRUE(port_is_free(id));
}

// ---- frames a link holds beyond what its descriptor shows ----

// A link that gives each frame it reads `copies` times, as a grab gives the
// frames a superframe is cut into: epoll sees one readable datagram, the
// device must come back for the rest itself.
class BurstLink final : public netdev::Link {
  public:
    BurstLink(int fd, int copies) : Link(fd, "burst0"), copies_(copies) {}

    [[nodiscard]] std::string_view kind() const override { return "test"; }

    ssize_t receive(std::span<std::byte> buf, std::uint8_t& /*hops*/, std::uint64_t& /*too_long*/,
                    std::string& error) override {
        if (left_ > 0) {
            --left_;
            std::memcpy(buf.data(), held_.data(), held_.size());
            return static_cast<ssize_t>(held_.size());
        }
        ssize_t n = ::recv(fd(), buf.data(), buf.size(), 0);
        if (n > 0) {
            held_.assign(buf.data(), buf.data() + n);
            left_ = copies_ - 1;
            return n;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
        error = "the other end was closed";
        return -1;
    }
    [[nodiscard]] bool holds_frames() const override { return left_ > 0; }

    int transmit(std::span<const std::byte> frame, std::uint8_t /*hops*/) override {
        return ::send(fd(), frame.data(), frame.size(), MSG_NOSIGNAL) < 0 ? errno : 0;
    }

  private:
    const int copies_;
    int left_ = 0;
    std::vector<std::byte> held_;
};

class NetdevDeviceBurst : public NetdevDevice {
  protected:
    Plugged* plug_burst(int copies) {
        auto [mine, theirs] = seqpacket_pair();
        Connection conn = connect_any(true, true);
        auto p = std::make_unique<Plugged>();
        p->kernel = std::make_unique<KernelEnd>(std::move(theirs));
        p->device = std::make_unique<netdev::Device>(
            *net_, engine_, std::make_unique<BurstLink>(mine.release(), copies), conn);
        p->device->start();
        return plugged_.emplace_back(std::move(p)).get();
    }
};

TEST_F(NetdevDeviceBurst, AllFramesOfOneReadArrivePastTheDeviceBudget) {
    make_network("queue 1024");
    Connection r = connect_any(true, false);
    Plugged* d = plug_burst(200);  // three turns' worth of frames from one read
    ASSERT_TRUE(d->kernel->write(make_frame(7, 100)));
    for (int i = 0; i < 200; ++i) {
        bus::MessageRef m = take_within(r, 2s);
        ASSERT_NE(m, nullptr) << "frame " << i << " of 200 never arrived";
        EXPECT_EQ(text(m), make_frame(7, 100));
    }
    EXPECT_EQ(load(d->counters().frames_in), 200U);
}

TEST_F(NetdevDeviceBurst, AllFramesOfOneReadArriveAfterALosslessPause) {
    make_network("lossless on\nqueue 4");
    Connection r = connect_any(true, false);
    Plugged* d = plug_burst(50);  // the queue fills, the device pauses, resumes
    ASSERT_TRUE(d->kernel->write(make_frame(9, 80)));
    for (int i = 0; i < 50; ++i) {
        bus::MessageRef m = take_within(r, 2s);
        ASSERT_NE(m, nullptr) << "frame " << i << " of 50 never arrived";
    }
    EXPECT_EQ(load(d->counters().frames_in), 50U);
    EXPECT_EQ(load(d->counters().drops), 0U);
}

// The engine thread's look at its receive waiter and a completion from
// another thread: whenever the completion lands (before set_parked, or
// between the engine's looks), the engine sees it once and only then hands
// the waiter to the bus again, so the bus never holds it twice.
struct IdleOwner final : netdev::Pollable {
    void on_readable() override {}
    void on_wake() override {}
};

using NetdevHandoff = HubNetworkTest;

TEST_F(NetdevHandoff, ACompletionIsTakenBeforeTheWaiterGoesToTheBusAgain) {
    using Egress = netdev::Handoff<bus::Waiter, bus::Received>;
    IdleOwner owner;
    netdev::Engine engine;  // never started: the wakes only queue
    Connection w = writer(0);
    Connection r = reader(1);
    auto* egress = new Egress(engine, owner);
    bus::Received got{bus::Outcome::would_block, nullptr};
    ASSERT_EQ(egress->take(got), Egress::Turn::idle);

    // Completed before the engine thread marked it parked.
    ASSERT_EQ(net_->receive(r, egress).outcome, bus::Outcome::parked);
    send(w, "early");
    egress->set_parked();
    ASSERT_EQ(egress->take(got), Egress::Turn::completed);
    EXPECT_EQ(text(got.message), "early");
    ASSERT_EQ(egress->take(got), Egress::Turn::idle);

    // Completed while the engine, woken for something else, looks at it.
    ASSERT_EQ(net_->receive(r, egress).outcome, bus::Outcome::parked);
    egress->set_parked();
    ASSERT_EQ(egress->take(got), Egress::Turn::waiting);
    send(w, "late");
    ASSERT_EQ(egress->take(got), Egress::Turn::completed);
    EXPECT_EQ(text(got.message), "late");
    ASSERT_EQ(egress->take(got), Egress::Turn::idle);

    ASSERT_EQ(net_->receive(r, egress).outcome, bus::Outcome::parked);
    egress->set_parked();
    EXPECT_EQ(stat("parked_readers"), "1");
    send(w, "last");
    EXPECT_EQ(stat("parked_readers"), "0");
    ASSERT_EQ(egress->take(got), Egress::Turn::completed);
    EXPECT_EQ(text(got.message), "last");
    egress->release(net_->cancel(r, *egress));
    engine.forget(owner, -1);
}

}  // namespace
}  // namespace ipnfs::test
