// Reads on an empty port: blocking, non-blocking, interruption, and the
// promise that a parked read costs the daemon no thread.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"
#include "parked_readers.hpp"

namespace ipnfs_it {
namespace {

using BlockingTest = IpnfsTest;

TEST_F(BlockingTest, NonBlockingReadOfAnEmptyPortIsEAGAIN) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY | O_NONBLOCK);
    char buf[64];
    EXPECT_EQ(read(r.get(), buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);

    // O_NONBLOCK set later with fcntl counts too.
    Fd r2 = open_fd(net + "/port2", O_RDONLY);
    ASSERT_EQ(fcntl(r2.get(), F_SETFL, O_NONBLOCK), 0);
    EXPECT_EQ(read(r2.get(), buf, sizeof buf), -1);
    EXPECT_EQ(errno, EAGAIN);
}

TEST_F(BlockingTest, BlockingReadWaitsForTheNextMessage) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    BackgroundRead reader(mount_, r.get());
    ASSERT_TRUE(reader.wait_blocked(2s)) << "read() on an empty port did not block";
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(reader.done());

    auto sent = Clock::now();
    ASSERT_EQ(write_msg(w.get(), "wake up").n, 7);
    ASSERT_TRUE(reader.wait(3s)) << "the blocked read did not get the message";
    EXPECT_EQ(reader.result().data, "wake up");
    EXPECT_LT(std::chrono::duration<double>(reader.finished_at() - sent).count(), 1.0);
}

TEST_F(BlockingTest, SignalInterruptsABlockedReadWithEINTR) {
    install_interrupting_handler(SIGUSR1);
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    {
        BackgroundRead reader(mount_, r.get());
        ASSERT_TRUE(reader.wait_blocked(2s));
        auto sent = Clock::now();
        ASSERT_EQ(pthread_kill(reader.handle(), SIGUSR1), 0);
        ASSERT_TRUE(reader.wait(3s)) << "the signal did not end the blocked read";
        EXPECT_EQ(reader.result().n, -1);
        EXPECT_EQ(reader.result().err, EINTR);
        EXPECT_LT(std::chrono::duration<double>(reader.finished_at() - sent).count(), 1.0);
    }
    // The abandoned read left nothing behind that could swallow a message.
    ASSERT_EQ(write_msg(w.get(), "after").n, 5);
    EXPECT_EQ(read_one(r.get()).data, "after");
    EXPECT_EQ(stats(net).rows[1].msgs_out, 1u);
}

// An interrupt and a message racing for the same parked read: the read ends
// either with the message or with EINTR, and then the message is still
// queued.  Every message arrives exactly once.
TEST_F(BlockingTest, InterruptsRacingWithMessagesNeverLoseOrDuplicateOne) {
    install_interrupting_handler(SIGUSR1);
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    constexpr int kRounds = 60;
    int interrupted = 0;
    for (int i = 0; i < kRounds; ++i) {
        SCOPED_TRACE("round " + std::to_string(i));
        const std::string msg = "m" + std::to_string(i);
        std::string got;
        {
            BackgroundRead reader(mount_, r.get());
            if (i % 3 == 0) reader.wait_blocked(2s);  // else: race the parking too
            std::thread sender([&] { write_msg(w.get(), msg); });
            pthread_kill(reader.handle(), SIGUSR1);
            sender.join();
            ASSERT_TRUE(reader.wait(3s)) << "read() neither interrupted nor given the message";
            if (reader.result().n > 0) {
                got = reader.result().data;
            } else {
                ASSERT_EQ(reader.result().err, EINTR);
                ++interrupted;
                got = read_one(r.get(), 2000).data;
            }
        }
        EXPECT_EQ(got, msg);
    }
    EXPECT_TRUE(read_one(r.get(), 200).timed_out()) << "a message came twice";
    Stats st = stats(net);
    EXPECT_EQ(st.rows[1].msgs_out, static_cast<std::uint64_t>(kRounds));
    EXPECT_EQ(st.total("drops"), 0u);
    std::cout << "[ info ] " << interrupted << " of " << kRounds << " reads ended with EINTR\n";
}

TEST_F(BlockingTest, SigkillEndsAProcessBlockedInReadPromptly) {
    std::string net = make_net("lan");
    std::string port = net + "/port1";
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        int fd = open(port.c_str(), O_RDONLY);
        char buf[16];
        _exit(fd >= 0 && read(fd, buf, sizeof buf) >= 0 ? 0 : 1);
    }
    // Wait until it is asleep in read() on the port.
    auto deadline = Clock::now() + 5s;
    bool asleep = false;
    while (!asleep && Clock::now() < deadline) {
        std::ifstream in("/proc/" + std::to_string(child) + "/stat");
        std::string stat;
        std::getline(in, stat);
        auto paren = stat.rfind(')');
        asleep = stats(net).total("connected") == 1 && paren != std::string::npos &&
                 paren + 2 < stat.size() && stat[paren + 2] == 'S';
        if (!asleep) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(asleep);
    std::this_thread::sleep_for(100ms);
    auto killed = Clock::now();
    ::kill(child, SIGKILL);
    int st = 0;
    bool reaped = false;
    while (!(reaped = waitpid(child, &st, WNOHANG) == child) && seconds_since(killed) < 5) {
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_TRUE(reaped) << "a SIGKILLed reader stayed stuck in read()";
    EXPECT_LT(seconds_since(killed), 2.0);
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    EXPECT_EQ(stats(net).total("connected"), 0u) << "the dead reader's port is still open";
}

TEST_F(BlockingTest, ReaderAndWriterThreadsShareOneDescriptorWithoutBlocking) {
    std::string net = make_net("lan");
    Fd shared = open_fd(net + "/port1", O_RDWR);
    Fd other = open_fd(net + "/port2", O_RDWR);
    BackgroundRead reader(mount_, shared.get());
    ASSERT_TRUE(reader.wait_blocked(2s));

    // A write through the descriptor a thread is blocked reading.
    auto write = std::async(std::launch::async, [&] { return write_msg(shared.get(), "out"); });
    bool wrote_in_time = write.wait_for(2s) == std::future_status::ready;
    EXPECT_TRUE(wrote_in_time) << "write() waited for the read() on the same descriptor";
    if (!wrote_in_time) {
        write_msg(other.get(), "unblock");  // ends the read, which frees the write
    }
    EXPECT_EQ(write.get().n, 3);
    EXPECT_EQ(read_one(other.get()).data, "out");

    if (wrote_in_time) {
        EXPECT_FALSE(reader.done()) << "the reader should still be waiting (no loopback)";
        ASSERT_EQ(write_msg(other.get(), "in").n, 2);
        ASSERT_TRUE(reader.wait(3s));
        EXPECT_EQ(reader.result().data, "in");
    }
    reader.wait(3s);
}

TEST_F(BlockingTest, ThousandParkedReadersUseFewDaemonThreadsAndAllWakeOnOneMessage) {
    constexpr int kReaders = 1000;
    constexpr int kMaxDaemonThreads = 40;
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "ports " + std::to_string(kReaders + 1) + "\n"), 0);
    std::vector<Fd> fds;
    for (int i = 1; i <= kReaders; ++i) {
        fds.push_back(open_fd(net + "/port" + std::to_string(i), O_RDONLY));
        ASSERT_TRUE(fds.back().ok());
    }
    Fd w = open_fd(net + "/port0", O_WRONLY);
    int threads_before = thread_count(mount_.pid());

    ParkedReaders readers;
    for (const Fd& fd : fds) ASSERT_TRUE(readers.start(fd.get()));
    // Wait until every reader sleeps in read(), watching the daemon's threads.
    int max_daemon_threads = threads_before;
    int blocked = 0;
    for (auto deadline = Clock::now() + 15s; Clock::now() < deadline && blocked < kReaders;) {
        blocked = readers.wait_blocked(20ms);
        max_daemon_threads = std::max(max_daemon_threads, thread_count(mount_.pid()));
    }
    EXPECT_EQ(blocked, kReaders) << "not every reader blocked in read()";
    std::this_thread::sleep_for(300ms);
    max_daemon_threads = std::max(max_daemon_threads, thread_count(mount_.pid()));
    EXPECT_LT(max_daemon_threads, kMaxDaemonThreads)
        << "the daemon grew to " << max_daemon_threads << " threads for " << kReaders
        << " parked reads (it had " << threads_before << ")";
    std::cout << "[ info ] daemon threads: " << threads_before << " before, at most "
              << max_daemon_threads << " with " << kReaders << " parked reads\n";
    EXPECT_EQ(readers.done(), 0);

    // One broadcast wakes them all.
    ASSERT_EQ(write_msg(w.get(), "wake").n, 4);
    int woken = readers.wait_done(10s);
    EXPECT_EQ(woken, kReaders) << "one message did not wake every parked reader";
    if (woken != kReaders) mount_.kill_daemon();  // unblocks the rest so they can be joined
    readers.join();
    int right = 0;
    for (std::size_t i = 0; i < readers.size(); ++i) {
        right += (readers[i].n == 4 && std::string(readers[i].buf, 4) == "wake") ? 1 : 0;
    }
    EXPECT_EQ(right, kReaders) << "some readers got something else than the message";
}

}  // namespace
}  // namespace ipnfs_it
