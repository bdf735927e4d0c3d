// Issue 18, findings 1 and 6: a plain read smaller than the next message
// gets its first bytes, and the rest waits for the next reads of the same
// open file.  Driven with the tools that read a byte or a few at a time
// (bash `read`, `head -c`, `dd bs=1`, `sed -u`), from C for what a program
// checks (poll, O_NONBLOCK, IPNFS_IOC_NEXT_SIZE, FIONREAD, two descriptors),
// and as a second user who leaves rests on many descriptors (the byte
// bounds hold).
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

class PartialReadTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
    }
    // A bash script run in the network's directory.
    Shell sh(const std::string& script) {
        return run_argv({"bash", "-c", "cd " + sq(net_) + " || exit 2\n" + script}, 8);
    }
    std::string net_;
};

// Shell: wait until port 1 has a reader (a reader started in the background).
const char* const kPort1Reads =
    "i=0; until grep -qE '^1 +1 ' stats; do i=$((i+1)); [ $i -gt 500 ] && exit 3; "
    "sleep 0.01; done\n";

std::string expect_shell(const Shell& s) {
    return "status " + std::to_string(s.exit_code()) + (s.timed_out ? " (timed out)" : "") +
           ", stderr: " + s.err;
}

TEST_F(PartialReadTest, WhileReadLoopOverAPortGetsEveryLine) {
    // bash reads a non-seekable file one byte at a time.
    Shell s = sh(std::string("while read -r line; do echo \"got $line\"; "
                             "[ \"$line\" = four ] && break; done < port1 &\n") +
                 kPort1Reads +
                 "for w in one two three four; do echo $w > port0; done\n"
                 "wait\n");
    EXPECT_EQ(s.out, "got one\ngot two\ngot three\ngot four\n") << expect_shell(s);
}

TEST_F(PartialReadTest, ReadDashUReadsWholeLinesFromADescriptor) {
    Shell s =
        sh("exec 3<port1\n"
           "echo 'alpha beta' > port0; echo gamma > port0\n"
           "read -r -u 3 a; read -r -u 3 b; echo \"$a|$b\"\n");
    EXPECT_EQ(s.out, "alpha beta|gamma\n") << expect_shell(s);
}

TEST_F(PartialReadTest, HeadCGetsTheRestOfTheSameMessageBeforeTheNext) {
    // The network is removed after the sends: reads drain, then end of file.
    Shell s =
        sh("exec 3<port1\n"
           "printf abcdefgh > port0; printf next > port0\n"
           "head -c 3 <&3; echo\n"
           "cd / && rmdir " +
           sq(net_) +
           "\n"
           "head -c 100 <&3; echo\n");
    EXPECT_EQ(s.out, "abc\ndefghnext\n") << expect_shell(s);
}

TEST_F(PartialReadTest, DdWithOneByteBlocksReadsTheMessageWhole) {
    Shell s =
        sh("exec 3<port1\n"
           "printf 'hello world' > port0\n"
           "dd bs=1 count=11 <&3 2>/dev/null; echo\n");
    EXPECT_EQ(s.out, "hello world\n") << expect_shell(s);
}

TEST_F(PartialReadTest, SedUnbufferedReadsLineByLineAndLeavesTheRest) {
    Shell s =
        sh("exec 3<port1\n"
           "for w in one two stop after; do echo $w > port0; done\n"
           "sed -u -n 's/^/got /p; /stop$/q' <&3\n"
           "read -r -u 3 x; echo \"then $x\"\n");
    EXPECT_EQ(s.out, "got one\ngot two\ngot stop\nthen after\n") << expect_shell(s);
}

TEST_F(PartialReadTest, EventLinesReadWithReadFromTheEventsFile) {
    Shell s =
        sh("exec 3<events\n"
           "exec 4>port2\n"
           "read -r -u 3 a; read -r -u 3 b; read -r -u 3 c; echo \"$a|$b|$c\"\n");
    EXPECT_EQ(s.out, "counts 0 0|join 2|counts 0 1\n") << expect_shell(s);
}

TEST_F(PartialReadTest, ABufferThatFitsStillGetsExactlyOneMessage) {
    Fd reader = open_fd(net_ + "/port1", O_RDONLY);
    Fd writer = open_fd(net_ + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(writer.get(), "first").n, 5);
    ASSERT_EQ(write_msg(writer.get(), "second").n, 6);
    EXPECT_EQ(read_one(reader.get()).data, "first");
    EXPECT_EQ(read_one(reader.get()).data, "second");
    // A buffer of exactly the message's size takes it whole, keeping nothing.
    ASSERT_EQ(write_msg(writer.get(), "exact").n, 5);
    ASSERT_EQ(write_msg(writer.get(), "later").n, 5);
    EXPECT_EQ(read_one(reader.get(), 2000, 5).data, "exact");
    EXPECT_EQ(read_one(reader.get(), 2000, 5).data, "later");
}

TEST_F(PartialReadTest, TheRestStaysWithItsOwnDescriptor) {
    Fd a = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    Fd b = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    Fd writer = open_fd(net_ + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(writer.get(), "AAAAAAAA").n, 8);
    ASSERT_EQ(write_msg(writer.get(), "BBBB").n, 4);
    EXPECT_EQ(read_one(a.get(), 2000, 2).data, "AA");
    EXPECT_EQ(read_one(b.get(), 2000, 100).data, "BBBB") << "B takes the next message";
    char c = 0;
    errno = 0;
    EXPECT_EQ(::read(b.get(), &c, 1), -1) << "A's rest never shows up on B";
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(read_one(a.get(), 2000, 100).data, "AAAAAA");
    // Reopened: a new open file starts with nothing kept.
    ASSERT_EQ(write_msg(writer.get(), "CCCC").n, 4);
    EXPECT_EQ(read_one(a.get(), 2000, 1).data, "C");
    a = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    errno = 0;
    EXPECT_EQ(::read(a.get(), &c, 1), -1) << "closing discarded the rest";
    EXPECT_EQ(errno, EAGAIN);
}

TEST_F(PartialReadTest, PollNextSizeAndNonBlockingReadsSeeTheRest) {
    Fd reader = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    Fd writer = open_fd(net_ + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(writer.get(), "hello").n, 5);
    char c = 0;
    ASSERT_EQ(::read(reader.get(), &c, 1), 1);
    EXPECT_EQ(c, 'h');
    pollfd p{reader.get(), POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 1) << "POLLIN while a rest is kept";
    EXPECT_TRUE((p.revents & POLLIN) != 0);
    std::uint32_t next = 0;
    ASSERT_EQ(ioctl(reader.get(), IPNFS_IOC_NEXT_SIZE, &next), 0);
    EXPECT_EQ(next, 4U) << "IPNFS_IOC_NEXT_SIZE: the rest's size";
    // The kernel answers FIONREAD from the file size (docs/usage.md, Ports).
    int avail = -1;
    ASSERT_EQ(ioctl(reader.get(), FIONREAD, &avail), 0);
    EXPECT_EQ(avail, 65535);
    // Framed records start at a message: not while a rest is kept.
    EXPECT_EQ(set_framed(reader.get(), true), EBUSY);
    char buf[16];
    ASSERT_EQ(::read(reader.get(), buf, 2), 2) << "O_NONBLOCK: the rest, never EAGAIN";
    EXPECT_EQ(std::string(buf, 2), "el");
    ASSERT_EQ(::read(reader.get(), buf, sizeof buf), 2);
    EXPECT_EQ(std::string(buf, 2), "lo");
    p.revents = 0;
    EXPECT_EQ(poll(&p, 1, 0), 0) << "nothing kept, nothing queued";
    errno = 0;
    EXPECT_EQ(::read(reader.get(), buf, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(set_framed(reader.get(), true), 0);
}

TEST_F(PartialReadTest, AParkedOneByteReadKeepsTheRestOfWhatArrives) {
    Fd reader = open_fd(net_ + "/port1", O_RDONLY);
    Fd writer = open_fd(net_ + "/port0", O_WRONLY);
    int fd = reader.get();
    BackgroundCall call(mount_, [fd] { return read_one(fd, 5000, 1); });
    ASSERT_TRUE(call.wait_blocked(2s));
    ASSERT_EQ(write_msg(writer.get(), "xyz").n, 3);
    ASSERT_TRUE(call.wait(2s));
    EXPECT_EQ(call.result().data, "x");
    EXPECT_EQ(read_one(fd, 2000, 1).data, "y");
    EXPECT_EQ(read_one(fd, 2000, 100).data, "z");
}

// A second user, on a network he owns: many descriptors, each left with the
// rest of a 64 KiB message.  What the rests hold counts against the byte
// bounds root set (-o net_mib, -o user_mib), not one MTU per descriptor.
constexpr long kNetMib = 4;
constexpr int kDescriptors = 1500;  // 94 MiB of rests if unbounded
constexpr long kMarginMib = 32;     // allocator slack on a shared machine

class PartialReadBoundTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override {
        return {"allow_other", "net_mib=" + std::to_string(kNetMib), "user_mib=8"};
    }
};

// As nobody: mtu 65535, then for each descriptor one message and a read of 1
// byte; reports the first descriptor's rest size on `ready`, holds
// everything until `done` closes.
int leave_rests_as_nobody(const std::string& net, int ready, int done) {
    rlimit files{8192, 8192};
    if (setrlimit(RLIMIT_NOFILE, &files) != 0 || setgroups(0, nullptr) != 0 ||
        setresgid(kNogroup, kNogroup, kNogroup) != 0 || setresuid(kNobody, kNobody, kNobody) != 0) {
        return 200;
    }
    int ctl = open((net + "/ctl").c_str(), O_WRONLY | O_CLOEXEC);
    if (ctl < 0 || write(ctl, "mtu 65535\n", 10) != 10) return 201;
    int w = open((net + "/port0").c_str(), O_WRONLY | O_CLOEXEC);
    if (w < 0) return 202;
    const std::string message(65535, 'x');
    std::vector<int> fds;
    for (int i = 0; i < kDescriptors; ++i) {
        int fd = open((net + "/port1").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) return 203;
        fds.push_back(fd);
        if (write(w, message.data(), message.size()) != 65535) return 204;
        // Once the bounds are full of rests, the lossy network drops the
        // next message itself (EAGAIN here): both are counted.
        char c = 0;
        if (read(fd, &c, 1) != 1 && errno != EAGAIN) return 205;
    }
    // The first rest is kept whole: read it back.
    std::string rest(65535, '\0');
    ssize_t n = read(fds[0], rest.data(), rest.size());
    std::uint32_t got = n > 0 ? static_cast<std::uint32_t>(n) : 0;
    if (write(ready, &got, sizeof got) != sizeof got) return 206;
    char c = 0;
    (void)read(done, &c, 1);  // until the parent has measured
    for (int fd : fds) close(fd);
    return 0;
}

TEST_F(PartialReadBoundTest, RestsOnManyDescriptorsStayWithinTheByteBounds) {
    std::string net = make_net("big");
    ASSERT_EQ(chown(net.c_str(), kNobody, kNogroup), 0) << std::strerror(errno);
    long before_kib = rss_kib(mount_.pid());
    ASSERT_GT(before_kib, 0);
    std::array<int, 2> ready{-1, -1};
    std::array<int, 2> done{-1, -1};
    ASSERT_EQ(pipe2(ready.data(), O_CLOEXEC), 0);
    ASSERT_EQ(pipe2(done.data(), O_CLOEXEC), 0);
    pid_t child = fork_child([&] {
        close(ready[0]);
        close(done[1]);
        return leave_rests_as_nobody(net, ready[1], done[0]);
    });
    close(ready[1]);
    close(done[0]);
    std::uint32_t first_rest = 0;
    bool held = read(ready[0], &first_rest, sizeof first_rest) == sizeof first_rest;
    long during_kib = rss_kib(mount_.pid());
    Stats st = stats(net);
    std::string text = slurp(net + "/stats");
    close(done[1]);
    close(ready[0]);
    int code = exit_code_of(wait_child(child, std::chrono::seconds(60)));
    ASSERT_TRUE(held) << "the attack as nobody failed: exit code " << code;
    EXPECT_EQ(code, 0);
    EXPECT_EQ(first_rest, 65534U) << "a rest within the bounds is kept whole";
    long grown_mib = (during_kib - before_kib) / 1024;
    EXPECT_LT(grown_mib, kNetMib + kMarginMib)
        << "nobody's rests made the daemon hold " << grown_mib << " MiB";
    EXPECT_GT(st.total("held_bytes"), (kNetMib << 20) / 2) << "the rests are charged\n" << text;
    EXPECT_LE(st.total("held_bytes"), std::uint64_t{kNetMib} << 20);
    EXPECT_GT(st.total("over_limit_drops"), 0U) << "rests beyond the bound are dropped, counted";
    EXPECT_TRUE(eventually([&] { return stats(net).total("held_bytes") == 0; }, 5s))
        << "closing the descriptors gives the rests' bytes back: still "
        << stats(net).total("held_bytes");
    RecordProperty("rss_growth_kib", std::to_string(during_kib - before_kib));
}

}  // namespace
}  // namespace ipnfs_it
