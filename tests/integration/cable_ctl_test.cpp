// Cables inside the daemon, as a user drives them through ctl: two switch
// networks joined by `cable` carry a ping between namespaces; a ring of
// cables carries a broadcast a bounded number of times and then falls quiet;
// removing a network takes its cables with it; and joining networks needs
// CAP_NET_ADMIN.
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "ether.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

// One row of a network's cables table: cable_to port peer_port state
// frames_in bytes_in frames_out bytes_out drops hop_drops.
struct CableRow {
    unsigned port = 0, peer_port = 0;
    std::string state;
    std::uint64_t frames_in = 0, frames_out = 0, drops = 0, hop_drops = 0;
};

std::map<std::string, CableRow> cable_rows(const std::string& stats_text) {
    std::map<std::string, CableRow> rows;
    const ipnfs::stats_text::Table table = parse_stats(stats_text).table("cable_to");
    for (const auto& row : table.rows) {
        CableRow r;
        r.port = static_cast<unsigned>(table.number(row, "port"));
        r.peer_port = static_cast<unsigned>(table.number(row, "peer_port"));
        r.state = row.at(3);
        r.frames_in = table.number(row, "frames_in");
        r.frames_out = table.number(row, "frames_out");
        r.drops = table.number(row, "drops");
        r.hop_drops = table.number(row, "hop_drops");
        rows[row.at(0)] = r;
    }
    return rows;
}

bool has_line(const std::string& text, const std::string& line) {
    for (const std::string& l : lines_of(text)) {
        if (l == line) return true;
    }
    return false;
}

class CableCtlTest : public NetdevTest {
  protected:
    std::vector<std::string> tools() const override { return {"ping", "timeout", "setpriv"}; }
    std::map<std::string, CableRow> cables(const std::string& net) {
        return cable_rows(slurp(net + "/stats"));
    }
};

TEST_F(CableCtlTest, TwoSwitchNetworksJoinedByACableCarryAPing) {
    std::string left = make_net("left");
    std::string right = make_net("right");
    ASSERT_EQ(ctl(left, "policy switch"), 0);
    ASSERT_EQ(ctl(right, "policy switch"), 0);
    ASSERT_EQ(ctl(left, "cable right 31 31"), 0) << last_error_line(ctl_text(left));
    NetNs a;
    NetNs b;
    ASSERT_TRUE(a.ok()) << a.error();
    ASSERT_TRUE(b.ok()) << b.error();
    ASSERT_TRUE(tap_into(left, ifname("ta"), a, {"10.93.1.1/24"}));
    ASSERT_TRUE(tap_into(right, ifname("tb"), b, {"10.93.1.2/24"}));
    Shell ping = a.ping("10.93.1.2", 3);
    EXPECT_EQ(ping.exit_code(), 0) << describe(ping);

    EXPECT_TRUE(has_line(ctl_text(left), "cable right 31 31")) << ctl_text(left);
    auto rows = cables(right);
    ASSERT_TRUE(rows.contains("left")) << slurp(right + "/stats");
    EXPECT_EQ(rows["left"].state, "running");
    EXPECT_GE(rows["left"].frames_in, 3U);  // echo requests, after ARP
    EXPECT_GE(rows["left"].frames_out, 3U);
    EXPECT_EQ(rows["left"].drops, 0U);
}

TEST_F(CableCtlTest, ARingOfCablesCarriesABroadcastABoundedNumberOfTimes) {
    for (const char* n : {"a", "b", "c"}) {
        std::string net = make_net(n);
        ASSERT_EQ(ctl(net, "policy switch"), 0);
    }
    // From a shell, as an administrator would.
    Shell ring = run_shell("cd " + sq(mount_.dir()) +
                           " || exit 1; echo 'cable b' > a/ctl && echo 'cable c' > b/ctl && "
                           "echo 'cable a' > c/ctl");
    ASSERT_EQ(ring.exit_code(), 0) << ring.err;

    Fd reader = open_fd(p("a/port9"), O_RDONLY);
    Fd sender = open_fd(p("a/port5"), O_WRONLY);
    ASSERT_TRUE(reader.ok() && sender.ok());
    Frame f;
    f.dst = kBroadcast;
    f.src = {0x02, 0, 0, 0, 0, 5};
    f.type = 0x88b5;
    f.payload = "round and round";
    const std::string frame = build_frame(f);
    ASSERT_EQ(write_msg(sender.get(), frame).n, static_cast<ssize_t>(frame.size()));
    // The ring both ways brings it back after 3 and 6 crossings; the 9th is
    // refused (hop limit 8).  The sender's MAC moves between ports as the
    // copies come back, but a broadcast floods whatever was learned.
    int copies = 0;
    for (;;) {
        Io io = read_one(reader.get(), 500);
        if (io.timed_out()) break;
        ASSERT_EQ(io.data, frame);
        ++copies;
    }
    EXPECT_EQ(copies, 5);
    std::uint64_t hop_drops = 0;
    for (const char* n : {"a", "b", "c"}) {
        for (const auto& [to, row] : cables(p(n))) hop_drops += row.hop_drops;
    }
    EXPECT_EQ(hop_drops, 2U);

    // Quiet afterwards.
    EXPECT_TRUE(read_one(reader.get(), 300).timed_out());

    // rmdir b ends both of b's cables.  The one between a and c stays; c
    // made it, so c's ctl shows it.
    ASSERT_EQ(::rmdir(p("b").c_str()), 0);
    auto rows = cables(p("a"));
    EXPECT_FALSE(rows.contains("b"));
    EXPECT_TRUE(rows.contains("c"));
    EXPECT_FALSE(has_line(ctl_text(p("a")), "cable b 0 0")) << ctl_text(p("a"));
    EXPECT_TRUE(has_line(ctl_text(p("c")), "cable a 1 1")) << ctl_text(p("c"));
}

TEST_F(CableCtlTest, JoiningNetworksNeedsCapNetAdmin) {
    std::string a = make_net("a");
    make_net("b");
    const std::string drop = "setpriv --inh-caps=-net_admin --bounding-set=-net_admin ";
    Shell sh = root_sh(drop + "/bin/echo 'cable b' > " + sq(a + "/ctl"), 10);
    EXPECT_NE(sh.exit_code(), 0);
    EXPECT_NE(sh.err.find("Operation not permitted"), std::string::npos) << sh.err;
    EXPECT_NE(last_error_line(ctl_text(a)).find("cable needs CAP_NET_ADMIN"), std::string::npos)
        << ctl_text(a);
    EXPECT_TRUE(cables(a).empty());
}

TEST_F(CableCtlTest, ErrorsAUserCanCauseAreReadBackFromCtl) {
    std::string a = make_net("a");
    make_net("b");
    EXPECT_EQ(ctl(a, "cable nosuch"), ENOENT);
    EXPECT_NE(last_error_line(ctl_text(a)).find("no network nosuch"), std::string::npos);
    EXPECT_EQ(ctl(a, "cable a"), EINVAL);
    EXPECT_EQ(ctl(a, "cable b 99"), EINVAL);
    EXPECT_EQ(ctl(a, "uncable b"), ENODEV);
    ASSERT_EQ(ctl(a, "cable b"), 0);
    EXPECT_EQ(ctl(p("b"), "cable a"), EEXIST);
    EXPECT_NE(last_error_line(ctl_text(p("b"))).find("already joined by a cable"),
              std::string::npos);
    EXPECT_EQ(ctl(p("b"), "uncable a"), 0);
    EXPECT_TRUE(cables(a).empty());
}

}  // namespace
}  // namespace ipnfs_it
