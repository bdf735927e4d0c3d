// FUSE over io_uring (-o uring, fs/uring_transport.cpp) on a real mount:
// requests and replies go through the ring, parked requests grow its entries
// (10,000 parked readers), the bound refuses parking instead of stalling the
// mount, a killed reader does not hang, and without the kernel's consent the
// daemon says why it uses /dev/fuse.  Each test sets the fuse module's
// enable_uring as it needs and puts back what it found.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"
#include "parked_readers.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

const char* const kParam = "/sys/module/fuse/parameters/enable_uring";

// Sets enable_uring for the life of the object, then restores it.
class UringParam {
  public:
    explicit UringParam(bool on) {
        std::ifstream in(kParam);
        if (!in) return;
        in >> saved_;
        ok_ = write(on ? "Y" : "N");
    }
    ~UringParam() {
        if (!saved_.empty()) write(saved_);
    }
    UringParam(const UringParam&) = delete;
    UringParam& operator=(const UringParam&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }

  private:
    static bool write(const std::string& v) {
        std::ofstream out(kParam);
        out << v;
        out.flush();
        return static_cast<bool>(out);
    }
    std::string saved_;
    bool ok_ = false;
};

// The count of requests the daemon's last line says went through the ring.
long ring_requests(const std::string& log) {
    std::smatch m;
    static const std::regex re(R"((\d+) requests through the ring, at most (\d+) entries)");
    if (!std::regex_search(log, m, re)) return -1;
    return std::stol(m[1]);
}

long ring_most_entries(const std::string& log) {
    std::smatch m;
    static const std::regex re(R"(requests through the ring, at most (\d+) entries)");
    if (!std::regex_search(log, m, re)) return -1;
    return std::stol(m[1]);
}

class UringTest : public IpnfsTest {
  protected:
    void SetUp() override {
        param_ = std::make_unique<UringParam>(param_on());
        if (!param_->ok()) {
            IPNFS_SKIP_OR_FAIL(std::string("cannot set ") + kParam +
                               " (a kernel without CONFIG_FUSE_IO_URING, or not root)");
        }
        IpnfsTest::SetUp();
    }
    void TearDown() override {
        IpnfsTest::TearDown();
        param_.reset();
    }
    [[nodiscard]] virtual bool param_on() const { return true; }
    std::vector<std::string> mount_options() const override { return {"uring=on"}; }

    // Unmounts and returns the daemon's log, which then holds its last lines.
    std::string log_after_stop() {
        mount_.stop();
        return mount_.log();
    }

    std::unique_ptr<UringParam> param_;
};

void on_signal(int /*sig*/) {}

TEST_F(UringTest, RequestsAndRepliesGoThroughTheRing) {
    std::string net = make_net("n");
    Fd a = open_fd(net + "/port0", O_RDWR);
    Fd b = open_fd(net + "/port1", O_RDWR);
    ASSERT_TRUE(a.ok() && b.ok());
    // Answered at once.
    ASSERT_EQ(write_msg(a.get(), "hello").n, 5);
    Io got = read_one(b.get());
    EXPECT_EQ(got.data, "hello");
    // Parked, then answered from the sender's thread.
    BackgroundCall parked(mount_, [&] {
        Io io;
        char buf[64];
        io.n = ::read(b.get(), buf, sizeof buf);
        if (io.n > 0) io.data.assign(buf, static_cast<std::size_t>(io.n));
        io.err = io.n < 0 ? errno : 0;
        return io;
    });
    ASSERT_TRUE(parked.wait_blocked(2s));
    ASSERT_EQ(write_msg(a.get(), "later").n, 5);
    ASSERT_TRUE(parked.wait(2s));
    EXPECT_EQ(parked.result().data, "later");
    // A parked read and its interrupt (through /dev/fuse, or the re-check).
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: read() returns EINTR
    ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
    BackgroundCall interrupted(mount_, [&] {
        Io io;
        char buf[64];
        io.n = ::read(b.get(), buf, sizeof buf);
        io.err = io.n < 0 ? errno : 0;
        return io;
    });
    ASSERT_TRUE(interrupted.wait_blocked(2s));
    pthread_kill(interrupted.handle(), SIGUSR1);
    ASSERT_TRUE(interrupted.wait(5s)) << "a signalled read stayed parked";
    EXPECT_EQ(interrupted.result().err, EINTR);
    // The interrupted read swallowed nothing.
    ASSERT_EQ(write_msg(a.get(), "after").n, 5);
    EXPECT_EQ(read_one(b.get()).data, "after");
    // Directory listing, stat, ctl text: other requests too.
    EXPECT_NE(slurp(net + "/ctl").find("policy"), std::string::npos);
    struct stat st {};
    EXPECT_EQ(::stat((net + "/port3").c_str(), &st), 0);
    a.reset();
    b.reset();
    std::string log = log_after_stop();
    EXPECT_NE(log.find("io_uring transport: "), std::string::npos) << log;
    EXPECT_GT(ring_requests(log), 10) << log;
}

// Readers killed while parked: the kernel may lose the interrupt of a fatal
// signal that comes as the request goes to its ring entry (6.18's
// dev_uring.c), and the reader would then wait, unkillable, for an answer.
// The daemon's re-check finds the pending signal and answers.
TEST_F(UringTest, KilledReadersEndAndSwallowNothing) {
    std::string net = make_net("n");
    constexpr int kRounds = 30;
    for (int round = 0; round < kRounds; ++round) {
        pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            int fd = ::open((net + "/port1").c_str(), O_RDONLY);
            char buf[64];
            (void)!::read(fd, buf, sizeof buf);
            _exit(0);
        }
        // Kill at varied moments, some before the read is sent, some after.
        std::this_thread::sleep_for(std::chrono::microseconds(round * 300));
        ::kill(child, SIGKILL);
        int status = 0;
        pid_t r = 0;
        auto deadline = Clock::now() + 5s;
        while ((r = ::waitpid(child, &status, WNOHANG)) == 0 && Clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
        ASSERT_EQ(r, child) << "round " << round << ": a killed reader did not end in 5 s";
    }
    Fd a = open_fd(net + "/port0", O_RDWR);
    Fd b = open_fd(net + "/port1", O_RDONLY);
    ASSERT_EQ(write_msg(a.get(), "kept").n, 4);
    EXPECT_EQ(read_one(b.get()).data, "kept") << "a killed reader's read took the message";
    a.reset();
    b.reset();
    // How many of the kills the kernel lost, and the re-check made up for.
    std::string log = log_after_stop();
    std::smatch m;
    static const std::regex re(R"((\d+) requests interrupted by the re-check)");
    ASSERT_TRUE(std::regex_search(log, m, re)) << log;
    std::cout << "[ info ] " << kRounds << " readers killed, " << m[1]
              << " of them ended by the daemon's re-check (the kernel lost their interrupt)\n";
}

class UringLoadTest : public UringTest {};

TEST_F(UringLoadTest, TenThousandParkedReadersGrowTheEntries) {
    constexpr int kReaders = 10000;
    constexpr int kPorts = 32;
    std::string net = make_net("n");
    std::vector<Fd> ports;
    for (int p = 0; p < kPorts; ++p) {
        ports.push_back(open_fd(net + "/port" + std::to_string(p), O_RDWR));
        ASSERT_TRUE(ports.back().ok());
    }
    ParkedReaders readers;
    for (int i = 0; i < kReaders; ++i) ASSERT_TRUE(readers.start(ports[i % kPorts].get())) << i;
    int blocked = 0;
    for (auto deadline = Clock::now() + 60s; Clock::now() < deadline && blocked < kReaders;)
        blocked = readers.wait_blocked(100ms);
    ASSERT_EQ(blocked, kReaders) << "not every reader blocked in read()";
    // Blocked may still mean queued in the kernel, waiting for an entry: the
    // daemon parks them all once the queues have grown.
    EXPECT_TRUE(eventually(
        [&] { return stats(net).total("parked_readers") == std::uint64_t{kReaders}; }, 30s))
        << stats(net).total("parked_readers") << " parked";
    // Port 0 reaches the other 31 ports: one reader of each takes it.
    ASSERT_EQ(write_msg(ports[0].get(), "ping").n, 4);
    EXPECT_TRUE(eventually([&] { return readers.done() >= kPorts - 1; }, 5s));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(readers.done(), kPorts - 1);
    // Removing the network ends every parked read with end of file.
    EXPECT_EQ(::rmdir(net.c_str()), 0);
    int ended = readers.wait_done(60s);
    EXPECT_EQ(ended, kReaders);
    if (ended != kReaders) mount_.kill_daemon();
    readers.join();
    int refused = 0;
    for (std::size_t i = 0; i < readers.size(); ++i)
        if (readers[i].n < 0) ++refused;
    EXPECT_EQ(refused, 0) << "reads refused under the default bound";
    ports.clear();
    std::string log = log_after_stop();
    std::cout << "[ info ] ring entries at most " << ring_most_entries(log) << " for " << kReaders
              << " parked reads\n";
    EXPECT_GE(ring_most_entries(log), kReaders) << log;
}

class UringBoundTest : public UringTest {
  protected:
    std::vector<std::string> mount_options() const override {
        return {"uring=on", "uring_entries=64"};
    }
};

// 64 entries, 32 a CPU: reads past what a queue may park fail with ENOBUFS
// at once, and the mount stays usable for everyone.
TEST_F(UringBoundTest, ReadsPastTheBoundFailAndTheMountStaysUsable) {
    constexpr int kReaders = 200;
    std::string net = make_net("n");
    Fd a = open_fd(net + "/port0", O_RDWR);
    Fd b = open_fd(net + "/port1", O_RDWR);
    ParkedReaders readers;
    for (int i = 0; i < kReaders; ++i) ASSERT_TRUE(readers.start(b.get()));
    // Each reader either parks or is refused.
    ASSERT_TRUE(
        eventually([&] { return readers.wait_blocked(10ms) + readers.done() >= kReaders; }, 10s));
    int refused = readers.done();
    EXPECT_GT(refused, 0) << "200 parked reads fit in 64 entries?";
    EXPECT_LE(kReaders - refused, 64);
    for (std::size_t i = 0; i < readers.size(); ++i) {
        if (readers[i].done) {
            EXPECT_EQ(readers[i].err, ENOBUFS) << i;
        }
    }
    // Others' requests still go through, parked readers still get messages.
    auto t0 = Clock::now();
    struct stat st {};
    EXPECT_EQ(::stat((net + "/port2").c_str(), &st), 0);
    EXPECT_NE(slurp(net + "/stats").size(), 0U);
    ASSERT_EQ(write_msg(a.get(), "x").n, 1);
    EXPECT_TRUE(eventually([&] { return readers.done() == refused + 1; }, 2s));
    EXPECT_LT(seconds_since(t0), 2.0);
    EXPECT_EQ(::rmdir(net.c_str()), 0);
    EXPECT_EQ(readers.wait_done(10s), kReaders);
    readers.join();
}

class UringShareTest : public UringTest {
  protected:
    std::vector<std::string> mount_options() const override {
        return {"uring=on", "uring_entries=64", "allow_other"};
    }
};

// 32 entries a CPU, 28 of them for parking: a non-root user parks at most
// 14 a CPU, and root's reads still park after that user tried 40.
TEST_F(UringShareTest, OneUserCannotTakeTheEntriesOthersNeedToPark) {
    std::string net = make_net("n", 0777);
    ASSERT_EQ(::chmod((net + "/port1").c_str(), 0666), 0);
    const std::string port = net + "/port1";
    int rc = as_user(kNobody, kNogroup, [&] {
        for (int i = 0; i < 40; ++i) {
            pid_t c = fork();
            if (c < 0) return 1;
            if (c == 0) {
                int fd = ::open(port.c_str(), O_RDONLY);
                char buf[64];
                (void)!::read(fd, buf, sizeof buf);
                _exit(0);
            }
        }
        return 0;
    });
    ASSERT_EQ(rc, 0);
    // Each of nobody's readers either parked or was refused at once.
    std::uint64_t parked = 0;
    eventually(
        [&] {
            std::uint64_t now = stats(net).total("parked_readers");
            bool steady = now == parked && now > 0;
            parked = now;
            return steady;
        },
        3s);
    std::cout << "[ info ] nobody parked " << parked << " of 40 reads\n";
    EXPECT_GE(parked, 1U);
    EXPECT_LE(parked, 28U) << "one user parked more than half of each queue";
    Fd r = open_fd(port, O_RDONLY);
    ParkedReaders root;
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(root.start(r.get()));
    EXPECT_EQ(root.wait_blocked(3s), 10) << "root's reads were refused after nobody's";
    EXPECT_EQ(root.done(), 0);
    EXPECT_EQ(::rmdir(net.c_str()), 0);
    EXPECT_EQ(root.wait_done(10s), 10);
    root.join();
}

class UringOffTest : public UringTest {
  protected:
    [[nodiscard]] bool param_on() const override { return false; }
    void SetUp() override {
        param_ = std::make_unique<UringParam>(false);
        if (!param_->ok()) IPNFS_SKIP_OR_FAIL(std::string("cannot set ") + kParam);
        // No mount here: each test starts its own.
    }
    void TearDown() override {
        mount_.cleanup();
        param_.reset();
    }
};

TEST_F(UringOffTest, OnRefusesToMountWhenTheModuleParameterIsOff) {
    std::string why;
    EXPECT_FALSE(mount_.start({"uring=on"}, why));
    EXPECT_NE(why.find("enable_uring is off"), std::string::npos) << why;
}

TEST_F(UringOffTest, AutoFallsBackToDevFuseAndSaysWhy) {
    std::string why;
    ASSERT_TRUE(mount_.start({"uring=auto"}, why)) << why;
    ASSERT_EQ(::mkdir(mount_.path("n").c_str(), 0755), 0);
    Fd a = open_fd(mount_.path("n/port0"), O_RDWR);
    Fd b = open_fd(mount_.path("n/port1"), O_RDWR);
    ASSERT_EQ(write_msg(a.get(), "x").n, 1);
    EXPECT_EQ(read_one(b.get()).data, "x");
    a.reset();
    b.reset();
    mount_.stop();
    std::string log = mount_.log();
    EXPECT_NE(log.find("requests go through /dev/fuse: the fuse module's parameter enable_uring "
                       "is off"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("requests through the ring"), std::string::npos) << log;
}

}  // namespace
}  // namespace ipnfs_it
