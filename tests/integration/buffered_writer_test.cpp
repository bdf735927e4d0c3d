// Buffered writers (Python's files, C's stdio through coreutils) over a
// port: they size their buffers from st_blksize, so a port file must report
// one that holds a whole message, or a long line leaves as several messages.
#include <fcntl.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

class BufferedWriterTest : public IpnfsTest {
  protected:
    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
        ASSERT_EQ(ctl(net_, "mtu 65535\n"), 0);
        rx_ = open_fd(net_ + "/port0", O_RDONLY);
    }
    void TearDown() override {
        rx_.reset();  // an open file would keep the mount busy
        IpnfsTest::TearDown();
    }

    // The sizes of the messages queued for port 0, each read whole.
    std::vector<std::size_t> received() {
        std::vector<std::size_t> sizes;
        for (Io m = read_one(rx_.get(), 1000); m.n > 0; m = read_one(rx_.get(), 200)) {
            sizes.push_back(static_cast<std::size_t>(m.n));
        }
        return sizes;
    }

    std::string net_;
    Fd rx_;
};

using Sizes = std::vector<std::size_t>;

TEST_F(BufferedWriterTest, PortFilesReportABlockSizeThatHoldsAnyMessage) {
    for (const char* name : {"port1", "clone"}) {
        struct stat st {};
        ASSERT_EQ(stat((net_ + "/" + name).c_str(), &st), 0) << name;
        EXPECT_EQ(st.st_blksize, 65536) << name;
    }
    struct stat st {};
    ASSERT_EQ(stat((net_ + "/ctl").c_str(), &st), 0);
    EXPECT_EQ(st.st_blksize, 4096) << "ctl carries text, not messages";
}

TEST_F(BufferedWriterTest, PythonLineBufferingSendsALongLineAsOneMessage) {
    if (run_argv({"python3", "--version"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("python3 is not available");
    }
    Shell py = run_argv({"python3", "-c",
                         "import sys\n"
                         "with open(sys.argv[1], 'w', buffering=1) as f:\n"
                         "    print('y' * 9999, file=f)\n"
                         "    print('short', file=f)\n",
                         net_ + "/port1"},
                        15);
    ASSERT_EQ(py.exit_code(), 0) << py.err;
    EXPECT_EQ(received(), (Sizes{10000, 6})) << "a line went out in pieces";
}

TEST_F(BufferedWriterTest, StdbufLineBufferedCoreutilsSendALongLineAsOneMessage) {
    Shell sh =
        run_shell("printf '%6000s\\nab\\n' x | stdbuf -oL tr x y > " + sq(net_ + "/port1"), 15);
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_EQ(received(), (Sizes{6001, 3})) << "a line went out in pieces";
}

}  // namespace
}  // namespace ipnfs_it
