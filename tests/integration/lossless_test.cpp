// Lossless networks: a write that cannot be queued to every recipient now
// waits (or is EAGAIN), delivery is all-or-none, parked sends go in FIFO
// order, interrupted or killed writers deliver nothing, the pool bounds the
// pending messages, dropwhenfull ports opt out, and poll's POLLOUT tells
// exactly when a write would not wait.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <future>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

// A lossless network "lan" with queues of two messages.
class LosslessTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
        ASSERT_EQ(ctl(net_, "lossless on\nqueue 2\n"), 0);
    }
    std::string port(int n) const { return net_ + "/port" + std::to_string(n); }
    std::uint64_t parked_senders() { return stats(net_).total("parked_senders"); }
    // Waits until `n` sends are parked in the daemon.
    bool wait_parked_senders(std::uint64_t n) {
        return eventually([&] { return parked_senders() == n; }, 3s);
    }
    // Sends m0 and m1 from w: port `full`'s queue of two is then full.
    void fill(int w) {
        ASSERT_EQ(write_msg(w, "m0").n, 2);
        ASSERT_EQ(write_msg(w, "m1").n, 2);
    }

    std::string net_;
};

TEST_F(LosslessTest, StatsShowALosslessNetwork) {
    Stats st = stats(net_);
    EXPECT_EQ(st.totals["lossless"], "on");
    EXPECT_EQ(st.total("pool"), 1024u);
    EXPECT_EQ(st.total("pool_used"), 0u);
}

TEST_F(LosslessTest, AWriteToAFullQueueWaitsUntilTheReaderMakesRoom) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    {
        BackgroundWrite blocked(mount_, w.get(), "m2");
        ASSERT_TRUE(blocked.wait_blocked(2s)) << "a write to a full lossless queue did not wait";
        std::this_thread::sleep_for(200ms);
        EXPECT_FALSE(blocked.done());
        Stats st = stats(net_);
        EXPECT_EQ(st.total("parked_senders"), 1u);
        EXPECT_EQ(st.total("pool_used"), 2u);
        EXPECT_EQ(st.rows[1].queued, 2u);
        EXPECT_EQ(st.rows[2].msgs_in, 2u) << "the waiting message was counted as sent";

        auto read_at = Clock::now();
        EXPECT_EQ(read_one(r.get()).data, "m0");
        ASSERT_TRUE(blocked.wait(3s)) << "making room did not let the waiting write go";
        EXPECT_EQ(blocked.result().n, 2);
        EXPECT_LT(std::chrono::duration<double>(blocked.finished_at() - read_at).count(), 1.0);
    }
    EXPECT_EQ(read_one(r.get()).data, "m1");
    EXPECT_EQ(read_one(r.get()).data, "m2");
    Stats st = stats(net_);
    EXPECT_EQ(st.total("drops"), 0u);
    EXPECT_EQ(st.total("parked_senders"), 0u);
    EXPECT_EQ(st.total("pool_used"), 0u);
    EXPECT_EQ(st.rows[2].msgs_in, 3u);
}

TEST_F(LosslessTest, ANonBlockingWriteIsEAGAINInsteadOfWaiting) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY | O_NONBLOCK);
    fill(w.get());
    EXPECT_EQ(::write(w.get(), "m2", 2), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(drain(r.get()), (std::vector<std::string>{"m0", "m1"}));
    EXPECT_EQ(stats(net_).rows[2].msgs_in, 2u);
    EXPECT_EQ(write_msg(w.get(), "m3").n, 2) << "room again: the write goes";
    EXPECT_EQ(read_one(r.get()).data, "m3");
}

TEST_F(LosslessTest, DeliveryIsAllOrNone) {
    Fd a = open_fd(port(1), O_RDONLY);
    Fd b = open_fd(port(2), O_RDONLY);
    Fd w = open_fd(port(3), O_WRONLY);
    fill(w.get());
    EXPECT_EQ(drain(a.get()), (std::vector<std::string>{"m0", "m1"}));
    // b is full, a is empty: the next message goes to both or to neither.
    BackgroundWrite blocked(mount_, w.get(), "m2");
    ASSERT_TRUE(blocked.wait_blocked(2s));
    Io early = read_one(a.get(), 300);
    EXPECT_TRUE(early.timed_out()) << "a got '" << early.data << "' before b had room";
    EXPECT_EQ(read_one(b.get()).data, "m0");
    ASSERT_TRUE(blocked.wait(3s));
    EXPECT_EQ(blocked.result().n, 2);
    EXPECT_EQ(read_one(a.get()).data, "m2");
    EXPECT_EQ(drain(b.get()), (std::vector<std::string>{"m1", "m2"}));
}

TEST_F(LosslessTest, ParkedSendsGoInFifoOrder) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    std::vector<Fd> writers;
    std::vector<std::unique_ptr<BackgroundWrite>> parked;
    for (int i = 0; i < 5; ++i) {
        writers.push_back(open_fd(port(3 + i), O_WRONLY));
        parked.push_back(std::make_unique<BackgroundWrite>(mount_, writers.back().get(),
                                                           "w" + std::to_string(3 + i)));
        ASSERT_TRUE(wait_parked_senders(i + 1)) << "write " << i << " did not park";
    }
    // Room for one message at a time: each goes in the order it parked.
    std::vector<std::string> got;
    for (int i = 0; i < 7; ++i) {
        Io io = read_one(r.get());
        ASSERT_GT(io.n, 0) << "message " << i << ": " << std::strerror(io.err);
        got.push_back(io.data);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"m0", "m1", "w3", "w4", "w5", "w6", "w7"}));
    for (auto& p : parked) {
        ASSERT_TRUE(p->wait(3s));
        EXPECT_EQ(p->result().n, 2);
    }
}

// FIFO holds even for a send that would fit: it does not overtake one that waits.
TEST_F(LosslessTest, ASendThatWouldFitDoesNotOvertakeAParkedOne) {
    Fd full = open_fd(port(1), O_RDONLY);               // will be full
    Fd other = open_fd(port(2), O_RDONLY);              // has room
    Fd self = open_fd(port(1), O_WRONLY | O_NONBLOCK);  // sends from the full port itself
    Fd w = open_fd(port(3), O_WRONLY);
    fill(w.get());
    EXPECT_EQ(drain(other.get()), (std::vector<std::string>{"m0", "m1"}));
    BackgroundWrite blocked(mount_, w.get(), "waits");
    ASSERT_TRUE(wait_parked_senders(1));
    // From port 1, only port 2 (which has room) is a recipient; still it
    // must queue behind the parked send, so it would wait: EAGAIN.
    EXPECT_EQ(poll_now(self.get(), POLLOUT), 0) << "POLLOUT while a parked send is ahead";
    EXPECT_EQ(::write(self.get(), "overtake", 8), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(read_one(full.get()).data, "m0");
    ASSERT_TRUE(blocked.wait(3s));
    EXPECT_EQ(write_msg(self.get(), "after").n, 5);
    EXPECT_EQ(drain(other.get()), (std::vector<std::string>{"waits", "after"}));
}

// A send held back only by the parked send ahead of it (FIFO) may go once
// that one is interrupted: a poller waiting for POLLOUT must hear of it.
TEST_F(LosslessTest, APollerHeldBackByAParkedSendWakesWhenThatSendIsInterrupted) {
    install_interrupting_handler(SIGUSR1);
    Fd full = open_fd(port(1), O_RDONLY);
    Fd other = open_fd(port(2), O_RDONLY);
    Fd self = open_fd(port(1), O_WRONLY | O_NONBLOCK);  // recipients: port 2 only
    Fd w = open_fd(port(3), O_WRONLY);
    fill(w.get());
    EXPECT_EQ(drain(other.get()).size(), 2u);
    BackgroundWrite blocked(mount_, w.get(), "waits");
    ASSERT_TRUE(wait_parked_senders(1));
    ASSERT_TRUE(blocked.wait_blocked(2s));
    ASSERT_EQ(poll_now(self.get(), POLLOUT), 0) << "a parked send is ahead";
    auto polled = std::async(std::launch::async, [&] {
        pollfd pfd{self.get(), POLLOUT, 0};
        int n = poll(&pfd, 1, 3000);
        return n == 1 ? pfd.revents : 0;
    });
    ASSERT_EQ(polled.wait_for(200ms), std::future_status::timeout);
    ASSERT_EQ(pthread_kill(blocked.handle(), SIGUSR1), 0);
    ASSERT_TRUE(blocked.wait(3s));
    EXPECT_EQ(blocked.result().err, EINTR);
    EXPECT_EQ(poll_now(self.get(), POLLOUT), POLLOUT) << "nothing is ahead any more";
    bool woken = polled.wait_for(1500ms) == std::future_status::ready;
    EXPECT_TRUE(woken) << "a poll() waiting for POLLOUT was not woken when the parked send "
                          "ahead of it was interrupted (it only sees it at its own 3 s timeout)";
    EXPECT_EQ(polled.get(), POLLOUT);
    EXPECT_EQ(::write(self.get(), "now", 3), 3);
    EXPECT_EQ(read_one(other.get()).data, "now");
}

TEST_F(LosslessTest, ASignalInterruptsAParkedWriteAndNothingIsDelivered) {
    install_interrupting_handler(SIGUSR1);
    Fd r = open_fd(port(1), O_RDONLY);
    Fd has_room = open_fd(port(4), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    EXPECT_EQ(drain(has_room.get()), (std::vector<std::string>{"m0", "m1"}));
    {
        BackgroundWrite blocked(mount_, w.get(), "never");
        ASSERT_TRUE(blocked.wait_blocked(2s));
        ASSERT_TRUE(wait_parked_senders(1));
        auto sent = Clock::now();
        ASSERT_EQ(pthread_kill(blocked.handle(), SIGUSR1), 0);
        ASSERT_TRUE(blocked.wait(3s)) << "the signal did not end the parked write";
        EXPECT_EQ(blocked.result().n, -1);
        EXPECT_EQ(blocked.result().err, EINTR);
        EXPECT_LT(std::chrono::duration<double>(blocked.finished_at() - sent).count(), 1.0);
    }
    EXPECT_EQ(parked_senders(), 0u);
    EXPECT_EQ(drain(r.get()), (std::vector<std::string>{"m0", "m1"}));
    EXPECT_TRUE(drain(has_room.get()).empty()) << "the interrupted message reached a port";
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[2].msgs_in, 2u);
    EXPECT_EQ(st.total("pool_used"), 0u);
    // The writer carries on normally.
    EXPECT_EQ(write_msg(w.get(), "next").n, 4);
    EXPECT_EQ(read_one(r.get()).data, "next");
    EXPECT_EQ(read_one(has_room.get()).data, "next");
}

// An interrupt and freed room racing for the same parked write: the write
// ends either with success (the message is delivered once) or with EINTR
// (it is never delivered).  Nothing else.
TEST_F(LosslessTest, InterruptsRacingWithRoomNeverLoseOrDuplicateAMessage) {
    install_interrupting_handler(SIGUSR1);
    ASSERT_EQ(ctl(net_, "ports 4\n"), 0);
    Fd w = open_fd(port(2), O_WRONLY);
    Fd r = open_fd(port(1), O_RDONLY);
    std::vector<std::string> sent, got;
    ASSERT_EQ(write_msg(w.get(), "f").n, 1);  // queue 2: one more fits
    ASSERT_EQ(write_msg(w.get(), "g").n, 1);
    sent = {"f", "g"};
    constexpr int kRounds = 60;
    int interrupted = 0;
    for (int i = 0; i < kRounds; ++i) {
        SCOPED_TRACE("round " + std::to_string(i));
        const std::string m = "m" + std::to_string(i);
        BackgroundWrite writer(mount_, w.get(), m);
        if (i % 3 == 0) writer.wait_blocked(2s);  // else: race the parking too
        std::thread reader([&] {
            Io io = read_one(r.get(), 2000);
            if (io.n > 0) got.push_back(io.data);
        });
        pthread_kill(writer.handle(), SIGUSR1);
        reader.join();
        ASSERT_TRUE(writer.wait(3s)) << "the write neither went nor was interrupted";
        if (writer.result().n == static_cast<ssize_t>(m.size())) {
            sent.push_back(m);
        } else {
            ASSERT_EQ(writer.result().err, EINTR);
            ++interrupted;
            const std::string refill = "r" + std::to_string(i);  // keep the queue full
            ASSERT_EQ(write_msg(w.get(), refill).n, static_cast<ssize_t>(refill.size()));
            sent.push_back(refill);
        }
    }
    for (auto& m : drain(r.get())) got.push_back(m);
    EXPECT_EQ(got, sent) << "what the reader got is not exactly what the writes reported sent";
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[2].msgs_in, sent.size());
    EXPECT_EQ(st.total("parked_senders"), 0u);
    EXPECT_EQ(st.total("pool_used"), 0u);
    std::cout << "[ info ] " << interrupted << " of " << kRounds << " writes ended with EINTR\n";
}

// Several writes may wait on one port file at once (two descriptors of one
// port; two opens of clone), and each can be interrupted on its own.
TEST_F(LosslessTest, WritesWaitingOnOneFileAtOnceCanEachBeInterrupted) {
    install_interrupting_handler(SIGUSR1);
    Fd r = open_fd(port(0), O_RDONLY);
    Fd filler = open_fd(port(5), O_WRONLY);
    fill(filler.get());
    for (const std::string file : {"port2", "clone"}) {
        SCOPED_TRACE(file);
        Fd a = open_fd(net_ + "/" + file, O_WRONLY);
        Fd b = open_fd(net_ + "/" + file, O_WRONLY);
        BackgroundWrite wa(mount_, a.get(), "a");
        ASSERT_TRUE(wait_parked_senders(1));
        BackgroundWrite wb(mount_, b.get(), "b");
        ASSERT_TRUE(wait_parked_senders(2))
            << "the second write to the same file did not reach the daemon (stuck in the kernel?)";
        ASSERT_TRUE(wb.wait_blocked(2s));
        ASSERT_EQ(pthread_kill(wb.handle(), SIGUSR1), 0);
        ASSERT_TRUE(wb.wait(3s)) << "the second waiting write could not be interrupted";
        EXPECT_EQ(wb.result().err, EINTR);
        EXPECT_FALSE(wa.done());
        ASSERT_EQ(pthread_kill(wa.handle(), SIGUSR1), 0);
        ASSERT_TRUE(wa.wait(3s));
        EXPECT_EQ(wa.result().err, EINTR);
    }
    EXPECT_EQ(drain(r.get()), (std::vector<std::string>{"m0", "m1"}));
}

TEST_F(LosslessTest, KillingAProcessParkedInWriteDeliversNothingOfItsMessage) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    const std::string child_port = port(3);
    pid_t child = fork_child([&] {
        int fd = open(child_port.c_str(), O_WRONLY);
        if (fd < 0) return 10;
        return ::write(fd, "killed", 6) == 6 ? 0 : 11;  // parks until SIGKILL
    });
    ASSERT_GT(child, 0);
    bool parked =
        eventually([&] { return process_state(child) == 'S' && parked_senders() == 1; }, 5s);
    EXPECT_TRUE(parked) << "the child's write did not park";
    auto killed = Clock::now();
    ::kill(child, SIGKILL);
    auto status = wait_child(child, 5s);
    ASSERT_TRUE(status.has_value());
    EXPECT_LT(seconds_since(killed), 2.0) << "the killed writer stayed stuck";
    EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
    EXPECT_TRUE(eventually([&] { return parked_senders() == 0; }, 2s));

    // The reader sees exactly what was queued before, never the killed message.
    EXPECT_EQ(drain(r.get(), 500), (std::vector<std::string>{"m0", "m1"}));
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[3].msgs_in, 0u) << "the killed writer's message was counted as sent";
    EXPECT_EQ(st.rows[3].readers + st.rows[3].writers, 0u);
    EXPECT_EQ(st.total("msgs_in"), 2u);
    EXPECT_EQ(st.total("pool_used"), 0u);
    EXPECT_EQ(st.total("drops"), 0u);
}

TEST_F(LosslessTest, ThePoolCountsEachPendingMessageOnce) {
    ASSERT_EQ(ctl(net_, "queue 64\npool 3\n"), 0);
    Fd r1 = open_fd(port(1), O_RDONLY);
    Fd r2 = open_fd(port(2), O_RDONLY);
    Fd w = open_fd(port(3), O_WRONLY | O_NONBLOCK);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(::write(w.get(), "p", 1), 1) << "message " << i;
    EXPECT_EQ(stats(net_).total("pool_used"), 3u) << "two copies of a message count once";
    EXPECT_EQ(::write(w.get(), "p", 1), -1) << "the pool of 3 is used up";
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(poll_now(w.get(), POLLOUT), 0);
    // r1 takes its copies; r2 still holds them: the messages still pend.
    EXPECT_EQ(drain(r1.get()).size(), 3u);
    EXPECT_EQ(stats(net_).total("pool_used"), 3u);
    EXPECT_EQ(::write(w.get(), "p", 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    // The last copy of one message taken: room for one more.
    EXPECT_EQ(read_one(r2.get()).data, "p");
    EXPECT_EQ(stats(net_).total("pool_used"), 2u);
    EXPECT_EQ(poll_now(w.get(), POLLOUT), POLLOUT);
    EXPECT_EQ(::write(w.get(), "q", 1), 1);
    EXPECT_EQ(::write(w.get(), "p", 1), -1);
}

TEST_F(LosslessTest, GrowingThePoolLetsAParkedWriteGo) {
    ASSERT_EQ(ctl(net_, "queue 64\npool 2\n"), 0);
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    BackgroundWrite blocked(mount_, w.get(), "m2");
    ASSERT_TRUE(wait_parked_senders(1)) << "a write beyond the pool did not park";
    ASSERT_EQ(ctl(net_, "pool 3\n"), 0) << "pool can change while ports are open";
    ASSERT_TRUE(blocked.wait(3s)) << "a larger pool did not let the parked write go";
    EXPECT_EQ(blocked.result().n, 2);
    EXPECT_EQ(stats(net_).total("pool_used"), 3u);
    EXPECT_EQ(drain(r.get()), (std::vector<std::string>{"m0", "m1", "m2"}));
}

TEST_F(LosslessTest, ADropWhenFullPortLosesItsOwnCopiesInsteadOfHoldingSenders) {
    ASSERT_EQ(ctl(net_, "dropwhenfull 1 on\n"), 0);
    Fd slow = open_fd(port(1), O_RDONLY);
    Fd fast = open_fd(port(3), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY | O_NONBLOCK);
    for (int i = 0; i < 5; ++i) {
        std::string m = "m" + std::to_string(i);
        ASSERT_EQ(::write(w.get(), m.data(), m.size()), 2) << m << ": " << std::strerror(errno);
        EXPECT_EQ(read_one(fast.get()).data, m);
    }
    EXPECT_EQ(drain(slow.get()), (std::vector<std::string>{"m0", "m1"}));
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[1].drops, 3u);
    EXPECT_EQ(st.rows[3].drops, 0u);
    EXPECT_EQ(st.total("drops"), 3u);

    // Off again: the full slow port holds senders back like any other.
    ASSERT_EQ(ctl(net_, "dropwhenfull 1 off\n"), 0);
    fill(w.get());
    EXPECT_EQ(drain(fast.get()).size(), 2u);
    EXPECT_EQ(::write(w.get(), "m7", 2), -1);
    EXPECT_EQ(errno, EAGAIN);
    // Turned on while a send waits for that port: the send goes, the port drops it.
    Fd wb = open_fd(port(4), O_WRONLY);
    BackgroundWrite blocked(mount_, wb.get(), "m8");
    ASSERT_TRUE(wait_parked_senders(1));
    ASSERT_EQ(ctl(net_, "dropwhenfull 1 on\n"), 0);
    ASSERT_TRUE(blocked.wait(3s)) << "dropwhenfull on did not release the send waiting for it";
    EXPECT_EQ(blocked.result().n, 2);
    EXPECT_EQ(read_one(fast.get()).data, "m8");
    EXPECT_EQ(drain(slow.get()), (std::vector<std::string>{"m0", "m1"}));
    EXPECT_EQ(stats(net_).rows[1].drops, 4u);
}

TEST_F(LosslessTest, PollOutIsReportedExactlyWhenAWriteWouldNotWait) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_RDWR | O_NONBLOCK);
    Fd x = open_fd(port(3), O_WRONLY | O_NONBLOCK);
    Fd reader_only = open_fd(port(4), O_RDONLY);
    EXPECT_EQ(poll_now(w.get(), POLLOUT | POLLIN), POLLOUT);
    EXPECT_EQ(poll_now(reader_only.get(), POLLOUT), 0)
        << "POLLOUT on a descriptor that cannot write";
    // x fills port 2 (w's own port) and port 1 and port 4.
    fill(x.get());
    EXPECT_EQ(drain(reader_only.get()).size(), 2u);
    EXPECT_EQ(poll_now(x.get(), POLLOUT), 0) << "x's recipients are full";
    EXPECT_EQ(::write(x.get(), "m", 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    // w's own full queue does not matter to w's sends; port 1 does.
    EXPECT_EQ(poll_now(w.get(), POLLOUT), 0);
    EXPECT_EQ(drain(r.get()).size(), 2u);
    EXPECT_EQ(poll_now(w.get(), POLLOUT | POLLIN), POLLOUT | POLLIN)
        << "only w's own queue is full: w's write would not wait";
    EXPECT_EQ(poll_now(x.get(), POLLOUT), 0) << "port 2 is still full for x";
    EXPECT_EQ(::write(w.get(), "from w", 6), 6);
    // A dropwhenfull port does not hold senders back.
    ASSERT_EQ(ctl(net_, "dropwhenfull 2 on\n"), 0);
    EXPECT_EQ(poll_now(x.get(), POLLOUT), POLLOUT);
    EXPECT_EQ(::write(x.get(), "m", 1), 1);
}

TEST_F(LosslessTest, APollerWaitingForPollOutWakesWhenAReaderMakesRoom) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    EXPECT_EQ(poll_now(w.get(), POLLOUT), 0);
    auto polled = std::async(std::launch::async, [&] {
        pollfd pfd{w.get(), POLLOUT, 0};
        int n = poll(&pfd, 1, 5000);
        return std::make_pair(n == 1 ? pfd.revents : 0, Clock::now());
    });
    ASSERT_EQ(polled.wait_for(300ms), std::future_status::timeout) << "POLLOUT with a full queue";
    auto read_at = Clock::now();
    EXPECT_EQ(read_one(r.get()).data, "m0");
    auto [revents, woke] = polled.get();
    EXPECT_EQ(revents, POLLOUT) << "the poller was not woken when room was made";
    EXPECT_LT(std::chrono::duration<double>(woke - read_at).count(), 1.0);
    EXPECT_EQ(write_msg(w.get(), "m2", 0).n, 2);
}

// Room can also come from ctl: a larger pool, or the full port made
// dropwhenfull.  Both let parked writes go at once; a poller waiting for
// POLLOUT must hear of it too, or an event loop stalls.
TEST_F(LosslessTest, APollerWaitingForPollOutWakesWhenCtlMakesRoom) {
    ASSERT_EQ(ctl(net_, "queue 64\npool 2\n"), 0);
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY | O_NONBLOCK);
    fill(w.get());
    for (const char* command : {"pool 3\n", "dropwhenfull 1 on\n"}) {
        SCOPED_TRACE(command);
        if (std::string(command).rfind("dropwhenfull", 0) == 0) {
            // Make port 1's queue the obstacle instead of the pool.
            ASSERT_EQ(ctl(net_, "pool 1024\n"), 0);
            while (::write(w.get(), "f", 1) == 1) {
            }
            ASSERT_EQ(errno, EAGAIN);
            EXPECT_EQ(stats(net_).rows[1].queued, 64u);
        } else {
            EXPECT_EQ(::write(w.get(), "x", 1), -1) << "the pool of 2 is used up";
        }
        ASSERT_EQ(poll_now(w.get(), POLLOUT), 0);
        auto polled = std::async(std::launch::async, [&] {
            pollfd pfd{w.get(), POLLOUT, 0};
            int n = poll(&pfd, 1, 3000);
            return n == 1 ? pfd.revents : 0;
        });
        ASSERT_EQ(polled.wait_for(200ms), std::future_status::timeout);
        ASSERT_EQ(ctl(net_, command), 0);
        EXPECT_EQ(poll_now(w.get(), POLLOUT), POLLOUT) << "a new poll sees the room";
        bool woken = polled.wait_for(1500ms) == std::future_status::ready;
        EXPECT_TRUE(woken) << "a poll() already waiting for POLLOUT was not woken by '"
                           << std::string(command, std::strlen(command) - 1)
                           << "' (it only sees the room at its own 3 s timeout)";
        EXPECT_EQ(polled.get(), POLLOUT);  // bounded by poll's own 3 s
    }
}

// epoll, edge-triggered, as an event loop uses it for writing: write until
// EAGAIN, wait for EPOLLOUT, repeat.  Every wait must end.
TEST_F(LosslessTest, AnEventLoopWritingUntilEAGAINIsWokenEachTime) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY | O_NONBLOCK);
    constexpr int kTotal = 40;
    std::vector<std::string> got;
    std::thread reader([&] {
        while (static_cast<int>(got.size()) < kTotal) {
            Io io = read_one(r.get(), 5000);
            if (io.n <= 0) return;
            got.push_back(io.data);
            std::this_thread::sleep_for(2ms);
        }
    });
    int sent = 0, waits = 0;
    while (sent < kTotal) {
        std::string m = "e" + std::to_string(sent);
        if (::write(w.get(), m.data(), m.size()) == static_cast<ssize_t>(m.size())) {
            ++sent;
            continue;
        }
        ASSERT_EQ(errno, EAGAIN);
        ++waits;
        ASSERT_EQ(poll_now(w.get(), POLLOUT, 5000), POLLOUT) << "no POLLOUT after " << sent;
    }
    reader.join();
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kTotal));
    for (int i = 0; i < kTotal; ++i) EXPECT_EQ(got[i], "e" + std::to_string(i));
    EXPECT_GT(waits, 0) << "the writer never had to wait: the test proved nothing";
}

TEST_F(LosslessTest, StatsShowAParkedReaderAndAParkedSender) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    {
        BackgroundRead reader(mount_, r.get());
        ASSERT_TRUE(reader.wait_blocked(2s));
        EXPECT_EQ(stats(net_).total("parked_readers"), 1u);
        ASSERT_EQ(write_msg(w.get(), "x").n, 1);
        ASSERT_TRUE(reader.wait(3s));
    }
    EXPECT_EQ(stats(net_).total("parked_readers"), 0u);
    fill(w.get());
    BackgroundWrite writer(mount_, w.get(), "y");
    ASSERT_TRUE(writer.wait_blocked(2s));
    Stats st = stats(net_);
    EXPECT_EQ(st.total("parked_senders"), 1u);
    EXPECT_EQ(st.total("parked_readers"), 0u);
    EXPECT_EQ(st.total("pool_used"), 2u);
    EXPECT_EQ(read_one(r.get()).data, "m0");
    ASSERT_TRUE(writer.wait(3s));
    EXPECT_EQ(parked_senders(), 0u);
}

TEST_F(LosslessTest, WhenTheFullReaderLeavesAParkedWriteGoes) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    BackgroundWrite blocked(mount_, w.get(), "m2");
    ASSERT_TRUE(wait_parked_senders(1));
    r.reset();  // its two queued messages are discarded; no recipient is left
    ASSERT_TRUE(blocked.wait(3s)) << "the write still waits for a port nobody reads";
    EXPECT_EQ(blocked.result().n, 2);
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[1].drops, 2u);
    EXPECT_EQ(st.total("pool_used"), 0u);
}

TEST_F(LosslessTest, RemovingTheNetworkFailsAParkedWriteWithEPIPE) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    BackgroundWrite blocked(mount_, w.get(), "m2");
    ASSERT_TRUE(wait_parked_senders(1));
    ASSERT_EQ(rmdir(net_.c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(blocked.wait(3s)) << "rmdir did not end the parked write";
    EXPECT_EQ(blocked.result().n, -1);
    EXPECT_EQ(blocked.result().err, EPIPE);
    // The reader still gets what was queued, then end of file.
    EXPECT_EQ(read_one(r.get()).data, "m0");
    EXPECT_EQ(read_one(r.get()).data, "m1");
    EXPECT_EQ(read_one(r.get()).n, 0);
}

// mtu may change while ports are open; it applies from the next write on.
TEST_F(LosslessTest, MtuChangesApplyToTheNextWrite) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    fill(w.get());
    BackgroundWrite blocked(mount_, w.get(), std::string(50, 'p'));
    ASSERT_TRUE(wait_parked_senders(1));
    ASSERT_EQ(ctl(net_, "mtu 40\n"), 0);
    EXPECT_EQ(read_one(r.get()).data, "m0");
    ASSERT_TRUE(blocked.wait(3s));
    EXPECT_EQ(blocked.result().n, 50) << "a write accepted before the change was refused";
    EXPECT_EQ(read_one(r.get()).data, "m1");
    EXPECT_EQ(read_one(r.get()).data, std::string(50, 'p'));
    EXPECT_EQ(write_msg(w.get(), std::string(41, 'q')).err, EMSGSIZE);
    EXPECT_EQ(write_msg(w.get(), std::string(40, 'q')).n, 40);
    ASSERT_EQ(ctl(net_, "mtu 3000\n"), 0);
    EXPECT_EQ(write_msg(w.get(), std::string(3000, 'r')).n, 3000);
    EXPECT_EQ(read_one(r.get()).n, 40);
    EXPECT_EQ(read_one(r.get()).n, 3000);
}

// Many writers, one slow reader, small queue: nothing is lost, and each
// writer's messages arrive in the order it sent them.
TEST_F(LosslessTest, SixteenWriterProcessesToOneSlowReaderLoseNothing) {
    constexpr int kWriters = 16;
    constexpr int kPerWriter = 40;
    ASSERT_EQ(ctl(net_, "ports 20\n"), 0);
    Fd r = open_fd(port(0), O_RDONLY);
    std::vector<Fd> fds;
    std::vector<std::vector<std::string>> batches(kWriters);
    for (int w = 0; w < kWriters; ++w) {
        fds.push_back(open_fd(port(1 + w), O_WRONLY));
        for (int i = 0; i < kPerWriter; ++i) {
            batches[w].push_back("w" + std::to_string(w) + " " + std::to_string(i));
        }
    }
    std::vector<pid_t> children;
    for (int w = 0; w < kWriters; ++w) {
        children.push_back(fork_child([&, w] {
            for (const auto& m : batches[w]) {
                if (::write(fds[w].get(), m.data(), m.size()) != static_cast<ssize_t>(m.size())) {
                    return 1;
                }
            }
            return 0;
        }));
    }
    fds.clear();  // the children hold their own copies
    std::vector<int> next(kWriters, 0);
    int total = 0;
    for (; total < kWriters * kPerWriter; ++total) {
        Io io = read_one(r.get(), 5000);
        if (io.n <= 0) break;
        int w = -1, i = -1;
        ASSERT_EQ(std::sscanf(io.data.c_str(), "w%d %d", &w, &i), 2) << io.data;
        ASSERT_TRUE(w >= 0 && w < kWriters) << io.data;
        EXPECT_EQ(i, next[w]) << "writer " << w << ": message lost or out of order";
        next[w] = i + 1;
        if (total % 8 == 0) std::this_thread::sleep_for(1ms);  // a slow reader
    }
    EXPECT_EQ(total, kWriters * kPerWriter) << "messages were lost";
    for (pid_t pid : children) {
        EXPECT_EQ(exit_code_of(wait_child(pid, 10s)), 0) << "a writer process failed a write";
    }
    EXPECT_TRUE(drain(r.get()).empty());
    Stats st = stats(net_);
    EXPECT_EQ(st.total("drops"), 0u);
    EXPECT_EQ(st.rows[0].msgs_out, static_cast<std::uint64_t>(kWriters * kPerWriter));
    EXPECT_EQ(st.total("parked_senders"), 0u);
}

// Several writers, several readers that each pause at random: no reader
// misses a message, and all see one order.
TEST_F(LosslessTest, RandomlySlowReadersMissNothingAndSeeOneTotalOrder) {
    constexpr int kWriters = 4, kReaders = 3, kPerWriter = 150;
    constexpr int kTotal = kWriters * kPerWriter;
    std::vector<Fd> readers, writers;
    for (int r = 0; r < kReaders; ++r) readers.push_back(open_fd(port(1 + r), O_RDONLY));
    for (int w = 0; w < kWriters; ++w) writers.push_back(open_fd(port(10 + w), O_WRONLY));
    const unsigned seed = std::random_device{}();
    std::cout << "[ info ] random seed " << seed << "\n";
    std::vector<std::vector<std::string>> got(kReaders);
    std::vector<std::thread> threads;
    for (int r = 0; r < kReaders; ++r) {
        threads.emplace_back([&, r] {
            std::mt19937 rng(seed + r);
            std::uniform_int_distribution<int> pause_us(0, 400);
            while (static_cast<int>(got[r].size()) < kTotal) {
                Io io = read_one(readers[r].get(), 5000);
                if (io.n <= 0) return;
                got[r].push_back(io.data);
                if (rng() % 4 == 0)
                    std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
            }
        });
    }
    std::atomic<int> failed{0};
    for (int w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
            for (int i = 0; i < kPerWriter; ++i) {
                std::string m = "w" + std::to_string(w) + " " + std::to_string(i);
                if (::write(writers[w].get(), m.data(), m.size()) !=
                    static_cast<ssize_t>(m.size())) {
                    ++failed;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed.load(), 0);
    for (int r = 0; r < kReaders; ++r) {
        ASSERT_EQ(got[r].size(), static_cast<std::size_t>(kTotal))
            << "reader " << r << " lost messages";
        EXPECT_TRUE(got[r] == got[0]) << "reader " << r << " saw another order than reader 0";
    }
    std::vector<int> next(kWriters, 0);
    for (const auto& m : got[0]) {
        int w = 0, i = 0;
        ASSERT_EQ(std::sscanf(m.c_str(), "w%d %d", &w, &i), 2) << m;
        EXPECT_EQ(i, next[w]) << "writer " << w << "'s messages out of order";
        next[w] = i + 1;
    }
    EXPECT_EQ(stats(net_).total("drops"), 0u);
}

}  // namespace
}  // namespace ipnfs_it
