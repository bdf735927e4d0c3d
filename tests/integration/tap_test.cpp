// TAP interfaces: `tap NAME` in ctl makes a kernel interface on the bus.  Two
// network namespaces, each holding a TAP of one network, talk through it as
// through a cable: ping, a TCP stream, jumbo frames.  And the interface's
// life follows ctl (untap) and the network (rmdir).
#include <fcntl.h>
#include <ipnfs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

class NetdevTapTest : public NetdevTest {
  protected:
    std::vector<std::string> tools() const override { return {"ping", "timeout", "python3"}; }

    // TAPs t1 in ns1 (10.0.0.1) and t2 in ns2 (10.0.0.2) on the network,
    // which then ping each other both ways.
    void tap_pair_pings(const std::string& net, NetNs& ns1, NetNs& ns2) {
        ASSERT_TRUE(ns1.ok()) << ns1.error();
        ASSERT_TRUE(ns2.ok()) << ns2.error();
        ASSERT_TRUE(tap_into(net, ifname("t1"), ns1, {"10.0.0.1/24"}));
        ASSERT_TRUE(tap_into(net, ifname("t2"), ns2, {"10.0.0.2/24"}));
        Shell there = ns1.ping("10.0.0.2");
        EXPECT_EQ(there.exit_code(), 0) << "ns1 -> ns2: " << describe(there);
        Shell back = ns2.ping("10.0.0.1");
        EXPECT_EQ(back.exit_code(), 0) << "ns2 -> ns1: " << describe(back);
    }
};

// python3 from the distribution if there is one (a version manager's shim
// on PATH is slow to start under ip netns exec).
std::string python() {
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
}

// Receives one connection and prints "BYTES SHA256" of what came.
constexpr const char* kTcpSink = R"(import hashlib, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(20)
c, _ = s.accept()
c.settimeout(20)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest())
)";

// Connects (retrying while the sink starts), sends N random bytes, prints
// "BYTES SHA256" of what it sent.
constexpr const char* kTcpSource = R"(import hashlib, os, socket, sys, time
data = os.urandom(int(sys.argv[3]))
deadline = time.time() + 10
while True:
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
c.settimeout(20)
c.sendall(data)
c.shutdown(socket.SHUT_WR)
c.recv(1)
c.close()
print(len(data), hashlib.sha256(data).hexdigest())
)";

TEST_F(NetdevTapTest, TapsInTwoNamespacesOnASwitchPingAndCarryATcpStreamIntact) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns1, ns2;
    tap_pair_pings(net, ns1, ns2);
    if (HasFatalFailure()) return;

    // 4 MiB of random bytes from ns1 to ns2 over TCP arrive intact.
    const std::string sink = scratch() + "/sink.py", source = scratch() + "/source.py";
    const std::string received = scratch() + "/received", sent = scratch() + "/sent";
    write_text(sink, kTcpSink);
    write_text(source, kTcpSource);
    Shell tcp = root_sh(ns2.exec() + python() + " " + sq(sink) + " 10.0.0.2 5001 > " +
                            sq(received) + " & s=$!\n" + ns1.exec() + python() + " " + sq(source) +
                            " 10.0.0.2 5001 4194304 > " + sq(sent) +
                            " || exit 3\n"
                            "wait $s || exit 4\n",
                        35);
    EXPECT_EQ(tcp.exit_code(), 0) << describe(tcp);
    std::string sent_digest = read_whole(sent), received_digest = read_whole(received);
    EXPECT_TRUE(contains(sent_digest, "4194304 ")) << sent_digest;
    EXPECT_EQ(received_digest, sent_digest) << "the bytes ns2 received are not the bytes ns1 sent";
}

TEST_F(NetdevTapTest, TapsInTwoNamespacesOnAHubPingEachOther) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy hub\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns1, ns2;
    tap_pair_pings(net, ns1, ns2);
}

TEST_F(NetdevTapTest, JumboFramesPassUnfragmentedOnANetworkWithMtu9014) {
    std::string net = make_net("jumbo");
    ASSERT_EQ(ctl(net, "policy switch\nmtu 9014\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns1, ns2;
    ASSERT_TRUE(ns1.ok()) << ns1.error();
    ASSERT_TRUE(ns2.ok()) << ns2.error();
    ASSERT_TRUE(tap_into(net, ifname("t1"), ns1, {"10.0.0.1/24"}, -1, 9000));
    ASSERT_TRUE(tap_into(net, ifname("t2"), ns2, {"10.0.0.2/24"}, -1, 9000));
    // 8972 bytes of ICMP data + 8 + 20 = a 9000-byte IP packet, don't fragment.
    Shell big = ns1.ping("10.0.0.2", 2, 0.2, "-M do -s 8972");
    EXPECT_EQ(big.exit_code(), 0) << describe(big);
    EXPECT_TRUE(contains(big.out, "8980 bytes from 10.0.0.2")) << big.out;
}

TEST_F(NetdevTapTest, FramesLongerThanTheNetworkMtuAreDroppedAndCounted) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));  // mtu 1514
    NetNs ns1, ns2;
    ASSERT_TRUE(ns1.ok()) << ns1.error();
    ASSERT_TRUE(ns2.ok()) << ns2.error();
    const std::string t1 = ifname("t1");
    ASSERT_TRUE(tap_into(net, t1, ns1, {"10.0.0.1/24"}, -1, 9000));
    ASSERT_TRUE(tap_into(net, ifname("t2"), ns2, {"10.0.0.2/24"}, -1, 9000));
    Shell small = ns1.ping("10.0.0.2", 1);
    ASSERT_EQ(small.exit_code(), 0) << describe(small);
    Shell big = ns1.ping("10.0.0.2", 2, 0.2, "-M do -s 8972");
    EXPECT_NE(big.exit_code(), 0) << "9014-byte frames crossed a network with mtu 1514";
    NetStats st = net_stats(net);
    auto row = st.ifaces.find(t1);
    ASSERT_NE(row, st.ifaces.end()) << st.text;
    EXPECT_GE(row->second.drops, 2u) << "the two oversized echo requests:\n" << st.text;
    // Traffic that fits still flows.
    small = ns1.ping("10.0.0.2", 1);
    EXPECT_EQ(small.exit_code(), 0) << describe(small);
}

TEST_F(NetdevTapTest, APersistentTapIsAttachedAndOutlivesUntap) {
    const std::string name = ifname("p1");
    Shell made = root_sh("ip tuntap add dev " + sq(name) + " mode tap", 10);
    ASSERT_EQ(made.exit_code(), 0) << describe(made);
    struct Remove {
        std::string name;
        ~Remove() { root_sh("ip tuntap del dev " + sq(name) + " mode tap 2>/dev/null; true", 10); }
    } remove{name};
    std::string net = make_net("lan");
    ASSERT_EQ(tap(net, name), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(attached_port(net, "tap", name)) << ctl_text(net);
    ASSERT_EQ(ctl(net, "untap " + name + "\n"), 0) << last_error_line(ctl_text(net));
    EXPECT_FALSE(attached_port(net, "tap", name)) << ctl_text(net);
    EXPECT_TRUE(link_exists(name)) << "untap deleted a persistent TAP it did not make";
}

TEST_F(NetdevTapTest, UntapRemovesTheInterface) {
    std::string net = make_net("lan");
    const std::string name = ifname("u1");
    Fd port0 = open_fd(net + "/port0", O_RDONLY);  // in use: not free for the TAP

    ASSERT_EQ(tap(net, name), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(link_exists(name)) << "ip link show " << name << " fails after tap";
    std::optional<unsigned> port = attached_port(net, "tap", name);
    ASSERT_TRUE(port) << ctl_text(net);
    EXPECT_EQ(*port, 1u) << "tap without a port takes the lowest free one (port0 is open)";
    Shell state = root_sh("ip -o link show dev " + sq(name), 10);
    EXPECT_FALSE(contains(state.out, ",UP")) << "a new TAP starts down: " << state.out;

    ASSERT_EQ(ctl(net, "untap " + name + "\n"), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(eventually([&] { return !link_exists(name); }, 2s))
        << name << " still exists after untap";
    EXPECT_FALSE(attached_port(net, "tap", name)) << ctl_text(net);
    EXPECT_NE(ctl(net, "untap " + name + "\n"), 0) << "untap of a TAP that is gone succeeded";

    // The name is free again.
    ASSERT_EQ(tap(net, name), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(link_exists(name));
}

TEST_F(NetdevTapTest, RmdirOfTheNetworkRemovesItsTaps) {
    std::string net = make_net("lan");
    NetNs ns;
    ASSERT_TRUE(ns.ok()) << ns.error();
    const std::string here = ifname("r1"), moved = ifname("r2");
    ASSERT_EQ(tap(net, here), 0) << last_error_line(ctl_text(net));
    ASSERT_TRUE(tap_into(net, moved, ns, {"10.0.0.1/24"}));
    ASSERT_TRUE(link_exists(here));
    ASSERT_EQ(ns.sh("ip link show dev " + moved).exit_code(), 0);

    ASSERT_EQ(rmdir(net.c_str()), 0) << std::strerror(errno);
    EXPECT_TRUE(eventually([&] { return !link_exists(here); }, 3s))
        << here << " (in the root namespace) still exists after rmdir";
    EXPECT_TRUE(eventually(
        [&] { return ns.sh("ip link show dev " + moved + " >/dev/null 2>&1").exit_code() != 0; },
        3s))
        << moved << " (moved into " << ns.name() << ") still exists after rmdir";

    // The names can be used again on a new network.
    std::string again = make_net("lan2");
    EXPECT_EQ(tap(again, here), 0) << last_error_line(ctl_text(again));
    EXPECT_TRUE(link_exists(here));
}

TEST_F(NetdevTapTest, BadTapCommandsFailWithAClearErrnoAndTheDaemonCarriesOn) {
    std::string net = make_net("lan");
    // Interface names have at most 15 bytes.
    const std::string too_long(16, 'x');
    EXPECT_EQ(tap(net, too_long), EINVAL);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "tap " + too_long)) << ctl_text(net);
    EXPECT_FALSE(link_exists(too_long));

    // A name that is already attached.
    const std::string name = ifname("d1");
    ASSERT_EQ(tap(net, name), 0) << last_error_line(ctl_text(net));
    int again = tap(net, name);
    EXPECT_TRUE(again == EBUSY || again == EEXIST)
        << "second tap " << name << ": " << std::strerror(again);
    EXPECT_FALSE(last_error_line(ctl_text(net)).empty());
    std::string other = make_net("other");
    int elsewhere = tap(other, name);
    EXPECT_TRUE(elsewhere == EBUSY || elsewhere == EEXIST)
        << "tap " << name << " on a second network: " << std::strerror(elsewhere);
    EXPECT_EQ(attached_port(other, "tap", name), std::nullopt) << ctl_text(other);

    // A port that does not exist.
    EXPECT_EQ(tap(net, ifname("d2"), 32), EINVAL) << "port 32 of a 32-port network";
    EXPECT_FALSE(link_exists(ifname("d2")));
    // Nothing to untap or grab.
    EXPECT_NE(ctl(net, "untap " + ifname("zz") + "\n"), 0);
    EXPECT_NE(grab(net, ifname("zz")), 0) << "grab of an interface that does not exist";

    // The daemon carries on: the first TAP is still there, a new one works,
    // and port files still deliver.
    EXPECT_TRUE(link_exists(name));
    EXPECT_FALSE(mount_.wait_exit(0ms)) << "the daemon exited";
    EXPECT_EQ(tap(net, ifname("d3")), 0) << last_error_line(ctl_text(net));
    EXPECT_TRUE(link_exists(ifname("d3")));
    std::string chat = make_net("chat");
    Fd r = open_fd(chat + "/port1", O_RDONLY);
    Fd w = open_fd(chat + "/port2", O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "still here").n, 10);
    EXPECT_EQ(read_one(r.get()).data, "still here");
}

// CPU time (user + system, in clock ticks) the process has used so far.
long cpu_ticks(pid_t pid) {
    std::string stat = read_whole("/proc/" + std::to_string(pid) + "/stat");
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) return -1;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) stime = std::stol(field);
    }
    return utime + stime;
}

TEST_F(NetdevTapTest, ATapsPortIsItsOwn) {
    std::string net = make_net("lan");
    // Not a port that is open ...
    {
        Fd open_port = open_fd(net + "/port5", O_RDONLY);
        EXPECT_EQ(tap(net, ifname("o1"), 5), EBUSY) << "tap on an open port";
        EXPECT_FALSE(link_exists(ifname("o1")));
    }
    // ... and while the TAP holds its port, whether it was chosen by ctl or
    // by the daemon, the port file cannot be opened.
    ASSERT_EQ(tap(net, ifname("o2"), 6), 0) << last_error_line(ctl_text(net));
    ASSERT_EQ(tap(net, ifname("o3")), 0) << last_error_line(ctl_text(net));
    std::optional<unsigned> chosen = attached_port(net, "tap", ifname("o3"));
    ASSERT_TRUE(chosen) << ctl_text(net);
    for (unsigned port : {6u, *chosen}) {
        for (int flags : {O_RDONLY, O_WRONLY, O_RDWR}) {
            int fd = try_open(net + "/port" + std::to_string(port), flags);
            int err = errno;
            EXPECT_EQ(fd, -1) << "opened port" << port << " (flags " << flags
                              << "), the port of a TAP";
            if (fd >= 0) {
                close(fd);
            } else {
                EXPECT_EQ(err, EBUSY) << "port" << port;
            }
        }
    }
    // clone skips them.
    std::vector<Fd> clones;
    for (int i = 0; i < 8; ++i) {
        clones.push_back(open_fd(net + "/clone", O_RDWR));
        std::uint32_t port = 0;
        ASSERT_EQ(ioctl(clones.back().get(), IPNFS_IOC_GET_PORT, &port), 0) << std::strerror(errno);
        EXPECT_NE(port, 6u) << "clone connected to a TAP's port";
        EXPECT_NE(port, *chosen) << "clone connected to a TAP's port";
    }
}

TEST_F(NetdevTapTest, ATapDeletedUnderTheDaemonIsLetGoAndTheNetworkCarriesOn) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns2;
    ASSERT_TRUE(ns2.ok()) << ns2.error();
    const std::string t1 = ifname("t1"), t2 = ifname("t2");
    ASSERT_TRUE(tap_into(net, t2, ns2, {"10.0.0.2/24"}));
    {
        NetNs ns1;
        ASSERT_TRUE(ns1.ok()) << ns1.error();
        ASSERT_TRUE(tap_into(net, t1, ns1, {"10.0.0.1/24"}));
        Shell ping = ns1.ping("10.0.0.2", 1);
        ASSERT_EQ(ping.exit_code(), 0) << describe(ping);
    }  // ns1 is deleted, and the kernel deletes t1 with it

    // The daemon does not spin on the dead descriptor.
    std::this_thread::sleep_for(300ms);
    long before = cpu_ticks(mount_.pid());
    std::this_thread::sleep_for(1s);
    long used = cpu_ticks(mount_.pid()) - before;
    EXPECT_LT(used, sysconf(_SC_CLK_TCK) / 5) << "the daemon used " << used << " ticks in 1 s "
                                              << "after its TAP was deleted";
    EXPECT_FALSE(mount_.wait_exit(0ms)) << "the daemon exited";

    // The name can be attached again and the network still carries traffic.
    ctl(net, "untap " + t1 + "\n");  // may already be gone from ctl
    NetNs ns1;
    ASSERT_TRUE(ns1.ok()) << ns1.error();
    ASSERT_TRUE(tap_into(net, t1, ns1, {"10.0.0.1/24"}));
    Shell ping = ns1.ping("10.0.0.2");
    EXPECT_EQ(ping.exit_code(), 0) << describe(ping);
}

TEST_F(NetdevTapTest, StatsCountTheFramesOfEachTapBothWays) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));
    NetNs ns1, ns2;
    ASSERT_TRUE(ns1.ok()) << ns1.error();
    ASSERT_TRUE(ns2.ok()) << ns2.error();
    const std::string t1 = ifname("t1"), t2 = ifname("t2");
    std::optional<unsigned> p1 = tap_into(net, t1, ns1, {"10.0.0.1/24"});
    std::optional<unsigned> p2 = tap_into(net, t2, ns2, {"10.0.0.2/24"});
    ASSERT_TRUE(p1 && p2);
    Shell ping = ns1.ping("10.0.0.2", 5, 0.05);
    ASSERT_EQ(ping.exit_code(), 0) << describe(ping);

    NetStats st = net_stats(net);
    for (const auto& [name, port] : {std::pair{t1, *p1}, std::pair{t2, *p2}}) {
        SCOPED_TRACE(name);
        auto it = st.ifaces.find(name);
        ASSERT_NE(it, st.ifaces.end()) << "no iface row for " << name << " in stats:\n" << st.text;
        const IfaceRow& row = it->second;
        EXPECT_EQ(row.kind, "tap");
        EXPECT_EQ(row.port, port);
        // At least the 5 echo requests or replies, plus ARP.
        EXPECT_GE(row.frames_in, 5u) << st.text;
        EXPECT_GE(row.frames_out, 5u) << st.text;
        EXPECT_GE(row.bytes_in, row.frames_in * 42) << st.text;
        EXPECT_GE(row.bytes_out, row.frames_out * 42) << st.text;
        // The network's own port table counts the TAP's port too.
        ASSERT_TRUE(st.ports.count(port)) << "no row for port " << port << ":\n" << st.text;
        EXPECT_GE(st.ports[port].msgs_in, 5u) << st.text;
        EXPECT_GE(st.ports[port].msgs_out, 5u) << st.text;
    }
}

}  // namespace
}  // namespace ipnfs_it
