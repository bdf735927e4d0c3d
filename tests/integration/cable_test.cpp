// ipnfs-cable as a user runs it: two networks on two mounts (two machines)
// joined by dpipe, a network joined to VDE's own vde_switch through
// vde_plug, and the mistakes a user can make.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ether.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

const std::string kCable = IPNFS_CABLE;
const std::string kDpipe = "/usr/bin/dpipe";
const std::string kVdeSwitch = "/usr/bin/vde_switch";
const std::string kVdePlug = "/usr/bin/vde_plug";

// The VDE stream format, written out here rather than taken from the
// cable's codec, so the test checks the cable against the format itself.
std::string stream_frame(const std::string& frame) {
    std::string out{static_cast<char>(frame.size() >> 8), static_cast<char>(frame.size() & 0xff)};
    return out + frame;
}

// Exactly n bytes from a pipe, or fewer if it stays silent for timeout_ms.
std::string read_exactly(int fd, std::size_t n, int timeout_ms = 3000) {
    std::string out;
    while (out.size() < n) {
        Io io = read_one(fd, timeout_ms, n - out.size());
        if (io.n <= 0) break;
        out += io.data;
    }
    return out;
}

// One frame of a VDE stream, "" if none came whole in time.
std::string read_stream_frame(int fd, int timeout_ms = 3000) {
    std::string len = read_exactly(fd, 2, timeout_ms);
    if (len.size() != 2) return "";
    std::size_t n = (static_cast<std::size_t>(static_cast<unsigned char>(len[0])) << 8) |
                    static_cast<unsigned char>(len[1]);
    return read_exactly(fd, n, timeout_ms);
}

// A program the test started in a process group of its own, with a pipe to
// its stdin and from its stdout if asked, stderr into a file.  The
// destructor kills the group (dpipe's children too) and reaps the leader.
class Child {
  public:
    Child(std::vector<std::string> argv, std::string err_file, bool pipe_in = false,
          bool pipe_out = false)
        : err_file_(std::move(err_file)) {
        int in[2] = {-1, -1};
        int out[2] = {-1, -1};
        if ((pipe_in && pipe2(in, O_CLOEXEC) != 0) || (pipe_out && pipe2(out, O_CLOEXEC) != 0)) {
            ADD_FAILURE() << "pipe: " << std::strerror(errno);
            return;
        }
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int err = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        std::vector<char*> args;
        args.reserve(argv.size() + 1);
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        pid_ = fork_child([&] {
            setpgid(0, 0);
            dup2(pipe_in ? in[0] : null, 0);
            dup2(pipe_out ? out[1] : null, 1);
            dup2(err, 2);
            execv(args[0], args.data());
            return 127;
        });
        if (pid_ > 0) setpgid(pid_, pid_);
        close(null);
        close(err);
        if (pipe_in) {
            close(in[0]);
            in_ = Fd(in[1]);
        }
        if (pipe_out) {
            close(out[1]);
            out_ = Fd(out[0]);
        }
    }
    ~Child() {
        if (pid_ <= 0 || status_) return;
        ::kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    [[nodiscard]] pid_t pid() const { return pid_; }
    [[nodiscard]] int in() const { return in_.get(); }
    [[nodiscard]] int out() const { return out_.get(); }
    void close_in() { in_.reset(); }
    void close_out() { out_.reset(); }
    // The wait status; past the deadline the child is killed and reported.
    std::optional<int> wait(std::chrono::milliseconds timeout) {
        if (!status_) status_ = wait_child(pid_, timeout);
        if (!status_) ::kill(-pid_, SIGKILL);  // what the leader left behind
        return status_;
    }
    void signal_group(int sig) const {
        if (pid_ > 0 && !status_) ::kill(-pid_, sig);
    }
    [[nodiscard]] std::string err() const { return read_whole(err_file_); }

  private:
    std::string err_file_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    Fd in_, out_;
};

class CableTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        for (const auto& tool : {kCable, kDpipe, kVdeSwitch, kVdePlug}) {
            if (access(tool.c_str(), X_OK) != 0) {
                IPNFS_SKIP_OR_FAIL(tool + " is missing (tools/deps.sh installs it)");
            }
        }
    }

    // Waits until `port` of the network has the cable's reader and its two
    // writers (it opens the port again for writes that wait): it is plugged.
    static bool plugged(const std::string& net, unsigned port) {
        return eventually(
            [&] {
                auto rows = parse_stats(slurp(net + "/stats")).rows;
                return rows.contains(port) && rows[port].readers == 1 && rows[port].writers == 2;
            },
            5s);
    }

    // A cable on `path` with pipes on both ends, plugged in.
    std::unique_ptr<Child> cable(const std::string& path, const std::string& net, unsigned port,
                                 const std::vector<std::string>& options = {}) {
        std::vector<std::string> argv{kCable};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(path);
        auto child = std::make_unique<Child>(argv, scratch() + "/cable.err", true, true);
        EXPECT_TRUE(plugged(net, port)) << child->err();
        return child;
    }
};

// Two mounts, as two machines would each have one.
class TwoMountCableTest : public CableTest {
  protected:
    void SetUp() override {
        CableTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        std::string why;
        if (!far_.start({}, why)) {
            IPNFS_SKIP_OR_FAIL("cannot mount a second ipnfs: " + why);
        }
        far_watchdog_ = std::make_unique<Watchdog>(far_, 45s);
    }
    void TearDown() override {
        dpipe_.reset();  // the cables close their ports before the mounts go
        pa_.reset();
        pb_.reset();
        far_watchdog_.reset();
        far_.stop();
        if (HasFailure()) std::cerr << far_.log();
        far_.cleanup();
        CableTest::TearDown();
    }

    // Network "lan" on both mounts with `settings` in ctl, port5 of each
    // open for the test, and `dpipe ipnfs-cable A = ipnfs-cable B` plugged
    // into port 0 of each.
    void join(const std::string& settings) {
        a_ = make_net("lan");
        b_ = far_.path("lan");
        ASSERT_EQ(mkdir(b_.c_str(), 0755), 0) << std::strerror(errno);
        ASSERT_EQ(ctl(a_, settings), 0);
        ASSERT_EQ(ctl(b_, settings), 0);
        pa_ = open_fd(a_ + "/port5", O_RDWR);
        pb_ = open_fd(b_ + "/port5", O_RDWR);
        ASSERT_TRUE(pa_.ok() && pb_.ok());
        dpipe_ =
            std::make_unique<Child>(std::vector<std::string>{kDpipe, kCable, a_, "=", kCable, b_},
                                    scratch() + "/dpipe.err");
        ASSERT_TRUE(plugged(a_, 0) && plugged(b_, 0)) << dpipe_->err();
    }

    Mount far_;
    std::unique_ptr<Watchdog> far_watchdog_;
    std::string a_, b_;
    Fd pa_, pb_;
    std::unique_ptr<Child> dpipe_;
};

TEST_F(TwoMountCableTest, DpipeJoinsTwoNetworksOnTwoMountsBothWays) {
    ASSERT_NO_FATAL_FAILURE(join("mtu 9000"));
    EXPECT_TRUE(contains(dpipe_->err(), "ipnfs-cable: plugged into " + a_ + "/port0\n"))
        << dpipe_->err();
    EXPECT_TRUE(contains(dpipe_->err(), "ipnfs-cable: plugged into " + b_ + "/port0\n"))
        << dpipe_->err();

    std::string sizes_seen;
    for (std::size_t size : {1u, 1514u, 9000u}) {
        std::string msg(size, '\0');
        for (std::size_t i = 0; i < size; ++i) msg[i] = static_cast<char>(i * 13 + size);
        ASSERT_EQ(write_msg(pa_.get(), msg).n, static_cast<ssize_t>(size));
        Io got = read_one(pb_.get());
        EXPECT_EQ(got.data, msg) << size << " bytes from A to B";
        std::string back = msg;
        back[0] = static_cast<char>(back[0] ^ 0x5a);
        ASSERT_EQ(write_msg(pb_.get(), back).n, static_cast<ssize_t>(size));
        EXPECT_EQ(read_one(pa_.get()).data, back) << size << " bytes from B to A";
    }
    auto sa = stats(a_).rows;
    auto sb = stats(b_).rows;
    for (auto* rows : {&sa, &sb}) {
        const PortRow& cable = (*rows)[0];
        EXPECT_EQ(cable.readers, 1u);
        EXPECT_EQ(cable.writers, 2u) << "one descriptor reads, one writes and may wait";
        EXPECT_EQ(cable.msgs_in, 3u) << "what the cable brought in";
        EXPECT_EQ(cable.msgs_out, 3u) << "what the cable took out";
        EXPECT_EQ(cable.bytes_in, 1u + 1514u + 9000u);
        EXPECT_EQ(cable.drops, 0u);
    }
}

// A message of the lossless tests: its number first, then padding, big
// enough that a few hundred fill the pipes between the cables.
std::string numbered(int i) {
    std::string m = std::to_string(i) + ":";
    m.resize(1400, static_cast<char>('a' + i % 26));
    return m;
}

int number_of(const std::string& message) {
    return std::atoi(message.c_str());
}

// The counters a cable reports on stderr when it ends, for its port file.
struct Reported {
    std::uint64_t in = 0, out = 0, dropped = 0;
    bool found = false;
};
Reported reported(const std::string& err, const std::string& port_file) {
    Reported r;
    std::string prefix = "ipnfs-cable: " + port_file + ": frames in ";
    for (const auto& line : lines_of(err)) {
        if (line.rfind(prefix, 0) != 0) continue;
        unsigned long long in = 0;
        unsigned long long out = 0;
        unsigned long long dropped = 0;
        if (std::sscanf(line.c_str() + prefix.size(), "%llu out %llu dropped %llu", &in, &out,
                        &dropped) == 3) {
            r = {in, out, dropped, true};
        }
    }
    return r;
}

TEST_F(TwoMountCableTest, ALosslessPairCarriesAThousandMessagesAllInOrder) {
    ASSERT_NO_FATAL_FAILURE(join("lossless on\nqueue 4\n"));

    // Far more than the queues and the pipes hold: the far network's
    // reader sets the pace, back through the stream to the writer here.
    constexpr int kCount = 1000;
    auto t0 = Clock::now();
    std::jthread sender([&] {
        for (int i = 0; i < kCount; ++i) {
            if (write_msg(pa_.get(), numbered(i), 5000).n < 0) return;
        }
    });
    std::vector<std::string> got;
    for (int i = 0; i < kCount; ++i) {
        Io io = read_one(pb_.get(), 5000);
        if (io.n <= 0) break;
        got.push_back(io.data);
    }
    sender.join();
    RecordProperty("seconds", std::to_string(seconds_since(t0)));
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kCount)) << dpipe_->err();
    for (int i = 0; i < kCount; ++i) ASSERT_EQ(got[i], numbered(i)) << "in order";
    EXPECT_EQ(stats(a_).rows[0].msgs_out, static_cast<std::uint64_t>(kCount));
    EXPECT_EQ(stats(b_).rows[0].msgs_in, static_cast<std::uint64_t>(kCount));
    EXPECT_EQ(stats(a_).total("drops") + stats(b_).total("drops"), 0u);
}

TEST_F(TwoMountCableTest, LosslessNetworksSendingBothWaysAtOnceNeverHang) {
    ASSERT_NO_FATAL_FAILURE(join("lossless on\nqueue 4\n"));

    // Each network's writes go in order, so a writer waiting for the
    // cable's queue holds up the cable's own frame, on both sides at once:
    // the cables must hold or drop frames rather than wait for each other.
    constexpr int kCount = 1000;
    std::atomic<int> senders{2};
    auto send = [&](int fd) {
        for (int i = 0; i < kCount; ++i) {
            if (write_msg(fd, numbered(i), 5000).n < 0) break;
        }
        --senders;
    };
    auto receive = [&](int fd, std::vector<int>& into) {
        for (;;) {
            Io io = read_one(fd, 1000);
            if (io.n > 0)
                into.push_back(number_of(io.data));
            else if (senders == 0)
                return;
        }
    };
    std::vector<int> at_a;
    std::vector<int> at_b;
    auto t0 = Clock::now();
    {
        std::jthread s1(send, pa_.get());
        std::jthread s2(send, pb_.get());
        std::jthread r1(receive, pa_.get(), std::ref(at_a));
        std::jthread r2(receive, pb_.get(), std::ref(at_b));
    }
    RecordProperty("seconds", std::to_string(seconds_since(t0)));
    EXPECT_EQ(senders, 0);
    EXPECT_TRUE(std::is_sorted(at_a.begin(), at_a.end()) &&
                std::adjacent_find(at_a.begin(), at_a.end()) == at_a.end())
        << "in order, none twice";
    EXPECT_TRUE(std::is_sorted(at_b.begin(), at_b.end()) &&
                std::adjacent_find(at_b.begin(), at_b.end()) == at_b.end())
        << "in order, none twice";
    EXPECT_EQ(stats(a_).total("drops") + stats(b_).total("drops"), 0u)
        << "the networks lose nothing";

    // What did not arrive is exactly what each cable says it dropped.
    dpipe_->signal_group(SIGTERM);  // each cable reports its counters, then dies
    Reported ca;
    Reported cb;
    eventually(
        [&] {
            ca = reported(dpipe_->err(), a_ + "/port0");
            cb = reported(dpipe_->err(), b_ + "/port0");
            return ca.found && cb.found;
        },
        5s);
    ASSERT_TRUE(ca.found && cb.found) << dpipe_->err();
    EXPECT_EQ(at_b.size() + ca.dropped, static_cast<std::size_t>(kCount)) << dpipe_->err();
    EXPECT_EQ(at_a.size() + cb.dropped, static_cast<std::size_t>(kCount)) << dpipe_->err();
    RecordProperty("dropped_to_end_a_mutual_wait", std::to_string(ca.dropped + cb.dropped));
}

TEST_F(CableTest, ItsFramesTakeTheirTurnWhileLocalWritersKeepALosslessNetworkFull) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 4\n"), 0);
    Fd reader = open_fd(net + "/port5", O_RDONLY);
    ASSERT_TRUE(reader.ok());
    auto c = cable(net + "/port0", net, 0);

    // Three local writers that never pause keep a write waiting in the
    // network's line at every moment; the cable's stdout is drained.
    constexpr int kFrames = 200;
    std::atomic<bool> stop{false};
    std::atomic<long> local{0};
    std::atomic<long> local_at_first{-1};
    std::vector<std::jthread> writers;
    for (int i = 0; i < 3; ++i) {
        writers.emplace_back([&, i] {
            Fd fd = open_fd(net + "/port" + std::to_string(6 + i), O_WRONLY);
            while (fd.ok() && !stop && ::write(fd.get(), "local", 5) == 5) {
            }
        });
    }
    std::jthread drain([&] {
        while (read_one(c->out(), 500).n > 0 || !stop) {
        }
    });
    std::string from_stream(64, 'c');
    std::string stream;
    for (int i = 0; i < kFrames; ++i) stream += stream_frame(from_stream);
    int cabled = 0;
    std::jthread count([&] {
        auto deadline = Clock::now() + 20s;
        while (cabled < kFrames && Clock::now() < deadline) {
            Io io = read_one(reader.get(), 5000);
            if (io.n <= 0) return;
            if (io.data != from_stream) {
                ++local;
            } else if (++cabled == 1) {
                local_at_first = local.load();
            }
        }
    });
    EXPECT_TRUE(eventually([&] { return local >= 1000; }, 5s)) << "the line is full";
    EXPECT_TRUE(write_all(c->in(), stream));
    count.join();
    long between = local - local_at_first;
    EXPECT_EQ(stats(net).total("drops"), 0u);
    stop = true;
    reader.reset();  // the writers' last waiting writes go in without it
    writers.clear();
    c->close_in();
    drain.join();

    // Each of the cable's frames waits behind the writes already waiting,
    // a few local messages, not for a gap the local writers never leave.
    EXPECT_EQ(cabled, kFrames) << c->err();
    RecordProperty("local_messages_per_cable_frame", std::to_string(between / kFrames));
    EXPECT_LT(between, 40L * kFrames) << "local messages between the cable's first and last frame";
}

// A vde_switch the test runs in the foreground: it exits when its stdin
// (a pipe the test holds) closes.
class VdeSwitch {
  public:
    explicit VdeSwitch(const std::string& dir)
        : dir_(dir), child_({kVdeSwitch, "-s", dir}, dir + ".err", true, false) {}
    ~VdeSwitch() {
        child_.close_in();
        child_.wait(5s);
    }
    VdeSwitch(const VdeSwitch&) = delete;
    VdeSwitch& operator=(const VdeSwitch&) = delete;
    [[nodiscard]] bool ready() const {
        return eventually([&] { return access((dir_ + "/ctl").c_str(), F_OK) == 0; }, 5s);
    }
    [[nodiscard]] std::string err() const { return child_.err(); }

  private:
    std::string dir_;
    Child child_;
};

TEST_F(CableTest, VdePlugOnAVdeSwitchTalksToTheNetwork) {
    std::string net = make_net("lan");
    Fd port = open_fd(net + "/port5", O_RDWR);
    ASSERT_TRUE(port.ok());
    std::string sock = scratch() + "/switch";
    VdeSwitch sw(sock);
    ASSERT_TRUE(sw.ready()) << sw.err();
    Child dpipe({kDpipe, kCable, net, "=", kVdePlug, sock}, scratch() + "/dpipe.err");
    ASSERT_TRUE(plugged(net, 0)) << dpipe.err();
    Child host({kVdePlug, sock}, scratch() + "/plug.err", true, true);

    // Until the host's vde_plug has joined the switch its frames go
    // nowhere, so it says hello until the network hears it.
    Mac host_mac = *parse_mac("02:00:00:00:00:0b");
    Mac port_mac = *parse_mac("02:00:00:00:00:0a");
    std::vector<std::string> sent;
    std::string heard;
    auto deadline = Clock::now() + 5s;
    while (heard.empty() && Clock::now() < deadline) {
        Frame f{kBroadcast, host_mac, std::nullopt, kEtherIpv4,
                "hello " + std::to_string(sent.size())};
        sent.push_back(build_frame(f));
        ASSERT_TRUE(write_all(host.in(), stream_frame(sent.back()))) << host.err();
        heard = read_one(port.get(), 200).data;
    }
    EXPECT_NE(std::find(sent.begin(), sent.end(), heard), sent.end())
        << "vde_plug -> vde_switch -> vde_plug -> ipnfs-cable -> port: got '" << heard << "'\n"
        << host.err() << dpipe.err() << sw.err();

    Frame reply{kBroadcast, port_mac, std::nullopt, kEtherIpv4, std::string(1000, 'r')};
    std::string bytes = build_frame(reply);
    ASSERT_EQ(write_msg(port.get(), bytes).n, static_cast<ssize_t>(bytes.size()));
    // A switch never sends a frame back where it came from, so the host's
    // first frame is this one.
    EXPECT_EQ(read_stream_frame(host.out()), bytes)
        << "port -> ipnfs-cable -> vde_plug -> vde_switch -> vde_plug, in stream format";
    EXPECT_EQ(stats(net).rows[0].drops, 0u);
}

TEST_F(CableTest, AMissingPathIsAnErrorNamingIt) {
    Shell sh = run_argv({kCable, p("nowhere")});
    EXPECT_EQ(sh.exit_code(), 1);
    EXPECT_EQ(sh.err, "ipnfs-cable: " + p("nowhere") + ": No such file or directory\n");
    EXPECT_EQ(sh.out, "");
}

TEST_F(CableTest, ANetworkWithEveryPortTakenRefusesTheCable) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "ports 1"), 0);
    Fd taken = open_fd(net + "/port0", O_RDWR);
    Shell sh = run_argv({kCable, net});
    EXPECT_EQ(sh.exit_code(), 1);
    EXPECT_EQ(sh.err,
              "ipnfs-cable: " + net +
                  "/clone: No space left on device (every port of the network is in use)\n");
}

TEST_F(CableTest, BadCommandLinesExitTwoAndHelpExitsZero) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {kCable}, {kCable, "-x", p("")}, {kCable, p("a"), p("b")}, {kCable, "-p"}}) {
        Shell sh = run_argv(args);
        EXPECT_EQ(sh.exit_code(), 2) << args.size() << " words: " << sh.err;
        EXPECT_TRUE(contains(sh.err, "Try 'ipnfs-cable --help'.")) << sh.err;
    }
    Shell help = run_argv({kCable, "--help"});
    EXPECT_EQ(help.exit_code(), 0);
    EXPECT_TRUE(contains(help.out, "Usage: ipnfs-cable")) << help.out;
    Shell version = run_argv({kCable, "--version"});
    EXPECT_EQ(version.exit_code(), 0);
    EXPECT_EQ(version.out.rfind("ipnfs-cable ", 0), 0u) << version.out;
}

TEST_F(CableTest, AFrameOverTheMtuIsCountedAndTheNextOneCrosses) {
    std::string net = make_net("lan");
    Fd port = open_fd(net + "/port5", O_RDWR);
    auto c = cable(net, net, 0);
    ASSERT_TRUE(write_all(c->in(), stream_frame(std::string(1515, 'x')) +
                                       stream_frame(std::string(1600, 'y')) + stream_frame("") +
                                       stream_frame("after")));
    EXPECT_EQ(read_one(port.get()).data, "after");
    c->close_in();
    auto status = c->wait(5s);
    EXPECT_EQ(exit_code_of(status), 0) << c->err();
    std::string err = c->err();
    EXPECT_TRUE(contains(err, "ipnfs-cable: " + net +
                                  "/port0: the network refused a 1515-byte frame: Message too "
                                  "long (further such frames are only counted)\n"))
        << err;
    EXPECT_FALSE(contains(err, "1600-byte")) << "one report per kind of refusal:\n" << err;
    EXPECT_TRUE(contains(err, "ipnfs-cable: " + net + "/port0: frames in 1 out 0 dropped 3\n"))
        << err;
}

TEST_F(CableTest, RemovingTheNetworkEndsTheCableWithAnError) {
    std::string net = make_net("lan");
    auto c = cable(net + "/port3", net, 3);
    ASSERT_EQ(rmdir(net.c_str()), 0) << std::strerror(errno);
    auto status = c->wait(3s);
    EXPECT_EQ(exit_code_of(status), 1) << c->err();
    EXPECT_TRUE(contains(c->err(), "ipnfs-cable: " + net + "/port3: the network was removed\n"))
        << c->err();
}

TEST_F(CableTest, ClosingStdinUnplugsTheCableWithExitZero) {
    std::string net = make_net("lan");
    std::string pidfile = scratch() + "/cable.pid";
    auto c = cable(net, net, 0, {"-q", "-p", pidfile});
    // The cable writes its pid file just after plugging in: wait for it, not for the port.
    std::string pid = std::to_string(c->pid()) + "\n";
    EXPECT_TRUE(eventually([&] { return read_whole(pidfile) == pid; }, 3s)) << read_whole(pidfile);
    c->close_in();
    auto status = c->wait(3s);
    EXPECT_EQ(exit_code_of(status), 0);
    EXPECT_EQ(c->err(), "") << "-q: nothing but errors";
    EXPECT_TRUE(eventually([&] { return stats(net).total("connected") == 0; }, 2s));
    EXPECT_NE(access(pidfile.c_str(), F_OK), 0) << "the pid file goes with the cable";
}

TEST_F(CableTest, TheFarSideGoingAwayUnplugsTheCableWithExitZero) {
    std::string net = make_net("lan");
    Fd port = open_fd(net + "/port5", O_RDWR);
    auto c = cable(net, net, 0);
    ASSERT_EQ(write_msg(port.get(), "first").n, 5);
    EXPECT_EQ(read_stream_frame(c->out()), "first");
    c->close_out();  // nobody reads the stream now: the next frame meets EPIPE
    ASSERT_EQ(write_msg(port.get(), "second").n, 6);
    auto status = c->wait(3s);
    EXPECT_EQ(exit_code_of(status), 0) << c->err();
    EXPECT_TRUE(contains(c->err(), "/port0: frames in 0 out 1 dropped 0\n")) << c->err();
}

}  // namespace
}  // namespace ipnfs_it
