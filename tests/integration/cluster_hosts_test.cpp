// tools/cluster-hosts.sh through its fixture: three namespaces with a
// corosync each form one quorate cluster, a daemon started in a host is in
// that host's network namespace with its mount visible here, kill -9 and
// start bring a host's corosync down and back, cut and heal split a host off
// and merge it back, and down leaves no namespace,
// corosync or shared memory file of theirs behind.
#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "cluster_hosts.hpp"
#include "netns.hpp"

namespace ipnfs_it {
namespace {

using namespace std::chrono_literals;

// corosync-quorumtool -s's "Title: value" lines.
std::map<std::string, std::string> quorum_fields(const std::string& out) {
    std::map<std::string, std::string> fields;
    for (const auto& line : lines_of(out)) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.find_first_not_of(' ', colon + 1);
        fields[line.substr(0, colon)] =
            value == std::string::npos ? ""
                                       : line.substr(value, line.find_last_not_of(' ') - value + 1);
    }
    return fields;
}

// The shared memory files a corosync of that pid made.
std::vector<std::string> qb_files(pid_t pid) {
    std::vector<std::string> found;
    for (const auto& name : list_dir("/dev/shm")) {
        if (name.starts_with("qb-corosync-" + std::to_string(pid) + "-") ||
            name.starts_with("qb-" + std::to_string(pid) + "-")) {
            found.push_back(name);
        }
    }
    return found;
}

ino_t inode(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Polls host i's corosync-quorumtool until `want` holds of its fields (true)
// or `within` passes (false).
bool quorum_becomes(const ClusterHosts& hosts, int i, std::chrono::seconds within,
                    const std::function<bool(std::map<std::string, std::string>&)>& want) {
    auto deadline = std::chrono::steady_clock::now() + within;
    do {
        auto fields = quorum_fields(hosts.sh(i, "corosync-quorumtool -s").out);
        if (want(fields)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

void expect_quorate(const ClusterHosts& hosts, int i, int n) {
    Shell q = hosts.sh(i, "corosync-quorumtool -s");
    auto fields = quorum_fields(q.out);
    EXPECT_EQ(fields["Quorate"], "Yes") << "host " << i << ": " << describe(q);
    EXPECT_EQ(fields["Nodes"], std::to_string(n)) << "host " << i << ": " << describe(q);
    EXPECT_EQ(fields["Node ID"], std::to_string(i)) << "host " << i << ": " << describe(q);
}

TEST(ClusterHostsTest, ThreeCorosyncsFormOneQuorateCluster) {
    if (std::string why = ClusterHosts::problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    ClusterHosts hosts;
    ASSERT_EQ(hosts.start(3), "");
    std::vector<pid_t> pids;
    for (int i = 1; i <= 3; ++i) {
        expect_quorate(hosts, i, 3);
        pids.push_back(hosts.corosync_pid(i));
        EXPECT_GT(pids.back(), 0) << "host " << i;
        EXPECT_FALSE(qb_files(pids.back()).empty()) << "host " << i << "'s flight recorder";
    }

    // A daemon in host 2: in that network namespace, its mount seen here.
    {
        Mount daemon;
        std::string why;
        ASSERT_TRUE(hosts.start_daemon(2, daemon, {}, why)) << why;
        EXPECT_TRUE(daemon.mounted());
        EXPECT_EQ(inode("/proc/" + std::to_string(daemon.pid()) + "/ns/net"),
                  inode("/run/netns/" + hosts.ns(2)));
        stop_cleanly(daemon);
    }

    // kill -9 takes host 3 down and its shared memory with it; start brings
    // it back into a cluster of three.
    ASSERT_EQ(hosts.kill(3), "");
    EXPECT_EQ(hosts.corosync_pid(3), -1);
    EXPECT_EQ(qb_files(pids[2]), std::vector<std::string>{});
    ASSERT_EQ(hosts.revive(3), "");
    pids[2] = hosts.corosync_pid(3);
    EXPECT_GT(pids[2], 0);
    for (int i = 1; i <= 3; ++i) expect_quorate(hosts, i, 3);

    // cut takes host 2 off the switch: it is alone and without quorum, the
    // others two and quorate; heal makes the three one cluster again.
    ASSERT_EQ(hosts.cut(2), "");
    EXPECT_TRUE(quorum_becomes(hosts, 2, 10s,
                               [](auto& f) { return f["Nodes"] == "1" && f["Quorate"] == "No"; }));
    EXPECT_TRUE(quorum_becomes(hosts, 1, 10s,
                               [](auto& f) { return f["Nodes"] == "2" && f["Quorate"] == "Yes"; }));
    ASSERT_EQ(hosts.heal(2), "");
    for (int i = 1; i <= 3; ++i) {
        EXPECT_TRUE(quorum_becomes(
            hosts, i, 10s, [](auto& f) { return f["Nodes"] == "3" && f["Quorate"] == "Yes"; }))
            << "host " << i << " after heal";
    }

    ASSERT_EQ(hosts.down(), "");
    std::string netns = root_sh("ip netns list").out;
    for (int i = 1; i <= 3; ++i) {
        EXPECT_FALSE(contains(netns, hosts.ns(i))) << netns;
        char state = process_state(pids[i - 1]);
        EXPECT_TRUE(state == '?' || state == 'Z') << "host " << i << "'s corosync still runs";
        EXPECT_EQ(hosts.corosync_pid(i), -1);
        EXPECT_EQ(qb_files(pids[i - 1]), std::vector<std::string>{}) << "host " << i;
    }
    std::string sw = hosts.ns(1).substr(0, hosts.ns(1).rfind('-')) + "-sw";
    EXPECT_FALSE(contains(netns, sw)) << netns;
}

}  // namespace
}  // namespace ipnfs_it
