// Framed I/O (include/ipnfs.h): records in, records out, and the ioctls.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

class FramedTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
    }
    std::string port(int n) const { return net_ + "/port" + std::to_string(n); }
    // A port file opened and switched to framed mode.
    Fd open_framed(int n, int flags) {
        Fd fd = open_fd(port(n), flags);
        if (fd.ok()) {
            EXPECT_EQ(set_framed(fd.get(), true), 0) << "IPNFS_IOC_SET_FRAMED";
        }
        return fd;
    }

    std::string net_;
};

std::string payload_of(int i) {
    return "record-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 13), '.');
}

TEST_F(FramedTest, GetPortTellsWhichPortADescriptorIsOn) {
    Fd p7 = open_fd(port(7), O_RDONLY);
    std::uint32_t got = 99;
    ASSERT_EQ(get_port(p7.get(), got), 0) << "IPNFS_IOC_GET_PORT";
    EXPECT_EQ(got, 7u);
    Fd p0 = open_fd(port(0), O_RDONLY);
    Fd c = open_fd(net_ + "/clone", O_WRONLY);
    ASSERT_EQ(get_port(c.get(), got), 0);
    EXPECT_EQ(got, 1u) << "the lowest port nobody has open";
    Stats st = stats(net_);
    ASSERT_EQ(st.rows.count(got), 1u);
    EXPECT_EQ(st.rows[got].writers, 1u) << "stats shows the clone on another port";
    ASSERT_EQ(write_msg(c.get(), "x").n, 1);
    EXPECT_EQ(stats(net_).rows[got].msgs_in, 1u);
    // Not a port file: no such ioctl.
    Fd ctl_fd = open_fd(net_ + "/ctl", O_RDONLY);
    EXPECT_EQ(get_port(ctl_fd.get(), got), ENOTTY);
    EXPECT_EQ(set_framed(ctl_fd.get(), true), ENOTTY);
    // An unknown ioctl on a port file.
    int value = 0;
    EXPECT_EQ(ioctl(p7.get(), _IOW(IPNFS_IOC_MAGIC, 99, int), &value), -1);
    EXPECT_EQ(errno, ENOTTY);
}

TEST_F(FramedTest, ABatchOf100RecordsInOneWriteArrivesInOneRead) {
    ASSERT_EQ(ctl(net_, "queue 128\n"), 0);
    Fd r = open_framed(1, O_RDONLY);
    Fd plain = open_fd(port(3), O_RDONLY);
    Fd w = open_framed(2, O_WRONLY);
    std::string batch;
    for (int i = 0; i < 100; ++i) batch += encode(payload_of(i));
    ASSERT_EQ(::write(w.get(), batch.data(), batch.size()), static_cast<ssize_t>(batch.size()))
        << std::strerror(errno);
    EXPECT_EQ(stats(net_).rows[2].msgs_in, 100u) << "each record is one message";

    Framed f = read_framed(r.get(), 65536);
    ASSERT_GT(f.io.n, 0) << std::strerror(f.io.err);
    ASSERT_EQ(f.records.size(), 100u) << "one read() of a large buffer returns every record";
    std::uint64_t last_seq = 0;
    for (int i = 0; i < 100; ++i) {
        SCOPED_TRACE("record " + std::to_string(i));
        const Record& rec = f.records[i];
        EXPECT_EQ(rec.header.kind, IPNFS_DATA);
        EXPECT_EQ(rec.header.version, IPNFS_FRAME_VERSION);
        EXPECT_EQ(rec.header.port, 2u);
        EXPECT_EQ(rec.header.flags, 0u);
        EXPECT_EQ(rec.header.len, payload_of(i).size());
        EXPECT_EQ(rec.payload, payload_of(i));
        EXPECT_EQ(rec.size, IPNFS_RECORD_SIZE(payload_of(i).size()));
        EXPECT_GT(rec.header.seq, last_seq);
        last_seq = rec.header.seq;
    }
    EXPECT_EQ(static_cast<std::size_t>(f.io.n), batch.size()) << "records were padded differently";
    EXPECT_TRUE(read_one(r.get(), 200).timed_out());
    // A plain reader of the same network gets them as 100 messages.
    auto got = drain(plain.get());
    ASSERT_EQ(got.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], payload_of(i));
}

TEST_F(FramedTest, ASmallBufferGetsOnlyWholeRecords) {
    Fd r = open_framed(1, O_RDONLY);
    Fd w = open_framed(2, O_WRONLY);
    std::string batch;
    for (int i = 0; i < 5; ++i) batch += encode("eight-" + std::to_string(i) + "!");  // 8 bytes
    ASSERT_EQ(::write(w.get(), batch.data(), batch.size()), 5 * 32);
    Framed first = read_framed(r.get(), 100);  // room for 3 records of 32 bytes
    EXPECT_EQ(first.io.n, 96);
    ASSERT_EQ(first.records.size(), 3u);
    Framed second = read_framed(r.get(), 100);
    EXPECT_EQ(second.io.n, 64);
    ASSERT_EQ(second.records.size(), 2u);
    for (int i = 0; i < 5; ++i) {
        const Record& rec = i < 3 ? first.records[i] : second.records[i - 3];
        EXPECT_EQ(rec.payload, "eight-" + std::to_string(i) + "!");
        EXPECT_EQ(rec.header.flags, 0u);
    }
    EXPECT_TRUE(read_one(r.get(), 200).timed_out());
}

TEST_F(FramedTest, AFirstRecordThatDoesNotFitIsTruncated) {
    Fd r = open_framed(1, O_RDONLY);
    Fd w = open_fd(port(2), O_WRONLY);
    const std::string big(100, 'B');
    ASSERT_EQ(write_msg(w.get(), big).n, 100);
    ASSERT_EQ(write_msg(w.get(), "next").n, 4);
    ASSERT_EQ(write_msg(w.get(), std::string(40, 'C')).n, 40);
    Framed cut = read_framed(r.get(), 50);
    ASSERT_EQ(cut.records.size(), 1u);
    const Record& rec = cut.records[0];
    EXPECT_EQ(rec.header.flags & IPNFS_FLAG_TRUNCATED, IPNFS_FLAG_TRUNCATED);
    EXPECT_EQ(rec.header.len, 100u) << "len is the full length";
    EXPECT_EQ(rec.payload, std::string(50 - 24, 'B'));
    EXPECT_EQ(rec.header.port, 2u);
    // The rest of the cut message is gone; the next one is whole.
    Framed next = read_framed(r.get(), 4096);
    ASSERT_EQ(next.records.size(), 2u);
    EXPECT_EQ(next.records[0].payload, "next");
    EXPECT_EQ(next.records[0].header.flags, 0u);
    EXPECT_EQ(next.records[1].payload, std::string(40, 'C'));
    // A buffer of exactly one header: the header alone, marked truncated.
    ASSERT_EQ(write_msg(w.get(), "abc").n, 3);
    Framed header_only = read_framed(r.get(), sizeof(ipnfs_record));
    EXPECT_EQ(header_only.io.n, static_cast<ssize_t>(sizeof(ipnfs_record)));
    ASSERT_EQ(header_only.records.size(), 1u);
    EXPECT_EQ(header_only.records[0].header.len, 3u);
    EXPECT_EQ(header_only.records[0].header.flags & IPNFS_FLAG_TRUNCATED, IPNFS_FLAG_TRUNCATED);
}

TEST_F(FramedTest, AFramedReadSmallerThanAHeaderIsEINVAL) {
    Fd r = open_framed(1, O_RDONLY | O_NONBLOCK);
    Fd w = open_fd(port(2), O_WRONLY);
    char buf[64];
    EXPECT_EQ(read(r.get(), buf, 23), -1);
    EXPECT_EQ(errno, EINVAL) << "even with nothing queued";
    ASSERT_EQ(write_msg(w.get(), "kept").n, 4);
    EXPECT_EQ(read(r.get(), buf, 23), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(read(r.get(), buf, 1), -1);
    EXPECT_EQ(errno, EINVAL);
    Framed f = read_framed(r.get(), 64);
    ASSERT_EQ(f.records.size(), 1u) << "the refused read took the message";
    EXPECT_EQ(f.records[0].payload, "kept");
}

TEST_F(FramedTest, AMalformedFirstRecordIsEINVALAndSendsNothing) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_framed(2, O_WRONLY);
    struct Case {
        const char* what;
        std::string bytes;
    };
    std::string good = encode("ok");
    std::vector<Case> cases{
        {"version 2", encode(RecordSpec{"x", IPNFS_DATA, 2})},
        {"version 0", encode(RecordSpec{"x", IPNFS_DATA, 0})},
        {"kind join", encode(RecordSpec{"x", IPNFS_JOIN})},
        {"kind counts", encode(RecordSpec{"12345678", IPNFS_COUNTS})},
        {"unknown kind", encode(RecordSpec{"x", 77})},
        {"flags set",
         encode(RecordSpec{"x", IPNFS_DATA, IPNFS_FRAME_VERSION, IPNFS_FLAG_TRUNCATED})},
        {"len past the end", encode(RecordSpec{"x", IPNFS_DATA, IPNFS_FRAME_VERSION, 0, 64})},
        {"len past the end, then a good record",
         encode(RecordSpec{"x", IPNFS_DATA, IPNFS_FRAME_VERSION, 0, 100}) + good + good},
        {"less than a header", good.substr(0, 10)},
        {"one byte", std::string(1, '\0')},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        EXPECT_EQ(::write(w.get(), c.bytes.data(), c.bytes.size()), -1);
        EXPECT_EQ(errno, EINVAL);
    }
    EXPECT_TRUE(drain(r.get()).empty()) << "a refused write delivered something";
    EXPECT_EQ(stats(net_).rows[2].msgs_in, 0u);
}

TEST_F(FramedTest, AMalformedLaterRecordMakesTheWriteShort) {
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_framed(2, O_WRONLY);
    std::string two = encode("one") + encode("two");
    std::string bad = encode(RecordSpec{"bad", IPNFS_DATA, 9});
    std::string batch = two + bad + encode("never");
    EXPECT_EQ(::write(w.get(), batch.data(), batch.size()), static_cast<ssize_t>(two.size()));
    // A later record cut short by the end of the write.
    std::string cut = encode("three") + encode("four").substr(0, 20);
    EXPECT_EQ(::write(w.get(), cut.data(), cut.size()), static_cast<ssize_t>(IPNFS_RECORD_SIZE(5)));
    // A later record larger than the MTU.
    ASSERT_EQ(ctl(net_, "mtu 100\n"), 0);
    std::string too_big = encode("five") + encode(std::string(101, 'x'));
    EXPECT_EQ(::write(w.get(), too_big.data(), too_big.size()),
              static_cast<ssize_t>(IPNFS_RECORD_SIZE(4)));
    // As the first record it is refused like a plain message.
    std::string big_first = encode(std::string(101, 'x'));
    EXPECT_EQ(::write(w.get(), big_first.data(), big_first.size()), -1);
    EXPECT_EQ(errno, EMSGSIZE);
    EXPECT_EQ(drain(r.get()), (std::vector<std::string>{"one", "two", "three", "five"}));
}

TEST_F(FramedTest, FramedAndPlainDescriptorsInteroperate) {
    Fd plain_r = open_fd(port(1), O_RDONLY);
    Fd framed_r = open_framed(2, O_RDONLY);
    Fd plain_w = open_fd(port(3), O_WRONLY);
    Fd framed_w = open_framed(4, O_WRONLY);
    ASSERT_EQ(write_msg(plain_w.get(), "from plain").n, 10);
    std::string rec = encode("from framed");
    ASSERT_EQ(::write(framed_w.get(), rec.data(), rec.size()), static_cast<ssize_t>(rec.size()));

    EXPECT_EQ(drain(plain_r.get()), (std::vector<std::string>{"from plain", "from framed"}));
    Framed f = read_framed(framed_r.get(), 4096);
    ASSERT_EQ(f.records.size(), 2u);
    EXPECT_EQ(f.records[0].header.port, 3u);
    EXPECT_EQ(f.records[0].payload, "from plain");
    EXPECT_EQ(f.records[1].header.port, 4u);
    EXPECT_EQ(f.records[1].payload, "from framed");

    // Framed mode is per descriptor, and can be turned off again.
    Fd plain_r2 = open_fd(port(2), O_RDONLY);  // the framed reader's port, plain
    ASSERT_EQ(write_msg(plain_w.get(), "shared").n, 6);
    Io io = read_one(plain_r2.get());
    EXPECT_EQ(io.data, "shared") << "a plain descriptor of a framed reader's port";
    EXPECT_EQ(read_one(plain_r.get()).data, "shared");
    ASSERT_EQ(set_framed(framed_w.get(), false), 0);
    ASSERT_EQ(write_msg(framed_w.get(), "plain again").n, 11);
    EXPECT_EQ(read_one(plain_r.get()).data, "plain again");
}

TEST_F(FramedTest, SeqIsOneTotalOrderSharedByEveryReader) {
    Fd a = open_framed(1, O_RDONLY);
    Fd b = open_framed(2, O_RDONLY);
    Fd w1 = open_fd(port(3), O_WRONLY);
    Fd w2 = open_fd(port(4), O_WRONLY);
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(write_msg((i % 2 ? w1 : w2).get(), "m" + std::to_string(i)).n, 2);
        if (i == 2) {
            Fd joiner = open_fd(port(9), O_RDONLY);  // a join and a leave in between
        }
    }
    Framed fa = read_framed(a.get(), 4096);
    Framed fb = read_framed(b.get(), 4096);
    ASSERT_EQ(fa.records.size(), 5u);
    ASSERT_EQ(fb.records.size(), 5u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(fa.records[i].payload, "m" + std::to_string(i));
        EXPECT_EQ(fa.records[i].header.seq, fb.records[i].header.seq) << "one message, one seq";
        EXPECT_EQ(fa.records[i].header.port, i % 2 ? 3u : 4u);
        if (i > 0) {
            EXPECT_GT(fa.records[i].header.seq, fa.records[i - 1].header.seq);
        }
    }
}

TEST_F(FramedTest, LosslessOnlyTheFirstRecordOfAWriteMayWait) {
    ASSERT_EQ(ctl(net_, "lossless on\nqueue 2\n"), 0);
    Fd r = open_fd(port(1), O_RDONLY);
    Fd w = open_framed(2, O_WRONLY);
    std::string batch;
    for (int i = 0; i < 5; ++i) batch += encode("r" + std::to_string(i));
    const std::size_t rec = IPNFS_RECORD_SIZE(2);
    // Two fit; the third would wait: the write stops short after two.
    ASSERT_EQ(::write(w.get(), batch.data(), batch.size()), static_cast<ssize_t>(2 * rec));
    std::string rest = batch.substr(2 * rec);
    // Non-blocking: the first record would wait, so EAGAIN.
    Fd nb = open_framed(2, O_WRONLY | O_NONBLOCK);
    EXPECT_EQ(::write(nb.get(), rest.data(), rest.size()), -1);
    EXPECT_EQ(errno, EAGAIN);
    // Blocking: the first record waits for room, and the write returns whole records.
    ssize_t n = 0;
    {
        BackgroundWrite blocked(mount_, w.get(), rest);
        ASSERT_TRUE(blocked.wait_blocked(2s)) << "the first record did not wait";
        EXPECT_EQ(read_one(r.get()).data, "r0");
        ASSERT_TRUE(blocked.wait(3s));
        n = blocked.result().n;
    }
    ASSERT_GT(n, 0);
    EXPECT_EQ(n % static_cast<ssize_t>(rec), 0) << "a short write must end on a record";
    std::size_t sent = 2 + static_cast<std::size_t>(n) / rec;
    std::vector<std::string> got{"r0"};
    for (auto& m : drain(r.get())) got.push_back(m);
    std::vector<std::string> expected;
    for (std::size_t i = 0; i < sent; ++i) expected.push_back("r" + std::to_string(i));
    EXPECT_EQ(got, expected) << "the reader got other records than the writes reported";
}

}  // namespace
}  // namespace ipnfs_it
