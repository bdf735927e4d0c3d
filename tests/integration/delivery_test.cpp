// Who gets a message, in which pieces, and what is lost.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using DeliveryTest = IpnfsTest;

// Nothing is waiting on fd: a short poll finds no message.
void expect_nothing(int fd, const char* who) {
    Io io = read_one(fd, 200);
    EXPECT_TRUE(io.timed_out()) << who << " unexpectedly got '" << io.data << "' (n=" << io.n
                                << ", errno " << io.err << ")";
}

TEST_F(DeliveryTest, HubDeliversToEveryReaderButTheSendersPort) {
    std::string net = make_net("lan");
    Fd sender = open_fd(net + "/port1", O_RDWR);
    Fd sender_too = open_fd(net + "/port1", O_RDONLY);  // another reader of the sender's port
    Fd r2 = open_fd(net + "/port2", O_RDONLY);
    Fd r3 = open_fd(net + "/port3", O_RDWR);
    Fd writer_only = open_fd(net + "/port4", O_WRONLY);

    Io w = write_msg(sender.get(), "hello");
    ASSERT_EQ(w.n, 5) << std::strerror(w.err);

    for (const Fd* r : {&r2, &r3}) {
        Io io = read_one(r->get());
        EXPECT_EQ(io.data, "hello");
    }
    expect_nothing(sender.get(), "the sender");
    expect_nothing(sender_too.get(), "another reader of the sender's port");

    // A port nobody reads is not a recipient: its first reader finds nothing.
    Fd late = open_fd(net + "/port4", O_RDONLY);
    expect_nothing(late.get(), "a port that had no reader when the message was sent");
}

TEST_F(DeliveryTest, LoopbackDeliversToTheSendersOwnPort) {
    std::string net = make_net("lan");
    Fd self = open_fd(net + "/port1", O_RDWR);
    Fd other = open_fd(net + "/port2", O_RDONLY);

    ASSERT_EQ(ctl(net, "loopback 1 on\n"), 0);
    ASSERT_EQ(write_msg(self.get(), "echo").n, 4);
    EXPECT_EQ(read_one(self.get()).data, "echo");
    EXPECT_EQ(read_one(other.get()).data, "echo");

    ASSERT_EQ(ctl(net, "loopback 1 off\n"), 0);
    ASSERT_EQ(write_msg(self.get(), "quiet").n, 5);
    EXPECT_EQ(read_one(other.get()).data, "quiet");
    expect_nothing(self.get(), "the sender after loopback off");
}

TEST_F(DeliveryTest, EachReadReturnsExactlyOneMessage) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port0", O_RDONLY);
    Fd w = open_fd(net + "/port1", O_WRONLY);
    const std::string binary("a\0b\nc\0", 6);
    const std::vector<std::string> sent{"a", "bb", "ccc", binary, std::string(1514, 'x'), "\n"};
    for (const auto& m : sent) ASSERT_EQ(write_msg(w.get(), m).n, static_cast<ssize_t>(m.size()));
    for (const auto& m : sent) {
        Io io = read_one(r.get());
        ASSERT_EQ(io.n, static_cast<ssize_t>(m.size())) << std::strerror(io.err);
        EXPECT_EQ(io.data, m);
    }
    expect_nothing(r.get(), "the reader after the last message");

    // A buffer far larger than a message (and than a FUSE request) still
    // gets one message.
    ASSERT_EQ(write_msg(w.get(), "one").n, 3);
    ASSERT_EQ(write_msg(w.get(), "two").n, 3);
    EXPECT_EQ(read_one(r.get(), 2000, 1 << 20).data, "one");
    EXPECT_EQ(read_one(r.get(), 2000, 1 << 20).data, "two");
}

TEST_F(DeliveryTest, ShortBufferGetsTheFirstBytesAndTheNextReadTheRest) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port0", O_RDONLY);
    Fd w = open_fd(net + "/port1", O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "abcdefghij").n, 10);
    ASSERT_EQ(write_msg(w.get(), "next").n, 4);
    Io first = read_one(r.get(), 2000, 4);
    EXPECT_EQ(first.data, "abcd");
    // The rest of the first message comes before the next one, and a read
    // never spans two messages (tests/integration/partial_read_test.cpp).
    EXPECT_EQ(read_one(r.get()).data, "efghij");
    EXPECT_EQ(read_one(r.get()).data, "next");
    expect_nothing(r.get(), "the reader after two messages");
}

TEST_F(DeliveryTest, DescriptorsOnOnePortShareOneQueue) {
    std::string net = make_net("lan");
    Fd a = open_fd(net + "/port1", O_RDONLY | O_NONBLOCK);
    Fd b = open_fd(net + "/port1", O_RDONLY | O_NONBLOCK);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    constexpr int kCount = 10;
    for (int i = 0; i < kCount; ++i) {
        ASSERT_GT(write_msg(w.get(), "m" + std::to_string(i)).n, 0);
    }
    std::vector<std::string> got;
    for (int i = 0; i < kCount; ++i) {
        Io io = read_one(i % 2 == 0 ? a.get() : b.get());
        ASSERT_GT(io.n, 0) << "read " << i << ": " << std::strerror(io.err);
        got.push_back(io.data);
    }
    // Each message was consumed by exactly one descriptor, in order.
    for (int i = 0; i < kCount; ++i) EXPECT_EQ(got[i], "m" + std::to_string(i));
    char c;
    EXPECT_EQ(read(a.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    EXPECT_EQ(read(b.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
}

TEST_F(DeliveryTest, FullQueueDropsAreCountedAndOtherReadersAreUnaffected) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "queue 4\n"), 0);
    Fd slow = open_fd(net + "/port1", O_RDONLY | O_NONBLOCK);
    Fd fast = open_fd(net + "/port3", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    for (int i = 0; i < 10; ++i) {
        ASSERT_EQ(write_msg(w.get(), "m" + std::to_string(i)).n, 2);
        EXPECT_EQ(read_one(fast.get()).data, "m" + std::to_string(i));  // keeps up: no loss
    }
    // The slow reader's queue kept the first four.
    for (int i = 0; i < 4; ++i) EXPECT_EQ(read_one(slow.get()).data, "m" + std::to_string(i));
    char c;
    EXPECT_EQ(read(slow.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);

    Stats st = stats(net);
    EXPECT_EQ(st.total("drops"), 6u);
    EXPECT_EQ(st.rows[1].drops, 6u);
    EXPECT_EQ(st.rows[1].msgs_out, 4u);
    EXPECT_EQ(st.rows[3].drops, 0u);
    EXPECT_EQ(st.rows[3].msgs_out, 10u);
}

TEST_F(DeliveryTest, LastReaderClosingDiscardsQueuedMessagesAsDrops) {
    std::string net = make_net("lan");
    Fd r1 = open_fd(net + "/port1", O_RDONLY);
    Fd r2 = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(write_msg(w.get(), "x").n, 1);
    EXPECT_EQ(stats(net).rows[1].queued, 3u);

    r1.reset();  // another reader remains: nothing is lost
    EXPECT_EQ(stats(net).rows[1].queued, 3u);
    EXPECT_EQ(stats(net).total("drops"), 0u);

    r2.reset();
    Stats st = stats(net);
    EXPECT_EQ(st.total("drops"), 3u);
    EXPECT_EQ(st.rows[1].drops, 3u);
    EXPECT_EQ(st.rows[1].queued, 0u);

    // The next reader of port1 starts empty.
    Fd r3 = open_fd(net + "/port1", O_RDONLY);
    expect_nothing(r3.get(), "a new reader of a port whose queue was discarded");
}

}  // namespace
}  // namespace ipnfs_it
