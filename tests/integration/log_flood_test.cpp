// A client can fail requests as fast as it likes; the log must not grow with
// it (issue 16, finding 13): each kind of line a client causes is limited per
// second (bus/log.hpp), and what was held back is counted in the log.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <sstream>
#include <string>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using LogFloodTest = IpnfsTest;

// A write is a FUSE round trip (0.1 to 0.3 ms on the shared 2-core
// machines): 30,000 stay well inside the fixture's 45 s watchdog.
constexpr int kWrites = 30000;

off_t file_size(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

struct CtlErrorLines {
    std::uint64_t shown = 0;       // "nosuchverb: unknown command" lines
    std::uint64_t suppressed = 0;  // the sum of "N more lines like this were suppressed"
};

CtlErrorLines count_ctl_errors(const std::string& log) {
    static const std::regex summary(
        R"(network=lan event=ctl-error: ([0-9]+) more lines like this were suppressed$)");
    CtlErrorLines out;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        if (std::regex_search(line, m, summary)) {
            out.suppressed += std::stoull(m[1]);
        } else if (line.find("network=lan uid=0 event=ctl-error: nosuchverb") !=
                   std::string::npos) {
            ++out.shown;
        }
    }
    return out;
}

TEST_F(LogFloodTest, RefusedCtlLinesAreRateLimitedAndCounted) {
    std::string net = make_net("lan");
    std::string log_file = mount_.dir() + ".log";
    off_t before = file_size(log_file);
    ASSERT_GE(before, 0) << "no log file at " << log_file;
    {
        Fd fd = open_fd(net + "/ctl", O_WRONLY);
        ASSERT_TRUE(fd.ok());
        for (int i = 0; i < kWrites; ++i) {
            ASSERT_EQ(::write(fd.get(), "nosuchverb\n", 11), -1);
            ASSERT_EQ(errno, EINVAL);
        }
    }
    off_t grown = file_size(log_file) - before;
    RecordProperty("log_growth_bytes", static_cast<int>(grown));
    // 30,000 lines would be over 2 MiB; the limit lets through 10 a second
    // per event and network (plus the debug lines of the same requests).
    EXPECT_LT(grown, 256 * 1024) << "the log grew by " << grown << " bytes";

    // A line after the window closes says how many were held back.
    std::this_thread::sleep_for(1100ms);
    EXPECT_EQ(ctl(net, "nosuchverb"), EINVAL);
    CtlErrorLines lines;
    EXPECT_TRUE(eventually(
        [&] {
            lines = count_ctl_errors(read_whole(log_file));
            return lines.shown + lines.suppressed == kWrites + 1;
        },
        3s))
        << lines.shown << " lines shown, " << lines.suppressed << " suppressed";
    EXPECT_GT(lines.suppressed, 0U);
    EXPECT_LT(lines.shown, 1000U);
    // ctl still tells the manager what went wrong, unlimited.
    EXPECT_NE(last_error_line(ctl_text(net)).find("nosuchverb"), std::string::npos);
}

TEST_F(LogFloodTest, LongRefusedCtlLinesAreCutInTheLog) {
    // The limiter counts lines; a line quoting a 64 KiB ctl write would let
    // 10 a second through at 131 KB each (6.5 MB/s from one user).
    std::string net = make_net("lan");
    std::string log_file = mount_.dir() + ".log";
    off_t before = file_size(log_file);
    ASSERT_GE(before, 0) << "no log file at " << log_file;
    const std::string line(65535, 'a');
    {
        Fd fd = open_fd(net + "/ctl", O_WRONLY);
        ASSERT_TRUE(fd.ok());
        const auto t0 = Clock::now();
        for (int i = 0; i < 300 && seconds_since(t0) < 3.0; ++i) {
            ASSERT_EQ(::write(fd.get(), line.data(), line.size()), -1);
            ASSERT_EQ(errno, EINVAL);
        }
    }
    off_t grown = file_size(log_file) - before;
    RecordProperty("log_growth_bytes", static_cast<int>(grown));
    EXPECT_LT(grown, 256 * 1024) << "the log grew by " << grown << " bytes";
    EXPECT_NE(read_whole(log_file).find(" bytes in all)"), std::string::npos);
}

}  // namespace
}  // namespace ipnfs_it
