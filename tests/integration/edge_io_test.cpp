// The edges of reads and writes a client can reach (issue 16, findings 16
// and 18): an empty record cannot pass for end of file, ctl and stats read
// from any offset, a write of nothing sends nothing, and FIONREAD's answer
// versus IPNFS_IOC_NEXT_SIZE's.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <string>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

class EdgeIoTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
    }
    std::string net_;
};

int next_size(int fd, std::uint32_t& size) {
    return ioctl(fd, IPNFS_IOC_NEXT_SIZE, &size) == 0 ? 0 : errno;
}

TEST_F(EdgeIoTest, AnEmptyFramedRecordIsRefusedAndNeverReachesAPlainReader) {
    Fd reader = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    Fd writer = open_fd(net_ + "/port0", O_WRONLY);
    ASSERT_EQ(set_framed(writer.get(), true), 0);
    std::string empty = encode("");
    EXPECT_EQ(::write(writer.get(), empty.data(), empty.size()), -1);
    EXPECT_EQ(errno, EINVAL);
    // After a good record, the empty one ends the write: a short write.
    std::string batch = encode("first") + empty + encode("never");
    EXPECT_EQ(::write(writer.get(), batch.data(), batch.size()),
              static_cast<ssize_t>(encode("first").size()));
    Io got = read_one(reader.get(), 500);
    EXPECT_EQ(got.n, 5) << "the reader got " << got.n << " bytes (0 reads as end of file)";
    EXPECT_EQ(got.data, "first");
    got = read_one(reader.get(), 200);
    EXPECT_TRUE(got.timed_out()) << "a second message of " << got.n << " bytes arrived";
    EXPECT_EQ(stats(net_).rows[0].msgs_in, 1U);
}

TEST_F(EdgeIoTest, CtlAndStatsReadFromAnyOffsetFirst) {
    for (const char* file : {"ctl", "stats"}) {
        SCOPED_TRACE(file);
        std::string whole = slurp(net_ + "/" + file);
        ASSERT_GT(whole.size(), 10U);
        Fd fd = open_fd(net_ + "/" + file, O_RDONLY);
        char buf[4096];
        ssize_t n = pread(fd.get(), buf, sizeof buf, 5);
        ASSERT_GT(n, 0) << "a pread at 5 before any read at 0 was end of file";
        // The rendering may differ between two snapshots only in counters.
        EXPECT_EQ(std::string(buf, 8), whole.substr(5, 8));
    }
}

TEST_F(EdgeIoTest, AWriteOfNothingSendsNothing) {
    Fd reader = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    Fd plain = open_fd(net_ + "/port0", O_WRONLY);
    Fd framed = open_fd(net_ + "/port2", O_WRONLY);
    ASSERT_EQ(set_framed(framed.get(), true), 0);
    // The kernel answers a write of 0 bytes itself (docs/usage.md says so).
    EXPECT_EQ(::write(plain.get(), "", 0), 0);
    EXPECT_EQ(::write(framed.get(), "", 0), 0);
    EXPECT_TRUE(read_one(reader.get(), 200).timed_out());
    Stats st = stats(net_);
    EXPECT_EQ(st.rows[0].msgs_in + st.rows[2].msgs_in, 0U);
}

TEST_F(EdgeIoTest, FionreadIsTheFileSizeNextSizeIsTheMessage) {
    Fd reader = open_fd(net_ + "/port1", O_RDONLY | O_NONBLOCK);
    Fd writer = open_fd(net_ + "/port0", O_WRONLY);
    // The VFS answers FIONREAD for regular files from the size: 65535 for a
    // port file, whatever is queued (docs/usage.md).
    int avail = -1;
    ASSERT_EQ(ioctl(reader.get(), FIONREAD, &avail), 0);
    EXPECT_EQ(avail, 65535);
    std::uint32_t size = 99;
    ASSERT_EQ(next_size(reader.get(), size), 0);
    EXPECT_EQ(size, 0U) << "nothing is queued";
    ASSERT_EQ(write_msg(writer.get(), "hello").n, 5);
    ASSERT_EQ(write_msg(writer.get(), "hi").n, 2);
    ASSERT_EQ(next_size(reader.get(), size), 0);
    EXPECT_EQ(size, 5U);
    ASSERT_EQ(next_size(reader.get(), size), 0);
    EXPECT_EQ(size, 5U) << "asking takes nothing";
    EXPECT_EQ(read_one(reader.get()).data, "hello");
    ASSERT_EQ(next_size(reader.get(), size), 0);
    EXPECT_EQ(size, 2U);
    // A writer only has nothing to read.
    EXPECT_EQ(next_size(writer.get(), size), EBADF);
    // events: the length of the next line.
    Fd events = open_fd(net_ + "/events", O_RDONLY | O_NONBLOCK);
    ASSERT_EQ(next_size(events.get(), size), 0);
    EXPECT_EQ(size, std::string("join 0\n").size());
}

}  // namespace
}  // namespace ipnfs_it
