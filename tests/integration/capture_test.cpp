// The capture file: a live pcap stream of a network's traffic, read by
// Debian's tcpdump while the traffic flows; a reader that falls behind loses
// its own copies and never slows the network; end of file once the network
// is removed; read-only, and only for those who may read the directory.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "ether.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

// `tcpdump ARGS` in the background, its stdout and stderr in files of `dir`;
// killed and reaped if the test ends before it does.
class Tcpdump {
  public:
    Tcpdump(const std::string& dir, const std::vector<std::string>& args)
        : out_(dir + "/tcpdump.out"), err_(dir + "/tcpdump.err") {
        std::vector<std::string> words{"tcpdump"};
        words.insert(words.end(), args.begin(), args.end());
        // Built before fork: the child only dups and execs.
        std::vector<char*> argv;
        argv.reserve(words.size() + 1);
        for (std::string& w : words) argv.push_back(w.data());
        argv.push_back(nullptr);
        const char* out = out_.c_str();
        const char* err = err_.c_str();
        pid_ = fork_child([&] {
            int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) return 126;
            execvp(argv[0], argv.data());
            return 127;
        });
    }
    ~Tcpdump() {
        if (pid_ > 0 && !status_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Tcpdump(const Tcpdump&) = delete;
    Tcpdump& operator=(const Tcpdump&) = delete;

    // Its exit code once it exited (killed and -1 at the deadline).
    int wait(std::chrono::milliseconds timeout) {
        status_ = wait_child(pid_, timeout);
        if (!status_) status_ = -1;
        return exit_code_of(status_);
    }
    [[nodiscard]] std::string out() const { return read_whole(out_); }
    [[nodiscard]] std::string err() const { return read_whole(err_); }

  private:
    std::string out_, err_;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

// A pcap stream, checked: the classic header and whole records.
struct Pcap {
    std::uint32_t link_type = 0;
    std::vector<std::string> packets;
    std::vector<std::uint64_t> times_us;
    std::string error;  // empty if the stream is well formed
};

Pcap parse_pcap(const std::string& s) {
    Pcap p;
    auto u32 = [&](std::size_t off) {
        std::uint32_t v = 0;
        std::memcpy(&v, s.data() + off, sizeof v);
        return v;
    };
    if (s.size() < 24 || u32(0) != 0xa1b2c3d4 || u32(16) != 65535) {
        p.error = "no classic pcap header";
        return p;
    }
    p.link_type = u32(20);
    std::size_t at = 24;
    while (at < s.size()) {
        if (s.size() - at < 16) {
            p.error = "a record header is cut at byte " + std::to_string(at);
            return p;
        }
        std::uint32_t incl = u32(at + 8);
        if (incl != u32(at + 12) || s.size() - at - 16 < incl) {
            p.error = "a record is cut at byte " + std::to_string(at);
            return p;
        }
        p.times_us.push_back(std::uint64_t{u32(at)} * 1'000'000 + u32(at + 4));
        p.packets.push_back(s.substr(at + 16, incl));
        at += 16 + incl;
    }
    return p;
}

// Everything a non-blocking descriptor has to read now.
std::string read_available(int fd) {
    std::string all;
    std::string buf(65536, '\0');
    for (;;) {
        ssize_t n = read(fd, buf.data(), buf.size());
        if (n <= 0) break;
        all.append(buf.data(), static_cast<std::size_t>(n));
    }
    return all;
}

class CaptureTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        if (access("/usr/bin/tcpdump", X_OK) != 0 && access("/usr/sbin/tcpdump", X_OK) != 0) {
            IPNFS_SKIP_OR_FAIL("tcpdump is not installed (tools/deps.sh installs it)");
        }
    }
    // Waits until the network has `n` capture readers (tcpdump opened the file).
    bool capture_readers_become(const std::string& net, std::uint64_t n) {
        return eventually([&] { return stats(net).total("capture_readers") == n; }, 10s);
    }
};

TEST_F(CaptureTest, TcpdumpShowsASwitchNetworksFramesLiveWithTheirMacs) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch"), 0);
    Tcpdump dump(scratch(), {"-r", net + "/capture", "-nn", "-e", "-l", "-c", "3"});
    ASSERT_TRUE(capture_readers_become(net, 1)) << "tcpdump did not open the capture file";
    Fd a = open_fd(net + "/port0", O_WRONLY);
    Fd b = open_fd(net + "/port1", O_RDONLY);
    Mac src = *parse_mac("02:00:00:00:00:0a");
    Mac dst = *parse_mac("02:00:00:00:00:0b");
    auto send = [&](std::uint16_t type) {
        ASSERT_EQ(write_msg(a.get(), build_frame({dst, src, {}, type, "payload"})).n, 60);
    };
    send(0x88b5);
    // Live: the first frame is printed while tcpdump still waits for more.
    EXPECT_TRUE(eventually([&] { return contains(dump.out(), "ethertype Unknown (0x88b5)"); }, 10s))
        << dump.out() << dump.err();
    send(0x88b6);
    send(0x88b7);
    ASSERT_EQ(dump.wait(10s), 0) << dump.err();
    std::string out = dump.out();
    EXPECT_EQ(count_of(out, "02:00:00:00:00:0a > 02:00:00:00:00:0b"), 3u) << out;
    EXPECT_TRUE(contains(out, "0x88b7")) << out;
    EXPECT_TRUE(contains(dump.err(), "link-type EN10MB")) << dump.err();
    EXPECT_TRUE(eventually([&] { return stats(net).total("capture_readers") == 0; }, 5s));
    EXPECT_EQ(stats(net).total("captured"), 3u);
}

TEST_F(CaptureTest, AHubNetworkIsCapturedAsUser0WhichTcpdumpShowsAsHex) {
    std::string net = make_net("bus");  // the default policy: hub
    Tcpdump dump(scratch(), {"-r", net + "/capture", "-nn", "-c", "1"});
    ASSERT_TRUE(capture_readers_become(net, 1));
    Fd a = open_fd(net + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(a.get(), "not a frame").n, 11);
    ASSERT_EQ(dump.wait(10s), 0) << dump.err();
    // Debian's tcpdump 4.99 names LINKTYPE_USER0 by its number, and dumps
    // the bytes of a link type it cannot decode.
    EXPECT_TRUE(contains(dump.err(), "link-type 147")) << dump.err();
    EXPECT_EQ(count_of(dump.out(), "UNSUPPORTED"), 1u) << dump.out();
    EXPECT_TRUE(contains(dump.out(), "not.a.frame")) << dump.out();
}

TEST_F(CaptureTest, AReaderThatDoesNotReadNeverBlocksALosslessNetworkAndKeepsAValidStream) {
    std::string net = make_net("lossless");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 4\npool 8"), 0);
    Fd cap = open_fd(net + "/capture", O_RDONLY | O_NONBLOCK);
    Fd w = open_fd(net + "/port0", O_WRONLY);
    Fd r = open_fd(net + "/port1", O_RDONLY);
    constexpr int kMessages = 3000;
    for (int i = 0; i < kMessages; ++i) {
        std::string msg = "message " + std::to_string(i);
        Io sent = write_msg(w.get(), msg);
        ASSERT_EQ(sent.n, static_cast<ssize_t>(msg.size())) << i << ": " << std::strerror(sent.err);
        Io got = read_one(r.get());
        ASSERT_EQ(got.data, msg);
    }
    Stats st = stats(net);
    EXPECT_EQ(st.total("capture_readers"), 1u);
    EXPECT_GT(st.total("capture_drops"), 0u);
    EXPECT_EQ(st.total("captured") + st.total("capture_drops"), std::uint64_t{kMessages});
    EXPECT_EQ(st.total("drops"), 0u) << "the network itself lost nothing";

    pollfd pfd{cap.get(), POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 2000), 1);
    Pcap p = parse_pcap(read_available(cap.get()));
    ASSERT_EQ(p.error, "");
    EXPECT_EQ(p.link_type, 147u);
    ASSERT_EQ(p.packets.size(), st.total("captured"));
    for (std::size_t i = 0; i < p.packets.size(); ++i) {
        ASSERT_EQ(p.packets[i], "message " + std::to_string(i)) << "the oldest are kept, in order";
        if (i > 0) {
            ASSERT_GE(p.times_us[i], p.times_us[i - 1]);
        }
    }
}

TEST_F(CaptureTest, ReadsEndWithEndOfFileOnceTheNetworkIsRemoved) {
    std::string net = make_net("gone");
    Fd cap = open_fd(net + "/capture", O_RDONLY);
    Io header = read_one(cap.get());
    ASSERT_EQ(header.n, 24);
    Fd w = open_fd(net + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "last").n, 4);
    w.reset();
    BackgroundRead parked(mount_, cap.get());
    ASSERT_TRUE(parked.wait(2s));
    EXPECT_EQ(parked.result().n, 16 + 4) << "one record, then the read would wait";
    BackgroundRead waiting(mount_, cap.get());
    ASSERT_TRUE(waiting.wait_blocked(2s));
    ASSERT_EQ(rmdir(net.c_str()), 0);
    ASSERT_TRUE(waiting.wait(2s));
    EXPECT_EQ(waiting.result().n, 0) << "end of file";
}

TEST_F(CaptureTest, TheCaptureFileIsReadOnlyEvenForRoot) {
    std::string net = make_net("ro");
    for (int flags : {O_WRONLY, O_RDWR}) {
        EXPECT_EQ(try_open(net + "/capture", flags), -1);
        EXPECT_EQ(errno, EACCES);
    }
    struct stat st {};
    ASSERT_EQ(stat((net + "/capture").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0444u) << "the directory's r bits (0755)";
    EXPECT_TRUE(contains(slurp(net + "/stats"), "capture_readers 0\n"));
}

// Other users reach the mount only with allow_other.
class CaptureAccessTest : public CaptureTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other"};
    }
};

TEST_F(CaptureAccessTest, OnlyThoseWhoMayReadTheDirectoryCanOpenIt) {
    std::string open_net = make_net("open", 0755);
    std::string closed_net = make_net("closed", 0711);
    auto open_as_nobody = [](const std::string& path) {
        pid_t pid = fork_child([&] {
            if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
                setresuid(65534, 65534, 65534) != 0) {
                return 200;
            }
            int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) return errno;
            close(fd);
            return 0;
        });
        return exit_code_of(wait_child(pid, 10s));
    };
    EXPECT_EQ(open_as_nobody(open_net + "/capture"), 0);
    EXPECT_EQ(open_as_nobody(closed_net + "/capture"), EACCES);
}

class CaptureTapTest : public NetdevTest {
  protected:
    [[nodiscard]] std::vector<std::string> tools() const override {
        return {"ping", "timeout", "tcpdump"};
    }
};

TEST_F(CaptureTapTest, APingBetweenTwoTapsShowsItsEchoRequestAndReply) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch"), 0);
    NetNs ns1;
    NetNs ns2;
    ASSERT_TRUE(ns1.ok()) << ns1.error();
    ASSERT_TRUE(ns2.ok()) << ns2.error();
    ASSERT_TRUE(tap_into(net, ifname("c1"), ns1, {"10.0.0.1/24"}));
    ASSERT_TRUE(tap_into(net, ifname("c2"), ns2, {"10.0.0.2/24"}));
    Tcpdump dump(scratch(), {"-r", net + "/capture", "-nn", "-l", "-c", "2", "icmp"});
    ASSERT_TRUE(eventually([&] { return stats(net).total("capture_readers") == 1; }, 10s));
    Shell ping = ns1.ping("10.0.0.2", 1);
    EXPECT_EQ(ping.exit_code(), 0) << describe(ping);
    ASSERT_EQ(dump.wait(10s), 0) << dump.err();
    std::string out = dump.out();
    EXPECT_TRUE(contains(out, "10.0.0.1 > 10.0.0.2: ICMP echo request")) << out;
    EXPECT_TRUE(contains(out, "10.0.0.2 > 10.0.0.1: ICMP echo reply")) << out;
    EXPECT_TRUE(contains(dump.err(), "link-type EN10MB")) << dump.err();
}

}  // namespace
}  // namespace ipnfs_it
