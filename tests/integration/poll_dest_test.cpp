// POLLOUT follows where a writer's messages go (issue 18, finding 4): on a
// lossless group network a full member holds back only the writers whose
// default destination includes it, as TIPC's per-member flow control does.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <future>
#include <string>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using PollDestTest = IpnfsTest;

int write_now(int fd, const std::string& data) {
    ssize_t n = write(fd, data.data(), data.size());
    return n < 0 ? errno : 0;
}

TEST_F(PollDestTest, AFullMemberHoldsBackOnlyTheWritersThatSendToIt) {
    std::string net = make_net("g");
    ASSERT_EQ(ctl(net, "policy group\nlossless on\nqueue 4\ndest 5 port 1\n"), 0)
        << last_error_line(ctl_text(net));
    Fd a = open_fd(net + "/port1", O_RDONLY);  // member A: its reader stopped
    Fd b = open_fd(net + "/port2", O_RDONLY);  // member B: idle
    Fd filler = open_fd(net + "/port5", O_WRONLY);
    for (int i = 0; i < 4; ++i) ASSERT_EQ(write_now(filler.get(), "fill"), 0);

    // W sends to B by default (set on its own descriptor, as a program does).
    Fd w = open_fd(net + "/port0", O_WRONLY | O_NONBLOCK);
    ASSERT_EQ(port_ctl(w.get(), "dest port 2"), 0);
    EXPECT_EQ(poll_now(w.get(), POLLOUT), POLLOUT) << "B has room; only A is full";
    EXPECT_EQ(write_now(w.get(), "to B"), 0);
    EXPECT_EQ(read_one(b.get()).data, "to B");

    // X broadcasts (the default): A is one of its recipients.
    Fd x = open_fd(net + "/port3", O_WRONLY | O_NONBLOCK);
    EXPECT_EQ(poll_now(x.get(), POLLOUT), 0);
    EXPECT_EQ(write_now(x.get(), "to all"), EAGAIN);

    // X waits in poll; A's reader drains, and X is woken.
    auto woken = std::async(std::launch::async, [&] { return poll_now(x.get(), POLLOUT, 5000); });
    EXPECT_EQ(woken.wait_for(300ms), std::future_status::timeout) << "woken while A was full";
    for (int i = 0; i < 4; ++i) ASSERT_EQ(read_one(a.get()).data, "fill");
    EXPECT_EQ(woken.get(), POLLOUT);
    EXPECT_EQ(write_now(x.get(), "to all"), 0);
    EXPECT_EQ(read_one(a.get()).data, "to all");
    EXPECT_EQ(read_one(b.get()).data, "to all");
}

TEST_F(PollDestTest, AnAnycastWriterIsWritableWhileOneHolderHasRoom) {
    std::string net = make_net("g");
    ASSERT_EQ(ctl(net,
                  "policy group\nlossless on\nqueue 1\nmember 1 7\nmember 2 7\n"
                  "dest 0 anycast 7\ndest 3 multicast 7\n"),
              0)
        << last_error_line(ctl_text(net));
    Fd a = open_fd(net + "/port1", O_RDONLY);
    Fd b = open_fd(net + "/port2", O_RDONLY);
    Fd any = open_fd(net + "/port0", O_WRONLY | O_NONBLOCK);
    Fd many = open_fd(net + "/port3", O_WRONLY | O_NONBLOCK);
    ASSERT_EQ(write_now(any.get(), "job1"), 0);  // one holder is full now
    EXPECT_EQ(poll_now(any.get(), POLLOUT), POLLOUT);
    EXPECT_EQ(poll_now(many.get(), POLLOUT), 0) << "a multicast goes to both holders";
    EXPECT_EQ(write_now(many.get(), "all"), EAGAIN);
    EXPECT_EQ(write_now(any.get(), "job2"), 0);
    EXPECT_EQ(poll_now(any.get(), POLLOUT), 0) << "both holders are full";
    EXPECT_EQ(write_now(any.get(), "job3"), EAGAIN);
    EXPECT_EQ(read_one(a.get()).n + read_one(b.get()).n, 8);
}

// A framed descriptor names an address per record: any member may be a
// recipient, so its POLLOUT stays the conservative one.
TEST_F(PollDestTest, AFramedWriterIsHeldBackByAnyFullMember) {
    std::string net = make_net("g");
    ASSERT_EQ(ctl(net, "policy group\nlossless on\nqueue 1\ndest 0 port 2\ndest 5 port 1\n"), 0);
    Fd a = open_fd(net + "/port1", O_RDONLY);
    Fd b = open_fd(net + "/port2", O_RDONLY);
    Fd filler = open_fd(net + "/port5", O_WRONLY);
    ASSERT_EQ(write_now(filler.get(), "fill"), 0);
    Fd w = open_fd(net + "/port0", O_WRONLY | O_NONBLOCK);
    EXPECT_EQ(poll_now(w.get(), POLLOUT), POLLOUT);
    ASSERT_EQ(set_framed(w.get(), true), 0);
    EXPECT_EQ(poll_now(w.get(), POLLOUT), 0);
    (void)a;
    (void)b;
}

}  // namespace
}  // namespace ipnfs_it
