// Policy counters count messages, not attempts: a message a non-blocking
// writer wrote again after EAGAIN, or a framed write that waited, counts
// once (issue 18, finding 3).
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

class CountersTest : public IpnfsTest {
  protected:
    // A lossless group whose ports hold `queue` messages.
    std::string lossless_group(int queue) {
        std::string net = make_net("g");
        EXPECT_EQ(ctl(net, "policy group\nlossless on\nqueue " + std::to_string(queue) + "\n"), 0)
            << last_error_line(ctl_text(net));
        return net;
    }
    std::uint64_t group_counter(const std::string& net, const std::string& name) {
        return stats(net).counters("group")[name];
    }
};

// write() once, without waiting for POLLOUT: the errno, 0 if it was taken.
int write_now(int fd, const std::string& data) {
    ssize_t n = write(fd, data.data(), data.size());
    return n < 0 ? errno : 0;
}

TEST_F(CountersTest, AUnicastWrittenAgainAfterEagainCountsOnce) {
    std::string net = lossless_group(1);
    ASSERT_EQ(ctl(net, "dest 0 port 1\ndest 2 port 1\n"), 0);
    Fd full = open_fd(net + "/port1", O_RDONLY);  // its reader has stopped
    Fd filler = open_fd(net + "/port2", O_WRONLY);
    Fd w = open_fd(net + "/port0", O_WRONLY | O_NONBLOCK);
    ASSERT_EQ(write_now(filler.get(), "fill"), 0);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(write_now(w.get(), "m"), EAGAIN) << "try " << i;
    ASSERT_EQ(read_one(full.get()).data, "fill");
    ASSERT_EQ(write_now(w.get(), "m"), 0);
    ASSERT_EQ(read_one(full.get()).data, "m");
    EXPECT_EQ(group_counter(net, "unicast"), 2u) << "fill and m, each once";
    EXPECT_EQ(stats(net).total("msgs_in"), 2u);
}

TEST_F(CountersTest, AFramedWriteThatWaitedCountsOnce) {
    std::string net = lossless_group(1);
    Fd full = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port0", O_WRONLY);
    ASSERT_EQ(set_framed(w.get(), true), 0);
    RecordSpec record{"m"};
    record.flags = IPNFS_FLAGS_TO(IPNFS_TO_PORT);
    record.port = 1;
    ASSERT_EQ(write_now(w.get(), encode(record)), 0);
    BackgroundWrite waiting(mount_, w.get(), encode(record));
    ASSERT_TRUE(waiting.wait_blocked(2s)) << "the second record did not wait for room";
    ASSERT_EQ(read_one(full.get()).data, "m");
    ASSERT_TRUE(waiting.wait(2s));
    ASSERT_EQ(read_one(full.get()).data, "m");
    EXPECT_EQ(group_counter(net, "unicast"), 2u) << "two records, each once";
}

// Writers that retry after EAGAIN (poll for POLLOUT, write again) against a
// slow reader: the counters add up to the messages sent.
TEST_F(CountersTest, UnderStressTheCountersEqualTheMessagesSent) {
    constexpr int kWriters = 3;
    constexpr int kEach = 1000;
    std::string net = lossless_group(4);
    Fd r = open_fd(net + "/port0", O_RDONLY);
    std::vector<std::thread> writers;
    std::atomic<int> eagains{0};
    for (int i = 0; i < kWriters; ++i) {
        writers.emplace_back([&, port = i + 1] {
            Fd w = open_fd(net + "/port" + std::to_string(port), O_WRONLY | O_NONBLOCK);
            for (int n = 0; n < kEach;) {
                int err = write_now(w.get(), "m");
                if (err == 0) {
                    ++n;
                } else if (err == EAGAIN) {
                    ++eagains;
                    pollfd pfd{w.get(), POLLOUT, 0};
                    (void)poll(&pfd, 1, 100);
                } else {
                    ADD_FAILURE() << "write: " << err;
                    return;
                }
            }
        });
    }
    int got = 0;
    while (got < kWriters * kEach) {
        Io io = read_one(r.get(), 5000);
        if (io.n < 0) break;
        ++got;
    }
    for (std::thread& t : writers) t.join();
    EXPECT_EQ(got, kWriters * kEach);
    EXPECT_GT(eagains.load(), 0) << "the reader never fell behind: nothing was retried";
    EXPECT_EQ(group_counter(net, "broadcast"), std::uint64_t{kWriters * kEach})
        << eagains.load() << " EAGAINs";
}

}  // namespace
}  // namespace ipnfs_it
