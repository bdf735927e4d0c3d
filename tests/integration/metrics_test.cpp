// The metrics files: ipnfs.prom at the mount root and each network's
// `metrics`, in the Prometheus text format, read by a format check of every
// line, by the real node_exporter (its textfile collector) scraped with curl,
// and by a second user who must not see another user's closed network.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

using namespace std::chrono_literals;
// allow_other: the second user reads the mount.
class MetricsTest : public IpnfsTest {
  protected:
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }
};

// A network name with every character the format must escape or carry:
// a quote, a backslash, '=' and UTF-8 (no blank: names have none).
const std::string kOddName = "q\"uo\\te=x\xc3\xbc";
const std::string kOddLabel = "network=\"q\\\"uo\\\\te=x\xc3\xbc\"";

// "name{labels}" -> value of every sample line.
std::map<std::string, std::uint64_t> samples_of(const std::string& text) {
    std::map<std::string, std::uint64_t> out;
    for (const std::string& line : lines_of(text)) {
        if (line.empty() || line[0] == '#') continue;
        auto space = line.rfind(' ');
        if (space == std::string::npos) continue;
        out[line.substr(0, space)] = std::stoull(line.substr(space + 1));
    }
    return out;
}

// Sends three messages of known sizes from port2 to port1 of `net`, and
// reads two of them.
void send_known(const std::string& net) {
    Fd r = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port2", O_WRONLY);
    for (int size : {5, 10, 20}) ASSERT_EQ(write_msg(w.get(), std::string(size, 'x')).n, size);
    ASSERT_EQ(read_one(r.get()).n, 5);
    ASSERT_EQ(read_one(r.get()).n, 10);
}

// Sends three Ethernet frames (one source address) into port2 of `net`.
void send_frames(const std::string& net) {
    Fd w = open_fd(net + "/port2", O_WRONLY);
    std::string frame(60, '\x01');
    for (int b = 0; b < 6; ++b) frame[b] = '\xff';   // to: broadcast
    for (int b = 6; b < 12; ++b) frame[b] = '\x02';  // from: 02:02:02:02:02:02
    for (int i = 0; i < 3; ++i) ASSERT_EQ(write_msg(w.get(), frame).n, 60);
}

// Runs the format checker on `paths`; its report (empty if all is well).
std::string format_problems(const std::vector<std::string>& paths) {
    std::vector<std::string> argv{
        "python3", std::string(IPNFS_SOURCE_DIR) + "/tests/integration/exposition_check.py"};
    argv.insert(argv.end(), paths.begin(), paths.end());
    Shell sh = run_argv(argv, 20.0);
    if (sh.exit_code() == 0) return {};
    return "exit " + std::to_string(sh.exit_code()) + "\n" + sh.out + sh.err;
}

TEST_F(MetricsTest, TheRootFileAndEachNetworksFileAreInTheTree) {
    std::string net = make_net("lan", 0750);
    EXPECT_EQ(list_dir(p("")), (std::vector<std::string>{"ipnfs.prom", "lan"}));
    EXPECT_EQ(list_dir(net).size(), 6u + 32u) << "ctl stats clone events capture metrics, ports";
    struct stat st {};
    ASSERT_EQ(stat(p("ipnfs.prom").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0444u) << "the root's r bits (0755)";
    ASSERT_EQ(stat((net + "/metrics").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0440u) << "as stats: the directory's r bits";
    // Read-only even for root, a name no network can take, chmod-able.
    EXPECT_EQ(try_open(p("ipnfs.prom"), O_WRONLY), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(try_open(net + "/metrics", O_RDWR), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(mkdir(p("ipnfs.prom").c_str(), 0755) == 0 ? 0 : errno, EEXIST);
    ASSERT_EQ(chmod((net + "/metrics").c_str(), 0400), 0);
    ASSERT_EQ(stat((net + "/metrics").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0400u);
    ASSERT_EQ(chmod(p("ipnfs.prom").c_str(), 0440), 0);
    ASSERT_EQ(stat(p("ipnfs.prom").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0440u);
}

TEST_F(MetricsTest, EveryLineOfBothFilesFollowsTheExpositionFormat) {
    std::string lan = make_net("lan");
    std::string odd = make_net(kOddName);
    std::string bad = make_net("bad\xff\xfe");  // not UTF-8: a label must still be
    std::string sw = make_net("sw");
    ASSERT_EQ(ctl(sw, "policy switch\n"), 0);
    std::string grp = make_net("grp");
    ASSERT_EQ(ctl(grp, "policy group\n"), 0);
    send_known(lan);
    send_known(odd);
    send_frames(sw);
    send_frames(grp);
    // A copy outside the mount, so the checker reads what one read() gave.
    std::vector<std::string> copies;
    for (const std::string& path : {p("ipnfs.prom"), lan + "/metrics", odd + "/metrics",
                                    bad + "/metrics", sw + "/metrics", grp + "/metrics"}) {
        std::string copy = scratch() + "/copy" + std::to_string(copies.size()) + ".prom";
        std::ofstream(copy, std::ios::binary) << slurp(path);
        copies.push_back(copy);
    }
    EXPECT_EQ(format_problems(copies), "");
    std::string all = slurp(p("ipnfs.prom"));
    EXPECT_TRUE(contains(all, "ipnfs_msgs_in_total{" + kOddLabel + "} 3")) << all;
    EXPECT_TRUE(contains(all, "ipnfs_msgs_in_total{network=\"bad\xef\xbf\xbd\xef\xbf\xbd\"} 0"))
        << "bytes that are not UTF-8 become U+FFFD";
    EXPECT_TRUE(
        contains(all, "ipnfs_policy_switch_mac_entries{network=\"sw\",policy=\"switch\"} 1"))
        << all;
    EXPECT_TRUE(
        contains(all, "ipnfs_policy_group_broadcast_total{network=\"grp\",policy=\"group\"} "))
        << all;
    EXPECT_TRUE(contains(all, "# TYPE ipnfs_daemon_networks gauge\nipnfs_daemon_networks 5\n"));
    EXPECT_TRUE(contains(all, "\nipnfs_daemon_parked_reads 0\n"));
    // The network's file holds that network's series only.
    std::string one = slurp(lan + "/metrics");
    EXPECT_TRUE(contains(one, "ipnfs_msgs_in_total{network=\"lan\"} 3"));
    EXPECT_FALSE(contains(one, "network=\"sw\""));
    EXPECT_FALSE(contains(one, "ipnfs_daemon_"));
}

TEST_F(MetricsTest, ValuesEqualTheStatsFileOfTheSameNetwork) {
    std::string lan = make_net("lan");
    send_known(lan);
    Fd parked = open_fd(lan + "/port4", O_RDONLY);  // a reader: a port row
    const std::string stats_text = slurp(lan + "/stats");
    const std::string metrics_text = slurp(lan + "/metrics");
    ipnfs::stats_text::Stats st = ipnfs::stats_text::parse_stats(stats_text);
    std::map<std::string, std::uint64_t> got = samples_of(metrics_text);
    const std::string label = "{network=\"lan\"}";
    const std::vector<std::string> counters{
        "msgs_in",  "bytes_in",      "msgs_out",         "bytes_out", "drops",
        "captured", "capture_drops", "over_limit_drops", "stalls"};
    for (const auto& [key, value] : st.totals) {
        if (key == "network" || key == "policy") continue;
        bool counter = std::find(counters.begin(), counters.end(), key) != counters.end();
        std::string series = "ipnfs_" + key + (counter ? "_total" : "") + label;
        ASSERT_TRUE(got.contains(series)) << "no series for stats field " << key;
        std::uint64_t want = value == "on" ? 1 : value == "off" ? 0 : std::stoull(value);
        EXPECT_EQ(got[series], want) << key;
    }
    EXPECT_EQ(got["ipnfs_network_info{network=\"lan\",policy=\"hub\"}"], 1u);
    ASSERT_EQ(st.rows.size(), 3u) << stats_text;
    for (const auto& [port, row] : st.rows) {
        std::string l = "{network=\"lan\",port=\"" + std::to_string(port) + "\"}";
        EXPECT_EQ(got["ipnfs_port_readers" + l], row.readers);
        EXPECT_EQ(got["ipnfs_port_writers" + l], row.writers);
        EXPECT_EQ(got["ipnfs_port_msgs_in_total" + l], row.msgs_in);
        EXPECT_EQ(got["ipnfs_port_bytes_in_total" + l], row.bytes_in);
        EXPECT_EQ(got["ipnfs_port_msgs_out_total" + l], row.msgs_out);
        EXPECT_EQ(got["ipnfs_port_bytes_out_total" + l], row.bytes_out);
        EXPECT_EQ(got["ipnfs_port_drops_total" + l], row.drops);
        EXPECT_EQ(got["ipnfs_port_queued" + l], row.queued);
    }
    EXPECT_EQ(got["ipnfs_port_bytes_in_total{network=\"lan\",port=\"2\"}"], 35u);
    EXPECT_EQ(got["ipnfs_port_msgs_out_total{network=\"lan\",port=\"1\"}"], 2u);
    EXPECT_EQ(got["ipnfs_port_readers{network=\"lan\",port=\"4\"}"], 1u);
    // The root file shows the same numbers for the network.
    std::map<std::string, std::uint64_t> root = samples_of(slurp(p("ipnfs.prom")));
    for (const auto& [series, value] : got) EXPECT_EQ(root[series], value) << series;
}

TEST_F(MetricsTest, InterfaceAndCableTablesBecomeLabelledSeries) {
    std::string lan = make_net("lan");
    make_net("wan");
    const std::string tap = "ipm" + std::to_string(getpid() % 100000);
    ASSERT_EQ(ctl(lan, "tap " + tap + " 0\n"), 0) << last_error_line(ctl_text(lan));
    ASSERT_EQ(ctl(lan, "cable wan 1 1\n"), 0) << last_error_line(ctl_text(lan));
    std::string copy = scratch() + "/lan.prom";
    std::ofstream(copy, std::ios::binary) << slurp(lan + "/metrics");
    EXPECT_EQ(format_problems({copy}), "");
    std::map<std::string, std::uint64_t> got = samples_of(slurp(lan + "/metrics"));
    const std::string iface = "{network=\"lan\",interface=\"" + tap + "\",kind=\"tap\",port=\"0\"}";
    EXPECT_EQ(got["ipnfs_interface_running" + iface], 1u);
    EXPECT_TRUE(got.contains("ipnfs_interface_frames_in_total" + iface));
    EXPECT_TRUE(got.contains("ipnfs_interface_if_tx_dropped_total" + iface));
    const std::string cable = "{network=\"lan\",cable=\"wan\",port=\"1\",peer_port=\"1\"}";
    EXPECT_EQ(got["ipnfs_cable_running" + cable], 1u);
    EXPECT_TRUE(got.contains("ipnfs_cable_hop_drops_total" + cable));
    ASSERT_EQ(ctl(lan, "untap " + tap + "\n"), 0);
    ASSERT_EQ(ctl(lan, "uncable wan\n"), 0);
}

// A free TCP port on 127.0.0.1 (bound and let go: another process could
// take it before the exporter does, which the test would then report).
int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
        port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

constexpr const char* kExporter = "/usr/bin/prometheus-node-exporter";

TEST_F(MetricsTest, NodeExporterServesTheSeriesScrapedWithCurl) {
    if (access(kExporter, X_OK) != 0 || access("/usr/bin/curl", X_OK) != 0) {
        IPNFS_SKIP_OR_FAIL(
            "prometheus-node-exporter or curl is not installed (tools/deps.sh --test)");
    }
    std::string lan = make_net("lan");
    std::string odd = make_net(kOddName);
    make_net("bad\xff");
    send_known(lan);
    send_known(odd);
    int port = free_port();
    ASSERT_GT(port, 0);
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    const std::string textdir = "--collector.textfile.directory=" + mount_.dir();
    const std::string log = scratch() + "/node_exporter.log";
    pid_t exporter = fork_child([&] {
        int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) return 201;
        execl(kExporter, kExporter, listen.c_str(), "--collector.disable-defaults",
              "--collector.textfile", textdir.c_str(), static_cast<char*>(nullptr));
        return 202;
    });
    ASSERT_GT(exporter, 0);
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
    Shell scrape;
    bool up = eventually(
        [&] {
            scrape = run_argv({"curl", "-s", "--max-time", "5", url}, 10.0);
            return scrape.exit_code() == 0 && contains(scrape.out, "ipnfs_");
        },
        15s);
    kill(exporter, SIGTERM);
    std::optional<int> status = wait_child(exporter, 10s);
    EXPECT_TRUE(status.has_value());
    ASSERT_TRUE(up) << "curl: " << scrape.err << "\nexporter log:\n" << read_whole(log);
    const std::string& out = scrape.out;
    EXPECT_TRUE(contains(out, "\nnode_textfile_scrape_error 0\n")) << out;
    EXPECT_TRUE(contains(out, "# TYPE ipnfs_msgs_in_total counter\n"));
    EXPECT_TRUE(contains(out, "\nipnfs_msgs_in_total{network=\"lan\"} 3\n")) << out;
    EXPECT_TRUE(contains(out, "\nipnfs_bytes_in_total{network=\"lan\"} 35\n"));
    EXPECT_TRUE(contains(out, "\nipnfs_port_msgs_out_total{network=\"lan\",port=\"1\"} 2\n"));
    EXPECT_TRUE(contains(out, "\nipnfs_port_bytes_out_total{network=\"lan\",port=\"1\"} 15\n"));
    EXPECT_TRUE(contains(out, "\nipnfs_msgs_in_total{" + kOddLabel + "} 3\n")) << out;
    EXPECT_TRUE(contains(out, "\nipnfs_daemon_networks 3\n"));
    EXPECT_TRUE(contains(out, "\nipnfs_daemon_held_bytes "));
}

// What `path` reads as uid:gid, through a pipe ("" and the errno on failure).
std::string read_as(uid_t uid, gid_t gid, const std::string& path, int& err) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return {};
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    err = as_user(uid, gid, [&] {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return errno;
        static char buf[1 << 16];
        ssize_t n = 0;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            if (write(fds[1], buf, static_cast<std::size_t>(n)) != n) return 100;
        }
        return n < 0 ? errno : 0;
    });
    close(fds[1]);
    std::string text;
    char buf[4096];
    ssize_t n = 0;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    return text;
}

TEST_F(MetricsTest, ASecondUserSeesOnlyTheNetworksWhoseStatsTheyMayRead) {
    TestUser user;
    if (!user.ok()) IPNFS_SKIP_OR_FAIL("no second user: " + user.error());
    std::string secret = make_net("secret", 0700);  // root's, closed
    std::string open_net = make_net("public", 0755);
    send_known(secret);
    ASSERT_EQ(chmod(p("").c_str(), 0777), 0);  // anyone may make networks
    std::string mine = p("mine");
    ASSERT_EQ(
        as_user(user.uid(), user.gid(), [&] { return mkdir(mine.c_str(), 0700) == 0 ? 0 : errno; }),
        0);
    int err = -1;
    std::string seen = read_as(user.uid(), user.gid(), p("ipnfs.prom"), err);
    ASSERT_EQ(err, 0);
    EXPECT_TRUE(contains(seen, "ipnfs_ports{network=\"mine\"} 32")) << seen;
    EXPECT_TRUE(contains(seen, "ipnfs_ports{network=\"public\"} 32"));
    EXPECT_FALSE(contains(seen, "secret")) << "a 0700 network of root's shows to another user";
    EXPECT_TRUE(contains(seen, "\nipnfs_daemon_networks 3\n")) << "daemon-wide gauges count all";
    // Its own file as well: EACCES, as its stats.
    read_as(user.uid(), user.gid(), secret + "/metrics", err);
    EXPECT_EQ(err, EACCES);
    // Root sees every network; a chmod of stats decides, as for the file.
    std::string all = slurp(p("ipnfs.prom"));
    EXPECT_TRUE(contains(all, "ipnfs_msgs_in_total{network=\"secret\"} 3"));
    EXPECT_TRUE(contains(all, "network=\"mine\""));
    ASSERT_EQ(chmod((open_net + "/stats").c_str(), 0400), 0);
    seen = read_as(user.uid(), user.gid(), p("ipnfs.prom"), err);
    EXPECT_FALSE(contains(seen, "network=\"public\"")) << "its stats is no longer readable";
    // The opener's credentials decide, never the reader's (the kernel's
    // f_cred): a descriptor root opened shows root's view to whoever reads it.
    Fd root_fd = open_fd(p("ipnfs.prom"), O_RDONLY);
    const int in = root_fd.get();
    int got = as_user(user.uid(), user.gid(), [&] {
        static char buf[1 << 16];
        ssize_t n = pread(in, buf, sizeof buf, 0);
        if (n <= 0) return 100;
        std::string_view text(buf, static_cast<std::size_t>(n));
        return text.find("network=\"secret\"") != std::string_view::npos ? 0 : 101;
    });
    EXPECT_EQ(got, 0) << "root's descriptor, read by the user, shows what root may see";
}

}  // namespace
}  // namespace ipnfs_it
