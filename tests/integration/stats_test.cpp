// The stats file: network totals and one row per port in use.
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using StatsTest = IpnfsTest;

TEST_F(StatsTest, AFreshNetworkShowsZeroTotalsAndTheTableHeader) {
    std::string net = make_net("lan");
    auto lines = lines_of(slurp(net + "/stats"));
    const std::vector<std::string> expected{"network lan",
                                            "policy hub",
                                            "ports 32",
                                            "connected 0",
                                            "msgs_in 0",
                                            "bytes_in 0",
                                            "msgs_out 0",
                                            "bytes_out 0",
                                            "drops 0",
                                            "lossless off",
                                            "pool_used 0",
                                            "pool 1024",
                                            "parked_readers 0",
                                            "parked_senders 0",
                                            "event_readers 0",
                                            "capture_readers 0",
                                            "captured 0",
                                            "capture_drops 0",
                                            "held_bytes 0",
                                            "held_limit 67108864",
                                            "owner_held 0",
                                            "owner_limit 0",
                                            "over_limit_drops 0",
                                            "stalls 0",
                                            ""};
    ASSERT_GE(lines.size(), expected.size() + 1);
    EXPECT_EQ(std::vector<std::string>(lines.begin(), lines.begin() + expected.size()), expected);
    Stats st = parse_stats(slurp(net + "/stats"));
    EXPECT_EQ(st.titles,
              (std::vector<std::string>{"port", "readers", "writers", "msgs_in", "bytes_in",
                                        "msgs_out", "bytes_out", "drops", "queued"}));
    EXPECT_TRUE(st.rows.empty()) << "rows for ports nobody used";
    EXPECT_EQ(lines.size(), expected.size() + 1);
}

TEST_F(StatsTest, CountsMessagesAndBytesPerPortAndInTotal) {
    std::string net = make_net("lan");
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    for (int size : {5, 10, 20}) ASSERT_EQ(write_msg(w.get(), std::string(size, 'x')).n, size);
    EXPECT_EQ(read_one(r.get()).n, 5);
    EXPECT_EQ(read_one(r.get()).n, 10);

    Stats st = stats(net);
    EXPECT_EQ(st.totals["network"], "lan");
    EXPECT_EQ(st.total("connected"), 2u);
    EXPECT_EQ(st.total("msgs_in"), 3u);
    EXPECT_EQ(st.total("bytes_in"), 35u);
    EXPECT_EQ(st.total("msgs_out"), 2u);
    EXPECT_EQ(st.total("bytes_out"), 15u);
    EXPECT_EQ(st.total("drops"), 0u);
    ASSERT_EQ(st.rows.size(), 2u);
    const PortRow& reader = st.rows[1];
    EXPECT_EQ(reader.readers, 1u);
    EXPECT_EQ(reader.writers, 0u);
    EXPECT_EQ(reader.msgs_in, 0u);
    EXPECT_EQ(reader.msgs_out, 2u);
    EXPECT_EQ(reader.bytes_out, 15u);
    EXPECT_EQ(reader.queued, 1u);
    const PortRow& writer = st.rows[2];
    EXPECT_EQ(writer.readers, 0u);
    EXPECT_EQ(writer.writers, 1u);
    EXPECT_EQ(writer.msgs_in, 3u);
    EXPECT_EQ(writer.bytes_in, 35u);
    EXPECT_EQ(writer.msgs_out, 0u);
}

TEST_F(StatsTest, RowsForOpenPortsAndPortsWithTraffic) {
    std::string net = make_net("lan");
    {
        Fd both = open_fd(net + "/port7", O_RDWR);
        Fd idle = open_fd(net + "/port9", O_RDONLY);
        Fd idle2 = open_fd(net + "/port9", O_RDONLY);
        Stats st = stats(net);
        EXPECT_EQ(st.total("connected"), 2u);
        ASSERT_EQ(st.rows.count(7), 1u);
        EXPECT_EQ(st.rows[7].readers, 1u);
        EXPECT_EQ(st.rows[7].writers, 1u);
        ASSERT_EQ(st.rows.count(9), 1u);
        EXPECT_EQ(st.rows[9].readers, 2u);
        ASSERT_EQ(write_msg(both.get(), "hi").n, 2);
    }
    // Closed: port 7 (sent) and port 9 (had a message discarded) keep their
    // rows for their counters; nothing is connected.
    Stats st = stats(net);
    EXPECT_EQ(st.total("connected"), 0u);
    ASSERT_EQ(st.rows.count(7), 1u);
    EXPECT_EQ(st.rows[7].readers + st.rows[7].writers, 0u);
    EXPECT_EQ(st.rows[7].msgs_in, 1u);
    ASSERT_EQ(st.rows.count(9), 1u);
    EXPECT_EQ(st.rows[9].drops, 1u);

    // A port opened and closed without traffic leaves no row.
    { Fd quiet = open_fd(net + "/port12", O_RDONLY); }
    EXPECT_EQ(stats(net).rows.count(12), 0u);
}

TEST_F(StatsTest, StatsCannotBeOpenedForWriting) {
    std::string net = make_net("lan");
    EXPECT_EQ(try_open(net + "/stats", O_WRONLY), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(try_open(net + "/stats", O_RDWR), -1);
    EXPECT_EQ(errno, EACCES);
}

TEST_F(StatsTest, EachNetworkHasItsOwnCounters) {
    std::string a = make_net("a");
    std::string b = make_net("b");
    Fd r = open_fd(a + "/port1", O_RDONLY);
    Fd w = open_fd(a + "/port2", O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "x").n, 1);
    EXPECT_EQ(stats(a).total("msgs_in"), 1u);
    Stats sb = stats(b);
    EXPECT_EQ(sb.totals["network"], "b");
    EXPECT_EQ(sb.total("msgs_in"), 0u);
    EXPECT_EQ(sb.total("connected"), 0u);
}

}  // namespace
}  // namespace ipnfs_it
