// The tree: the root, networks made by mkdir, and the files in a network.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using TreeTest = IpnfsTest;

TEST_F(TreeTest, TheRootIsADirectoryWithMode0755AndOnlyTheMetricsFile) {
    struct stat st {};
    ASSERT_EQ(stat(p("").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0755u);
    EXPECT_EQ(list_dir(p("")), (std::vector<std::string>{"ipnfs.prom"})) << "its one file";
}

TEST_F(TreeTest, MkdirMakesANetworkAndRmdirRemovesIt) {
    make_net("alpha");
    make_net("beta");
    EXPECT_EQ(list_dir(p("")), (std::vector<std::string>{"alpha", "beta", "ipnfs.prom"}));
    struct stat st {};
    ASSERT_EQ(stat(p("alpha").c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(mkdir(p("alpha").c_str(), 0755), -1);
    EXPECT_EQ(errno, EEXIST);

    ASSERT_EQ(rmdir(p("alpha").c_str()), 0) << std::strerror(errno);
    EXPECT_EQ(list_dir(p("")), (std::vector<std::string>{"beta", "ipnfs.prom"}));
    EXPECT_EQ(stat(p("alpha").c_str(), &st), -1);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(rmdir(p("alpha").c_str()), -1);
    EXPECT_EQ(errno, ENOENT);
}

TEST_F(TreeTest, ANetworkListsCtlStatsCloneEventsAndItsPorts) {
    std::string net = make_net("lan");
    std::vector<std::string> expected{"capture", "clone", "ctl", "events", "metrics", "stats"};
    for (int i = 0; i < 32; ++i) expected.push_back("port" + std::to_string(i));
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(list_dir(net), expected);
    for (const auto& name : expected) {
        struct stat st {};
        ASSERT_EQ(stat((net + "/" + name).c_str(), &st), 0) << name;
        EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
    }
}

TEST_F(TreeTest, OnlyTheNetworksPortNamesExist) {
    std::string net = make_net("lan");
    for (const char* name : {"port32", "port01", "port", "portx", "port-1", "ports", "clone2"}) {
        struct stat st {};
        EXPECT_EQ(stat((net + "/" + name).c_str(), &st), -1) << name;
        EXPECT_EQ(errno, ENOENT) << name;
    }
}

// Which port a descriptor is on, seen from outside: send from it and look at
// which stats row counted the message.
int port_of(const std::string& net, int fd, std::map<unsigned, PortRow> before) {
    if (write_msg(fd, "who").n != 3) return -1;
    Stats after = parse_stats(slurp(net + "/stats"));
    for (const auto& [port, row] : after.rows) {
        if (row.msgs_in != before[port].msgs_in) return static_cast<int>(port);
    }
    return -1;
}

TEST_F(TreeTest, CloneConnectsToTheLowestPortNobodyHasOpen) {
    std::string net = make_net("lan");
    Fd p0 = open_fd(net + "/port0", O_RDONLY);
    Fd c1 = open_fd(net + "/clone", O_RDWR);
    Fd c2 = open_fd(net + "/clone", O_RDWR);
    EXPECT_EQ(port_of(net, c1.get(), stats(net).rows), 1);
    EXPECT_EQ(port_of(net, c2.get(), stats(net).rows), 2);
    // The clone's port is the port file's port: port0 got both messages, and
    // a message sent through the port1 file does not come back to clone 1.
    EXPECT_EQ(read_one(p0.get()).data, "who");
    EXPECT_EQ(read_one(p0.get()).data, "who");
    EXPECT_EQ(read_one(c1.get()).data, "who");  // from clone 2
    EXPECT_EQ(read_one(c2.get()).data, "who");  // from clone 1
    Fd p1 = open_fd(net + "/port1", O_WRONLY);
    ASSERT_EQ(write_msg(p1.get(), "self").n, 4);
    EXPECT_EQ(read_one(c2.get()).data, "self");
    EXPECT_TRUE(read_one(c1.get(), 200).timed_out()) << "clone 1 is port1: not a recipient";
    Stats st = stats(net);
    EXPECT_EQ(st.rows[1].readers, 1u);
    EXPECT_EQ(st.rows[1].writers, 2u);

    // A closed clone frees its port for the next one.
    c1.reset();
    p1.reset();
    Fd c3 = open_fd(net + "/clone", O_WRONLY);
    EXPECT_EQ(port_of(net, c3.get(), stats(net).rows), 1);
}

TEST_F(TreeTest, CloneIsENOSPCWhenEveryPortIsOpen) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "ports 4\n"), 0);
    std::vector<Fd> fds;
    std::set<int> ports;
    for (int i = 0; i < 4; ++i) {
        fds.push_back(open_fd(net + "/clone", O_RDWR));
        ASSERT_TRUE(fds.back().ok());
        ports.insert(port_of(net, fds.back().get(), stats(net).rows));
    }
    EXPECT_EQ(ports, (std::set<int>{0, 1, 2, 3})) << "clones must get distinct ports";
    EXPECT_EQ(try_open(net + "/clone", O_RDWR), -1);
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_EQ(stats(net).total("connected"), 4u);
    fds[2].reset();
    Fd again = open_fd(net + "/clone", O_RDONLY);
    EXPECT_TRUE(again.ok());
}

}  // namespace
}  // namespace ipnfs_it
