// Faults on a real mount, as issue 8 lists them: clients SIGKILLed at random
// during lossless traffic, the daemon stopped (SIGTERM, SIGINT) or killed
// (SIGKILL with auto_unmount) under parked reads and writes, and a network
// removed, shrunk, re-configured or losing a TAP while traffic flows.  Every
// test that ends the daemon cleanly checks its exit and its output for
// sanitizer reports (LeakSanitizer runs at exit in the ASan build).
#include <fcntl.h>
#include <ipnfs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ether.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

// A mounted daemon that must end cleanly: after each test (unless it killed
// the daemon on purpose) it is unmounted and its exit and output checked.
class FaultTest : public IpnfsTest {
  protected:
    void TearDown() override {
        if (!IsSkipped() && !daemon_killed_) stop_cleanly(mount_);
        IpnfsTest::TearDown();
    }
    std::uint64_t parked_senders(const std::string& net) {
        return stats(net).total("parked_senders");
    }

    bool daemon_killed_ = false;
};

// ---- Kill storm ----

// What a storm sender writes (one plain write per message) and what a
// surviving reader logs of each framed record it reads.
struct StormMessage {
    std::uint32_t sender;  // unique per process, never reused
    std::uint32_t n;       // 0, 1, 2, ... per sender; for the end mark: how many came before
    std::uint32_t end;     // 1: the sender's last message (it stops after the storm)
    std::uint32_t pad;
};
struct Seen {
    StormMessage msg;
    std::uint64_t seq;  // the record's place in the network's total order
    bool operator==(const Seen& o) const {
        return msg.sender == o.msg.sender && msg.n == o.msg.n && msg.end == o.msg.end &&
               seq == o.seq;
    }
};

// Shared with the children (MAP_SHARED), so they need no pipe to be told.
struct StormControl {
    std::atomic<int> stop{0};
};

// Kills (SIGKILL) and reaps every child still listed, whatever happened.
class Children {
  public:
    ~Children() {
        for (pid_t pid : pids_) kill_and_reap(pid);
    }
    void add(pid_t pid) {
        if (pid > 0) pids_.push_back(pid);
    }
    void forget(pid_t pid) { std::erase(pids_, pid); }
    static void kill_and_reap(pid_t pid) {
        ::kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
    }

  private:
    std::vector<pid_t> pids_;
};

// The body of a sender child: writes numbered messages until killed or, if
// it `obeys_stop`, until told to stop, then writes its end mark.  Syscalls
// only: the test process has threads.
int storm_sender(const std::string& port, std::uint32_t id, const StormControl* control,
                 bool obeys_stop) {
    int fd = ::open(port.c_str(), O_WRONLY);
    if (fd < 0) return 10;
    StormMessage m{id, 0, 0, 0};
    for (;;) {
        if (obeys_stop && control->stop.load() != 0) {
            m.end = 1;
            return ::write(fd, &m, sizeof m) == sizeof m ? 0 : 12;
        }
        if (::write(fd, &m, sizeof m) != sizeof m) return 11;
        ++m.n;
    }
}

// The body of a reader child: framed reads, so each message comes with its
// network sequence number.  A surviving reader logs every data record to
// `log` and ends once it has seen `ends` end marks; a churning reader logs
// nothing and reads until it is killed.
int storm_reader(const std::string& port, const std::string& log, int ends) {
    int fd = ::open(port.c_str(), O_RDONLY);
    if (fd < 0) return 20;
    int one = 1;
    if (::ioctl(fd, IPNFS_IOC_SET_FRAMED, &one) != 0) return 21;
    int out = log.empty() ? -1 : ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!log.empty() && out < 0) return 22;
    alignas(8) static char buf[65536];
    static Seen pending[4096];
    std::size_t used = 0;
    auto flush = [&] {
        auto bytes = static_cast<ssize_t>(used * sizeof(Seen));
        bool ok = used == 0 || ::write(out, pending, static_cast<std::size_t>(bytes)) == bytes;
        used = 0;
        return ok;
    };
    int seen_ends = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return 23;  // a survivor never sees end of file or an error
        std::size_t off = 0;
        while (off + sizeof(ipnfs_record) <= static_cast<std::size_t>(n)) {
            ipnfs_record h{};
            std::memcpy(&h, buf + off, sizeof h);
            if (h.kind == IPNFS_DATA && h.len == sizeof(StormMessage) && out >= 0) {
                Seen& s = pending[used++];
                std::memcpy(&s.msg, buf + off + sizeof h, sizeof s.msg);
                s.seq = h.seq;
                if (s.msg.end != 0) ++seen_ends;
                if (used == std::size(pending) && !flush()) return 24;
            }
            off += IPNFS_RECORD_SIZE(h.len);
        }
        if (out >= 0 && seen_ends == ends) return flush() ? 0 : 24;
    }
}

std::vector<Seen> read_log(const std::string& path) {
    std::string bytes = read_whole(path);
    std::vector<Seen> seen(bytes.size() / sizeof(Seen));
    std::memcpy(seen.data(), bytes.data(), seen.size() * sizeof(Seen));
    return seen;
}

// What a surviving reader's log must show: seq rising (one total order);
// each sender's messages 0, 1, 2, ... with no gap (a killed sender's up to
// where it died); each surviving sender's end mark after exactly its
// messages.  The number of data messages, or -1 after a failure.
long check_survivor_log(const std::vector<Seen>& log, const std::vector<std::uint32_t>& survivors) {
    std::vector<long> next;  // by sender id: the n expected next
    std::vector<bool> ended;
    long data = 0;
    for (std::size_t i = 0; i < log.size(); ++i) {
        const Seen& s = log[i];
        if (i > 0 && s.seq <= log[i - 1].seq) {
            ADD_FAILURE() << "seq " << s.seq << " after " << log[i - 1].seq << " at record " << i;
            return -1;
        }
        if (s.msg.sender >= next.size()) {
            next.resize(s.msg.sender + 1, 0);
            ended.resize(s.msg.sender + 1, false);
        }
        if (ended[s.msg.sender]) {
            ADD_FAILURE() << "sender " << s.msg.sender << " has a message after its end mark";
            return -1;
        }
        if (s.msg.n != next[s.msg.sender]) {
            ADD_FAILURE() << "sender " << s.msg.sender << ": message " << s.msg.n << " where "
                          << next[s.msg.sender] << " was due (record " << i << ")";
            return -1;
        }
        if (s.msg.end != 0) {
            ended[s.msg.sender] = true;
        } else {
            ++next[s.msg.sender];
            ++data;
        }
    }
    for (std::uint32_t id : survivors) {
        if (id >= ended.size() || !ended[id]) {
            ADD_FAILURE() << "no end mark from surviving sender " << id;
            return -1;
        }
    }
    return data;
}

// How many SIGKILLs the storm deals: IPNFS_FAULT_KILLS, else 250.
int storm_kills() {
    const char* env = std::getenv("IPNFS_FAULT_KILLS");
    int n = env != nullptr ? std::atoi(env) : 0;
    return n > 0 ? n : 250;
}

// N senders and M readers on a lossless network, of which the test SIGKILLs
// random ones at random moments and starts replacements; two senders and two
// readers (the survivors) live through it.  Then the survivors stop: the
// senders must finish, the readers must have got every message of every
// sender, in order, in one order, and the network must hold nothing.
TEST_F(FaultTest, AKillStormOnALosslessNetworkLosesNothingForTheSurvivors) {
    constexpr int kSurvivingSenders = 2;
    constexpr int kSurvivingReaders = 2;
    constexpr int kChurnSenders = 4;
    constexpr int kChurnReaders = 4;
    const int kills_wanted = storm_kills();
    std::string net = make_net("storm");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 16\n"), 0) << last_error_line(ctl_text(net));
    auto port = [&](int n) { return net + "/port" + std::to_string(n); };
    // Surviving readers on ports 1-2, churning readers on 3-6; surviving
    // senders on 10-11, churning ones on 12-15 (a replacement takes its
    // predecessor's port, which may still be closing: then they share it).
    void* page = mmap(nullptr, sizeof(StormControl), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page, MAP_FAILED) << std::strerror(errno);
    auto* control = new (page) StormControl;
    std::shared_ptr<void> unmap(page, [](void* p) { munmap(p, sizeof(StormControl)); });

    Children children;
    std::uint32_t next_id = 0;
    std::vector<std::string> logs;
    std::vector<pid_t> survivor_readers;
    std::vector<pid_t> survivor_senders;
    std::vector<std::uint32_t> survivor_ids;
    for (int r = 0; r < kSurvivingReaders; ++r) {
        logs.push_back(scratch() + "/reader" + std::to_string(r));
        const std::string path = port(1 + r);
        const std::string log = logs.back();
        pid_t pid = fork_child([&] { return storm_reader(path, log, kSurvivingSenders); });
        children.add(pid);
        survivor_readers.push_back(pid);
    }
    // Every survivor reads from the first message on, so both see them all.
    ASSERT_TRUE(eventually(
        [&] {
            Stats st = stats(net);
            return st.rows[1].readers == 1 && st.rows[2].readers == 1;
        },
        5s))
        << "the surviving readers did not open their ports";

    std::vector<pid_t> churn(kChurnSenders + kChurnReaders);
    auto start_churn = [&](std::size_t slot) {
        if (slot < kChurnSenders) {
            const std::string path = port(12 + static_cast<int>(slot));
            const std::uint32_t id = next_id++;
            churn[slot] = fork_child([&] { return storm_sender(path, id, control, false); });
        } else {
            const std::string path = port(3 + static_cast<int>(slot - kChurnSenders));
            churn[slot] = fork_child([&] { return storm_reader(path, "", 0); });
        }
        children.add(churn[slot]);
    };
    for (std::size_t slot = 0; slot < churn.size(); ++slot) start_churn(slot);
    for (int s = 0; s < kSurvivingSenders; ++s) {
        const std::string path = port(10 + s);
        const std::uint32_t id = next_id++;
        pid_t pid = fork_child([&] { return storm_sender(path, id, control, true); });
        children.add(pid);
        survivor_senders.push_back(pid);
        survivor_ids.push_back(id);
    }

    const unsigned seed = std::random_device{}();
    std::cout << "[ info ] random seed " << seed << "\n";
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> pause_ms(0, 150);
    std::uniform_int_distribution<std::size_t> pick(0, churn.size() - 1);
    const auto t0 = Clock::now();
    int kills = 0;
    int sender_kills = 0;
    while (kills < kills_wanted && !HasFailure()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
        const std::size_t slot = pick(rng);
        const pid_t victim = churn[slot];
        ::kill(victim, SIGKILL);
        std::optional<int> st = wait_child(victim, 5s);
        children.forget(victim);
        ASSERT_TRUE(st.has_value()) << "a SIGKILLed client did not die within 5 s";
        // A child that ended on its own before the kill found a fault.
        ASSERT_TRUE(WIFSIGNALED(*st)) << "a churning client ended with exit code "
                                      << exit_code_of(st) << " before it was killed";
        ++kills;
        if (slot < kChurnSenders) ++sender_kills;
        start_churn(slot);
    }
    const double storm_s = seconds_since(t0);

    // The churning senders go first, so nothing new arrives after the end marks.
    for (std::size_t slot = 0; slot < kChurnSenders; ++slot) {
        Children::kill_and_reap(churn[slot]);
        children.forget(churn[slot]);
    }
    control->stop.store(1);
    for (pid_t pid : survivor_senders) {
        std::optional<int> st = wait_child(pid, 10s);
        children.forget(pid);
        EXPECT_EQ(exit_code_of(st), 0) << "a surviving sender did not finish (waits forever?)";
    }
    for (pid_t pid : survivor_readers) {
        std::optional<int> st = wait_child(pid, 10s);
        children.forget(pid);
        EXPECT_EQ(exit_code_of(st), 0) << "a surviving reader did not get every end mark";
    }
    for (std::size_t slot = kChurnSenders; slot < churn.size(); ++slot) {
        Children::kill_and_reap(churn[slot]);
        children.forget(churn[slot]);
    }
    const double total_s = seconds_since(t0);
    if (HasFailure()) return;

    std::vector<Seen> first = read_log(logs[0]);
    long messages = check_survivor_log(first, survivor_ids);
    for (std::size_t r = 1; r < logs.size(); ++r) {
        std::vector<Seen> other = read_log(logs[r]);
        EXPECT_TRUE(other == first)
            << "surviving reader " << r << " got " << other.size() << " records, reader 0 "
            << first.size() << ": not the same messages in the same order";
    }
    EXPECT_TRUE(eventually(
        [&] {
            Stats st = stats(net);
            return st.total("pool_used") == 0 && st.total("parked_senders") == 0 &&
                   st.total("connected") == 0;
        },
        3s))
        << "the network still holds messages or senders after every client ended:\n"
        << slurp(net + "/stats");
    std::cout << "[ info ] " << kills << " kills (" << sender_kills << " senders, "
              << kills - sender_kills << " readers) in " << storm_s << " s; " << messages
              << " messages (from " << next_id << " senders) reached each surviving reader; "
              << total_s << " s in all\n";
    EXPECT_GE(kills, kills_wanted);
    EXPECT_GT(messages, 0);
}

// ---- The daemon stopped or killed under parked requests ----

class DaemonSignalTest : public FaultTest, public ::testing::WithParamInterface<int> {};

// Three reads parked on empty ports and three lossless writes parked behind
// a full one: a stop signal ends each promptly (end of file, EPIPE), then
// the daemon exits 0 and the mount is gone.
TEST_P(DaemonSignalTest, ParkedReadsAndWritesEndPromptlyAndTheMountGoes) {
    const int sig = GetParam();
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 1\n"), 0) << last_error_line(ctl_text(net));
    auto port = [&](int n) { return net + "/port" + std::to_string(n); };
    Fd full = open_fd(port(1), O_RDONLY);  // never reads: one message fills it
    constexpr int kEach = 3;
    std::vector<Fd> readers;
    std::vector<Fd> writers;
    readers.reserve(kEach);
    writers.reserve(kEach);
    for (int i = 0; i < kEach; ++i) readers.push_back(open_fd(port(2 + i), O_RDONLY));
    for (int i = 0; i < kEach; ++i) writers.push_back(open_fd(port(5 + i), O_WRONLY));
    Fd filler = open_fd(port(8), O_WRONLY);
    ASSERT_EQ(write_msg(filler.get(), "fill").n, 4);
    for (auto& r : readers) ASSERT_EQ(read_one(r.get()).data, "fill");

    std::vector<std::unique_ptr<BackgroundCall>> reads;
    std::vector<std::unique_ptr<BackgroundCall>> writes;
    for (auto& r : readers) {
        reads.push_back(std::make_unique<BackgroundRead>(mount_, r.get()));
        ASSERT_TRUE(reads.back()->wait_blocked(2s)) << "a read did not park";
    }
    for (auto& w : writers) {
        writes.push_back(std::make_unique<BackgroundWrite>(mount_, w.get(), "never"));
        ASSERT_TRUE(writes.back()->wait_blocked(2s)) << "a lossless write did not park";
    }
    ASSERT_TRUE(eventually([&] { return parked_senders(net) == kEach; }, 3s));
    ASSERT_EQ(stats(net).total("parked_readers"), static_cast<std::uint64_t>(kEach));

    const auto sent = Clock::now();
    mount_.signal(sig);
    for (auto& r : reads) {
        ASSERT_TRUE(r->wait(2s)) << "a parked read still blocks 2 s after the signal";
        EXPECT_EQ(r->result().n, 0)
            << "a parked read ended with errno " << r->result().err << ", not end of file";
    }
    for (auto& w : writes) {
        ASSERT_TRUE(w->wait(2s)) << "a parked write still blocks 2 s after the signal";
        EXPECT_EQ(w->result().n, -1);
        EXPECT_EQ(w->result().err, EPIPE) << std::strerror(w->result().err);
    }
    EXPECT_LT(seconds_since(sent), 2.0);
    std::optional<int> status = mount_.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << "the daemon did not exit after signal " << sig;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
    EXPECT_FALSE(mount_.mounted());
}

INSTANTIATE_TEST_SUITE_P(StopSignals, DaemonSignalTest, ::testing::Values(SIGTERM, SIGINT),
                         [](const auto& info) {
                             return info.param == SIGTERM ? "SIGTERM" : "SIGINT";
                         });

class AutoUnmountTest : public FaultTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"auto_unmount"};
    }
};

// SIGKILL leaves no daemon to unmount: fusermount3's auto_unmount helper
// does, so the mount point is a plain directory again, not ENOTCONN.
TEST_F(AutoUnmountTest, SigkillOfTheDaemonLeavesTheMountPointUsable) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    {
        BackgroundRead parked(mount_, r.get());
        ASSERT_TRUE(parked.wait_blocked(2s));
        const auto killed = Clock::now();
        daemon_killed_ = true;
        mount_.kill_daemon();
        ASSERT_TRUE(parked.wait(2s)) << "a parked read outlived the daemon by 2 s";
        EXPECT_EQ(parked.result().n, -1) << "a read on a dead daemon's mount succeeded";
        EXPECT_TRUE(eventually([&] { return !mount_.mounted(); }, 3s))
            << "still a fuse.ipnfs mount 3 s after SIGKILL with auto_unmount";
        std::cout << "[ info ] unmounted " << seconds_since(killed) << " s after SIGKILL\n";
    }
    r.reset();
    struct stat st {};
    ASSERT_EQ(stat(mount_.dir().c_str(), &st), 0) << std::strerror(errno);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    Shell ls = run_argv({"ls", "-la", mount_.dir()}, 5);
    EXPECT_EQ(ls.exit_code(), 0) << ls.err;
}

// ---- Changes while traffic flows ----

// Client loops on threads: each reads or writes its descriptor until a call
// returns 0 or fails (rmdir ends them all: readers get end of file, writers
// EPIPE).  The destructor of each loop kills the daemon if it still blocks.
class Traffic {
  public:
    explicit Traffic(Mount& mount) : mount_(mount) {}
    void read(int fd) {
        auto buf = std::make_shared<std::string>(65536, '\0');
        start(true, received_, [fd, buf] { return ::read(fd, buf->data(), buf->size()); });
    }
    void write(int fd, const std::string& message) {
        start(false, sent_, [fd, message] { return ::write(fd, message.data(), message.size()); });
    }
    [[nodiscard]] std::uint64_t received() const { return received_.load(); }
    [[nodiscard]] std::uint64_t sent() const { return sent_.load(); }
    // True once received() grew by `more`.
    [[nodiscard]] bool flows(std::uint64_t more = 200) const {
        const std::uint64_t from = received();
        return eventually([&] { return received() >= from + more; }, 3s);
    }
    // Every loop ended within `timeout`: readers at end of file, writers with EPIPE.
    void expect_ended_by_rmdir(std::chrono::milliseconds timeout) {
        for (std::size_t i = 0; i < loops_.size(); ++i) {
            const bool reader = is_reader_[i];
            ASSERT_TRUE(loops_[i]->wait(timeout))
                << (reader ? "a reader" : "a writer") << " still blocks after rmdir";
            const Io& io = loops_[i]->result();
            if (reader) {
                EXPECT_EQ(io.n, 0) << "a reader ended with " << std::strerror(io.err);
            } else {
                EXPECT_EQ(io.err, EPIPE) << "a writer ended with " << std::strerror(io.err);
            }
        }
    }

  private:
    // Repeats `call` until it returns 0 or fails, counting each success.
    void start(bool reader, std::atomic<std::uint64_t>& count, std::function<ssize_t()> call) {
        loops_.push_back(std::make_unique<BackgroundCall>(mount_, [&count, call = std::move(call)] {
            for (;;) {
                Io io;
                io.n = call();
                io.err = io.n < 0 ? errno : 0;
                if (io.n <= 0) return io;
                ++count;
            }
        }));
        is_reader_.push_back(reader);
    }

    Mount& mount_;
    std::atomic<std::uint64_t> received_{0};
    std::atomic<std::uint64_t> sent_{0};
    std::vector<std::unique_ptr<BackgroundCall>> loops_;
    std::vector<bool> is_reader_;
};

// Lossy (false) and lossless (true) networks alike.
class TrafficTest : public FaultTest, public ::testing::WithParamInterface<bool> {
  protected:
    // A network with readers on ports 1-2 and writers on 3-4, busy.
    void SetUp() override {
        FaultTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
        if (GetParam()) {
            ASSERT_EQ(ctl(net_, "lossless on\n"), 0);
        }
        for (int p : {1, 2}) fds_.push_back(open_fd(port(p), O_RDONLY));
        for (int p : {3, 4}) fds_.push_back(open_fd(port(p), O_WRONLY));
        traffic_ = std::make_unique<Traffic>(mount_);
        traffic_->read(fds_[0].get());
        traffic_->read(fds_[1].get());
        traffic_->write(fds_[2].get(), "from 3");
        traffic_->write(fds_[3].get(), "from 4");
        ASSERT_TRUE(traffic_->flows()) << "no traffic:\n" << slurp(net_ + "/stats");
    }
    // rmdir ends the traffic; then nothing of the network may be left open.
    void TearDown() override {
        if (traffic_) {
            if (access(net_.c_str(), F_OK) == 0) rmdir(net_.c_str());
            traffic_->expect_ended_by_rmdir(2s);
            traffic_.reset();
        }
        fds_.clear();
        FaultTest::TearDown();
    }
    [[nodiscard]] std::string port(int n) const { return net_ + "/port" + std::to_string(n); }

    std::string net_;
    std::vector<Fd> fds_;
    std::unique_ptr<Traffic> traffic_;
};

TEST_P(TrafficTest, RmdirEndsEveryBusyReaderWithEndOfFileAndEveryWriterWithEPIPE) {
    const auto removed = Clock::now();
    ASSERT_EQ(rmdir(net_.c_str()), 0) << std::strerror(errno);
    traffic_->expect_ended_by_rmdir(2s);
    EXPECT_LT(seconds_since(removed), 2.0);
    std::cout << "[ info ] " << traffic_->sent() << " messages sent, " << traffic_->received()
              << " read before rmdir ended them\n";
    // The daemon serves on.
    std::string again = make_net("again");
    EXPECT_EQ(ctl(again, "queue 8\n"), 0);
}

TEST_P(TrafficTest, PortsShrinksPastClosedPortsButNotPastOpenOnes) {
    EXPECT_EQ(ctl(net_, "ports 3\n"), EBUSY) << "ports 3 and 4 are open";
    EXPECT_EQ(ctl(net_, "ports 4\n"), EBUSY) << "port 4 is open";
    EXPECT_EQ(ctl(net_, "ports 5\n"), 0) << last_error_line(ctl_text(net_));
    EXPECT_EQ(stats(net_).total("ports"), 5u);
    EXPECT_EQ(try_open(port(5), O_RDONLY), -1);
    EXPECT_EQ(errno, ENOENT) << "port5 is gone";
    EXPECT_TRUE(traffic_->flows()) << "traffic stopped after the shrink";
    EXPECT_EQ(ctl(net_, "ports 64\n"), 0) << "and it grows again under traffic";
    // A writer: on a lossless network a reader that never reads would stop everyone.
    Fd high = open_fd(port(63), O_WRONLY);
    EXPECT_TRUE(high.ok());
    EXPECT_TRUE(traffic_->flows());
}

// (Setting what is already set, `policy hub` on a hub, is not a change and succeeds.)
TEST_P(TrafficTest, PolicyAndModeChangesAreRefusedWithEBUSYWhilePortsAreOpen) {
    const char* other_mode = GetParam() ? "lossless off\n" : "lossless on\n";
    int refused = 0;
    for (int i = 0; i < 50; ++i) {
        for (const char* change : {"policy switch\n", "policy group\n", other_mode, "queue 8\n"}) {
            int err = ctl(net_, change);
            EXPECT_EQ(err, EBUSY) << change;
            refused += err == EBUSY ? 1 : 0;
        }
    }
    Stats st = stats(net_);
    EXPECT_EQ(st.totals["policy"], "hub");
    EXPECT_EQ(st.totals["lossless"], GetParam() ? "on" : "off");
    EXPECT_TRUE(traffic_->flows()) << "traffic stopped after " << refused << " refused changes";
}

INSTANTIATE_TEST_SUITE_P(Modes, TrafficTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Lossless" : "Lossy"; });

// Joins a thread on every way out of a scope (an ASSERT included).
class JoinOnExit {
  public:
    explicit JoinOnExit(std::thread& thread) : thread_(thread) {}
    JoinOnExit(const JoinOnExit&) = delete;
    JoinOnExit& operator=(const JoinOnExit&) = delete;
    ~JoinOnExit() {
        if (thread_.joinable()) thread_.join();
    }

  private:
    std::thread& thread_;
};

// A TAP carrying a UDP flood one way and port-file frames the other is
// deleted with `ip link del`: its row says failed, its port is free, and the
// network and the daemon carry on.
class TapFaultTest : public NetdevTest, public ::testing::WithParamInterface<bool> {
  protected:
    [[nodiscard]] std::vector<std::string> tools() const override { return {"timeout", "python3"}; }
};

// UDP datagrams to 10.0.0.2 as fast as the TAP takes them, for 3 s (ping -f
// sends 100 a second when nothing answers).
constexpr const char* kUdpFlood = R"(import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 3
while time.time() < end:
    try:
        s.sendto(b"x" * 100, ("10.0.0.2", 9))
    except OSError:
        time.sleep(0.001)
)";

TEST_P(TapFaultTest, ATapDeletedUnderTrafficFailsItsRowFreesItsPortAndTheDaemonServesOn) {
    std::string net = make_net("lan");
    if (GetParam()) {
        ASSERT_EQ(ctl(net, "lossless on\n"), 0);
    }
    NetNs ns;
    ASSERT_TRUE(ns.ok()) << ns.error();
    const std::string tap_name = ifname("t1");
    std::optional<unsigned> tap_port = tap_into(net, tap_name, ns, {"10.0.0.1/24"});
    ASSERT_TRUE(tap_port);
    // A neighbour that does not exist, so datagrams go out without waiting for ARP.
    Shell neigh = ns.sh("ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev " + tap_name);
    ASSERT_EQ(neigh.exit_code(), 0) << describe(neigh);

    const unsigned reader_port = *tap_port + 1;
    const unsigned writer_port = *tap_port + 2;
    Fd r = open_fd(net + "/port" + std::to_string(reader_port), O_RDONLY);
    Fd w = open_fd(net + "/port" + std::to_string(writer_port), O_WRONLY);
    const std::string frame = build_frame(
        Frame{kBroadcast, *parse_mac("02:00:00:00:00:03"), std::nullopt, 0x88b5, "to the tap"});
    {
        Traffic traffic(mount_);
        traffic.read(r.get());
        traffic.write(w.get(), frame);
        // Its end is not checked: sending fails once the interface is deleted.
        // The bounds leave room for a slow python3 start: CI's ring stage once
        // saw no frame in 5 s with this test beside its other mode.
        std::thread flood([&] { (void)ns.sh("python3 -c " + sq(kUdpFlood), 25); });
        JoinOnExit join_flood(flood);
        ASSERT_TRUE(eventually(
            [&] {
                NetStats st = net_stats(net);
                const IfaceRow& row = st.ifaces[tap_name];
                return row.frames_in > 200 && row.frames_out > 200;
            },
            20s))
            << "no traffic through the TAP both ways:\n"
            << slurp(net + "/stats");

        const IfaceRow before = net_stats(net).ifaces[tap_name];
        std::cout << "[ info ] deleting the TAP after " << before.frames_in << " frames in, "
                  << before.frames_out << " out\n";
        Shell del = ns.sh("ip link del " + tap_name);
        ASSERT_EQ(del.exit_code(), 0) << describe(del);
        EXPECT_TRUE(
            eventually([&] { return net_stats(net).ifaces[tap_name].state == "failed"; }, 3s))
            << slurp(net + "/stats");
        EXPECT_TRUE(eventually(
            [&] {
                PortRow row = net_stats(net).ports[*tap_port];
                return row.readers == 0 && row.writers == 0;
            },
            3s))
            << "the TAP's port is still held:\n"
            << slurp(net + "/stats");
        Fd freed = open_fd(net + "/port" + std::to_string(*tap_port), O_RDWR);
        EXPECT_TRUE(freed.ok()) << "the failed TAP's port cannot be opened";
        freed.reset();
        EXPECT_TRUE(traffic.flows()) << "the port files' traffic stopped with the TAP";
        EXPECT_EQ(ctl(net, "untap " + tap_name + "\n"), 0) << last_error_line(ctl_text(net));
        EXPECT_EQ(net_stats(net).ifaces.count(tap_name), 0u) << "untap left the failed row";
        ASSERT_EQ(rmdir(net.c_str()), 0) << std::strerror(errno);
        traffic.expect_ended_by_rmdir(2s);
    }
    std::string again = make_net("again");
    EXPECT_EQ(ctl(again, "queue 8\n"), 0);
    EXPECT_FALSE(mount_.wait_exit(0ms)) << "the daemon exited";
}

INSTANTIATE_TEST_SUITE_P(Modes, TapFaultTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Lossless" : "Lossy"; });

}  // namespace
}  // namespace ipnfs_it
