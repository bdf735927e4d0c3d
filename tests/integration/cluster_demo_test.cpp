// tools/cluster-demo.sh (docs/cluster.md, "Trying it on one machine"): up
// makes three hosts with a daemon each and a cluster network `jobs`, and
// prints the commands to try it; those commands, typed by an ordinary user,
// carry a message from host 1 to a reader on host 2 and show the reader's
// join on host 3; down leaves no daemon, mount, corosync, namespace or file
// behind.
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "cluster_hosts.hpp"
#include "netns.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

const std::string kDemo = IPNFS_SOURCE_DIR "/tools/cluster-demo.sh";

// sh -c SCRIPT as nobody: no root, no groups, no capabilities.  SCRIPT
// goes in single quotes: it may hold none.
Shell as_nobody(const std::string& script, double timeout_s) {
    return root_sh("setpriv --reuid=" + std::to_string(kNobody) +
                       " --regid=" + std::to_string(kNogroup) +
                       " --clear-groups --inh-caps=-all sh -c " + sq(script),
                   timeout_s);
}

std::string first_line(const std::string& path) {
    return nth_line(slurp(path), 0);
}

TEST(ClusterDemoTest, UpPrintsCommandsThatCarryAMessageAcrossHostsAndDownLeavesNothing) {
    if (std::string why = ClusterHosts::problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    if (std::string why = netns_problem({"setpriv", "findmnt"}); !why.empty()) {
        IPNFS_SKIP_OR_FAIL(why);
    }
    char tmpl[] = "/tmp/ipnfs-demo-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string scratch = tmpl;
    // Like /tmp: nobody writes what it reads there.
    ASSERT_EQ(chmod(scratch.c_str(), 01777), 0);
    const std::string dir = scratch + "/demo";
    auto at = [&](int i, const std::string& file) {
        return dir + "/host" + std::to_string(i) + "/mnt/jobs/" + file;
    };

    // However the test ends: down (a no-op once done), the scratch goes.
    struct Cleanup {
        std::string dir, scratch;
        ~Cleanup() {
            run_argv({kDemo, "down", dir}, 60);
            run_argv({"rm", "-rf", "--one-file-system", scratch}, 10);
        }
    } cleanup{dir, scratch};

    Shell up = root_sh(sq(kDemo) + " up " + sq(dir) + " --daemon " + sq(IPNFS_BINARY), 60);
    ASSERT_EQ(up.exit_code(), 0) << "cluster-demo.sh up: " << describe(up);
    // What up made, to check that down undoes it.
    std::vector<std::string> namespaces = lines_of(slurp(dir + "/hosts"));
    std::vector<pid_t> pids;
    for (int i = 1; i <= 3; ++i) {
        for (const char* file : {"ipnfs.pid", "corosync.pid"}) {
            pids.push_back(
                std::atoi(first_line(dir + "/host" + std::to_string(i) + "/" + file).c_str()));
        }
    }
    EXPECT_EQ(namespaces.size(), 3U);

    // The commands it prints, as a user types them.
    for (const std::string& cmd : {"cat " + at(3, "events") + " &", "cat " + at(2, "port1") + " &",
                                   "echo hello > " + at(1, "port0"), "cat " + at(1, "stats")}) {
        EXPECT_TRUE(contains(up.out, "  " + cmd + "\n")) << "no \"" << cmd << "\" in\n" << up.out;
    }
    EXPECT_TRUE(contains(up.out, kDemo + " down " + dir + "\n")) << up.out;

    // The same, as nobody: the reader on host 2 gets what host 1's echo
    // wrote, and host 3's events show the reader's join with its node.
    auto dq = [](const std::string& path) { return "\"" + path + "\""; };
    // The events reader must be open before the port joins: a port that
    // came and went before it opened is in no snapshot.
    Shell tried =
        as_nobody(R"(timeout 15 grep -m1 "^join 1 node 2\$" )" + dq(at(3, "events")) + " > " +
                      dq(scratch + "/events.out") + " & " +
                      R"(until grep -q "^event_readers 1\$" )" + dq(dir + "/host3/mnt/jobs/stats") +
                      "; do sleep 0.05; done; " + "timeout 15 head -n 1 " + dq(at(2, "port1")) +
                      " > " + dq(scratch + "/port1.out") + " & " +
                      // Once host 2's reader is connected (its stats say so), echo.
                      R"(until grep -q "^connected 1\$" )" + dq(dir + "/host2/mnt/jobs/stats") +
                      "; do sleep 0.05; done; echo hello > " + dq(at(1, "port0")) + " && wait",
                  25);
    EXPECT_EQ(tried.exit_code(), 0) << describe(tried);
    EXPECT_EQ(slurp(scratch + "/port1.out"), "hello\n");
    EXPECT_EQ(slurp(scratch + "/events.out"), "join 1 node 2\n");
    // An ordinary user may use the ports, not manage the network.
    Shell manage = as_nobody("echo scope node > " + dq(at(1, "ctl")), 10);
    EXPECT_NE(manage.exit_code(), 0) << describe(manage);

    Shell down = root_sh(sq(kDemo) + " down " + sq(dir), 60);
    EXPECT_EQ(down.exit_code(), 0) << describe(down);
    struct stat st {};
    EXPECT_NE(stat(dir.c_str(), &st), 0) << dir << " is still there";
    EXPECT_FALSE(contains(slurp("/proc/mounts"), dir)) << slurp("/proc/mounts");
    std::string netns = root_sh("ip netns list").out;
    for (const std::string& ns : namespaces) EXPECT_FALSE(contains(netns, ns)) << netns;
    std::string sw = namespaces.empty() ? "?" : namespaces[0].substr(0, namespaces[0].rfind('-'));
    EXPECT_FALSE(contains(netns, sw + "-sw")) << netns;
    for (pid_t pid : pids) {
        char state = process_state(pid);
        EXPECT_TRUE(state == '?' || state == 'Z') << "pid " << pid << " still runs";
    }
}

}  // namespace
}  // namespace ipnfs_it
