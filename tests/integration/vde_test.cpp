// `vde PATH` as a VDE user meets it: Debian's own clients (vdeplug's
// vde_plug, vde2's vde_plug2tap, qemu's -netdev vde) plug into a network's
// endpoint like into a vde_switch, exchange frames with file ports and TAPs,
// follow the network's permissions, and every mistake gets its errno.
#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "ether.hpp"
#include "netns.hpp"
#include "test_user.hpp"
#include "vde_fixture.hpp"

namespace ipnfs_it {
namespace {

namespace fs = std::filesystem;

// A frame in VDE's stream format (vde_plug's stdin and stdout): a 2-byte
// big-endian length, then the frame.
std::string framed(const std::string& frame) {
    return std::string{static_cast<char>(frame.size() >> 8),
                       static_cast<char>(frame.size() & 0xff)} +
           frame;
}

// A broadcast frame from 02:00:00:00:00:NN, of a local experimental EtherType.
std::string frame(std::uint8_t n, const std::string& text) {
    return build_frame({kBroadcast, {0x02, 0, 0, 0, 0, n}, std::nullopt, 0x88b5, text});
}

// The stats row of a VDE client, its columns by name.
struct VdeRow {
    unsigned port = 0;
    std::string state, client;
    std::uint64_t frames_in = 0, bytes_in = 0, frames_out = 0, bytes_out = 0;
};
VdeRow parse_vde_row(const std::string& row) {
    std::istringstream in(row);
    std::string path;
    VdeRow r;
    std::uint64_t drops = 0;
    unsigned uid = 0;
    in >> path >> r.port >> r.state >> r.frames_in >> r.bytes_in >> r.frames_out >> r.bytes_out >>
        drops >> uid;
    std::getline(in >> std::ws, r.client);
    return r;
}

// What a process under test runs with.
struct Launch {
    std::vector<std::string> argv;
    std::string err_file;
    bool pipes = false;      // stdin and stdout are pipes to the test
    bool as_nobody = false;  // nobody:nogroup, no other groups
};

// A VDE program the test started, in its own process group; the destructor
// kills the group and reaps it.
class Program {
  public:
    explicit Program(Launch launch) : err_file_(launch.err_file) {
        std::array<int, 2> in{-1, -1};
        std::array<int, 2> out{-1, -1};
        if (launch.pipes &&
            (pipe2(in.data(), O_CLOEXEC) != 0 || pipe2(out.data(), O_CLOEXEC) != 0)) {
            ADD_FAILURE() << "pipe2: " << std::strerror(errno);
            return;
        }
        int err = open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        std::vector<char*> argv;
        for (auto& a : launch.argv) argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = fork_child([&] {
            setpgid(0, 0);
            dup2(launch.pipes ? in[0] : null, STDIN_FILENO);
            dup2(launch.pipes ? out[1] : null, STDOUT_FILENO);
            dup2(err, STDERR_FILENO);
            if (launch.as_nobody &&
                (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
                 setresuid(kNobody, kNobody, kNobody) != 0)) {
                return 126;
            }
            execv(argv[0], argv.data());
            return 127;
        });
        if (pid_ > 0) setpgid(pid_, pid_);
        close(err);
        close(null);
        if (launch.pipes) {
            close(in[0]);
            close(out[1]);
            in_ = Fd(in[1]);
            out_ = Fd(out[0]);
        }
    }
    ~Program() { kill(); }
    Program(const Program&) = delete;
    Program& operator=(const Program&) = delete;

    [[nodiscard]] int in() const { return in_.get(); }
    [[nodiscard]] int out() const { return out_.get(); }
    [[nodiscard]] std::string err() const { return read_whole(err_file_); }
    // SIGKILL to the group, then its wait status.
    std::optional<int> kill() {
        if (pid_ > 0 && !status_) {
            ::kill(-pid_, SIGKILL);
            status_ = wait_child(pid_, 5s);
        }
        return status_;
    }
    // Its wait status if it exits within `limit` by itself.
    std::optional<int> exited(std::chrono::milliseconds limit) {
        if (pid_ > 0 && !status_ && eventually([&] { return process_state(pid_) == 'Z'; }, limit)) {
            status_ = wait_child(pid_, 1s);
        }
        return status_;
    }

    // One frame from its stdout in stream format, "" if none came whole.
    std::string read_frame(int timeout_ms = 3000) {
        std::string head = read_n(2, timeout_ms);
        if (head.size() != 2) return "";
        auto n = (static_cast<std::size_t>(static_cast<unsigned char>(head[0])) << 8) |
                 static_cast<unsigned char>(head[1]);
        return read_n(n, timeout_ms);
    }

  private:
    std::string read_n(std::size_t n, int timeout_ms) {
        std::string got;
        while (got.size() < n) {
            Io io = read_one(out_.get(), timeout_ms, n - got.size());
            if (io.n <= 0) break;
            got += io.data;
        }
        return got;
    }

    std::string err_file_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    Fd in_, out_;
};

class VdeTest : public VdeDirTest {
  protected:
    [[nodiscard]] std::vector<std::string> tools() const override {
        return {"ping", "timeout", "vde_plug", "vde_plug2tap", "vde_switch"};
    }
    void TearDown() override { VdeDirTest::TearDown(); }

    // A network with the switch policy, served at sw_.
    std::string switch_net(const std::string& name, mode_t mode = 0755) {
        std::string net = make_net(name, mode);
        EXPECT_EQ(ctl(net, "policy switch"), 0);
        EXPECT_EQ(ctl(net, "vde " + sw_), 0) << last_error_line(ctl_text(net));
        return net;
    }
    // The stats lines of VDE clients of `net`.
    std::vector<std::string> vde_rows(const std::string& net) {
        std::vector<std::string> rows;
        const ipnfs::stats_text::Table vde = parse_stats(slurp(net + "/stats")).table("vde");
        for (std::size_t i = 0; i < vde.rows.size(); ++i) {
            if (vde.rows[i].at(0) == sw_) rows.push_back(vde.lines[i]);
        }
        return rows;
    }
    bool has_client(const std::string& net) {
        return eventually([&] { return vde_rows(net).size() == 1; }, 5s);
    }
    // The port of the only VDE client, from its stats row.
    unsigned client_port(const std::string& net) {
        auto rows = vde_rows(net);
        return rows.size() == 1 ? static_cast<unsigned>(std::stoul(rows[0].substr(sw_.size() + 1)))
                                : 9999;
    }
    Program plug(const std::string& url, const std::vector<std::string>& options = {},
                 bool as_nobody = false) {
        std::vector<std::string> argv{"/usr/bin/vde_plug"};
        argv.insert(argv.end(), options.begin(), options.end());
        argv.push_back(url);
        return Program({argv, scratch() + "/plug.err", true, as_nobody});
    }
    // vde_plug's frames reach a file port and the file port's reach it.
    static void frames_cross(const std::string& net, Program& client, unsigned file_port) {
        Fd port = open_fd(net + "/port" + std::to_string(file_port), O_RDWR);
        ASSERT_TRUE(port.ok());
        const std::string out = frame(1, "vde to file");
        ASSERT_TRUE(write_all(client.in(), framed(out)));
        Io got = read_one(port.get(), 3000);
        EXPECT_EQ(got.data, out) << "vde_plug -> port" << file_port << "\n" << client.err();
        const std::string back = frame(2, "file to vde");
        ASSERT_EQ(write_msg(port.get(), back).n, static_cast<ssize_t>(back.size()));
        EXPECT_EQ(client.read_frame(), back)
            << "port" << file_port << " -> vde_plug, in stream format";
    }
};

TEST_F(VdeTest, VdePlugExchangesFramesWithAFilePortAndItsPortIsFreedWhenKilled) {
    std::string net = switch_net("lan");
    Program client = plug(sw_);
    ASSERT_TRUE(has_client(net)) << slurp(net + "/stats") << client.err() << mount_.log();
    unsigned port = client_port(net);
    std::string row = vde_rows(net)[0];
    EXPECT_TRUE(contains(row, "running")) << row;
    EXPECT_TRUE(contains(row, "vdeplug")) << "the client's description: " << row;
    frames_cross(net, client, 7);
    EXPECT_TRUE(eventually(
        [&] { return contains(vde_rows(net).at(0), "running           1           "); }, 2s))
        << vde_rows(net).at(0);

    client.kill();
    EXPECT_TRUE(eventually([&] { return vde_rows(net).empty(); }, 5s)) << slurp(net + "/stats");
    Fd freed = open_fd(net + "/port" + std::to_string(port), O_RDWR);
    EXPECT_TRUE(freed.ok()) << "port " << port << " is still held";
    EXPECT_EQ(list_dir(sw_), std::vector<std::string>{"ctl"}) << "the client's socket is left";
}

TEST_F(VdeTest, TheVdeUrlFormAndAPortInBracketsWork) {
    std::string net = switch_net("lan");
    Program client = plug("vde://" + sw_ + "[5]");
    ASSERT_TRUE(has_client(net)) << client.err() << mount_.log();
    EXPECT_EQ(client_port(net), 5U) << "the port asked for";
    frames_cross(net, client, 2);
}

TEST_F(VdeTest, VdePlug2TapPingsATapOfTheSameNetworkInAnotherNamespace) {
    std::string net = switch_net("lan");
    NetNs a;
    NetNs b;
    ASSERT_TRUE(a.ok() && b.ok()) << a.error() << b.error();
    const std::string vtap = ifname("vde");
    std::vector<std::string> argv = a.enter();
    argv[0] = "/usr/bin/nsenter";
    for (const std::string& word :
         {std::string("/usr/bin/vde_plug2tap"), std::string("-s"), sw_, vtap}) {
        argv.push_back(word);
    }
    Program plug2tap({argv, scratch() + "/plug2tap.err"});
    ASSERT_TRUE(has_client(net)) << plug2tap.err() << mount_.log();
    ASSERT_TRUE(eventually([&] { return a.sh("ip link show " + vtap).exit_code() == 0; }, 5s))
        << plug2tap.err();
    Shell up = a.configure(vtap, {"10.77.0.1/24"});
    ASSERT_EQ(up.exit_code(), 0) << describe(up);
    ASSERT_TRUE(tap_into(net, ifname("tap"), b, {"10.77.0.2/24"}));

    Shell ab = a.ping("10.77.0.2");
    EXPECT_EQ(ab.exit_code(), 0) << describe(ab) << plug2tap.err();
    Shell ba = b.ping("10.77.0.1");
    EXPECT_EQ(ba.exit_code(), 0) << describe(ba);
    auto rows = vde_rows(net);
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_FALSE(contains(rows[0], "running           0 ")) << "no frame came in: " << rows[0];
}

// What docs/vde.md tells a qemu user: -netdev vde,sock=PATH at the endpoint.
// A PC with an e1000 and no disk boots its NIC's ROM (iPXE, ipxe-qemu), whose
// DHCP goes qemu -> endpoint -> switch -> TAP to dnsmasq in a namespace and
// back: a DHCPREQUEST answering dnsmasq's offer, then its DHCPACK, show both
// directions.  No KVM (TCG), no display; a few seconds.
TEST_F(VdeTest, QemuNetdevVdeGetsADhcpLeaseFromDnsmasqBehindATap) {
    const std::string qemu = "/usr/bin/qemu-system-x86_64";
    const std::string dnsmasq = "/usr/sbin/dnsmasq";
    for (const auto& tool : {qemu, dnsmasq}) {
        if (access(tool.c_str(), X_OK) != 0) {
            IPNFS_SKIP_OR_FAIL(tool + " is not installed (tools/deps.sh installs it)");
        }
    }
    const std::string mac = "52:54:00:12:34:56";
    std::string net = switch_net("lan");
    NetNs ns;
    ASSERT_TRUE(ns.ok()) << ns.error();
    const std::string tap_name = ifname("dhcp");
    ASSERT_TRUE(tap_into(net, tap_name, ns, {"10.77.1.1/24"}));

    // dnsmasq serves DHCP only, on the TAP.  --no-ping: it would otherwise
    // ping an address for 3 s before offering it; option 175.176 (iPXE's
    // no-pxedhcp): iPXE would otherwise wait 3 s for ProxyDHCP offers.
    const std::string leases = scratch() + "/dnsmasq.leases";
    std::vector<std::string> dhcp_argv = ns.enter();
    dhcp_argv[0] = "/usr/bin/nsenter";
    dhcp_argv.insert(
        dhcp_argv.end(),
        {dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=" + tap_name,
         "--bind-interfaces", "--dhcp-range=10.77.1.100,10.77.1.150,1h",
         "--dhcp-leasefile=" + leases, "--pid-file=" + scratch() + "/dnsmasq.pid", "--user=root",
         "--no-ping", "--dhcp-option=encap:175,176,1", "--log-dhcp", "--log-facility=-"});
    Program dhcp({dhcp_argv, scratch() + "/dnsmasq.err"});
    ASSERT_TRUE(eventually([&] { return contains(dhcp.err(), "DHCP, IP range"); }, 5s))
        << "dnsmasq did not start:\n"
        << dhcp.err();

    const std::string bios_log = scratch() + "/seabios.log";
    Program vm({{qemu,        "-accel",
                 "tcg",       "-nodefaults",
                 "-display",  "none",
                 "-monitor",  "none",
                 "-serial",   "none",
                 "-m",        "64",
                 "-debugcon", "file:" + bios_log,
                 "-global",   "isa-debugcon.iobase=0x402",
                 "-netdev",   "vde,id=n0,sock=" + sw_ + ",port=5",
                 "-device",   "e1000,netdev=n0,mac=" + mac,
                 "-boot",     "n"},
                scratch() + "/qemu.err"});
    ASSERT_TRUE(has_client(net)) << "qemu did not plug in:\n"
                                 << vm.err() << slurp(net + "/stats") << mount_.log();
    VdeRow row = parse_vde_row(vde_rows(net).at(0));
    EXPECT_EQ(row.state, "running") << vde_rows(net).at(0);
    EXPECT_EQ(row.port, 5U) << "the port qemu asked for (port=5)";
    EXPECT_TRUE(contains(row.client, "QEMU")) << "qemu's description: " << row.client;
    EXPECT_TRUE(contains(ctl_text(net), "\nvde " + sw_ + "\n")) << ctl_text(net);

    // iPXE's DHCPDISCOVER, dnsmasq's DHCPOFFER, iPXE's DHCPREQUEST (it got
    // the offer), dnsmasq's DHCPACK.
    const std::string ack = "DHCPACK(" + tap_name + ") 10.77.1.";
    bool acked = eventually([&] { return contains(dhcp.err(), ack); }, 30s);
    ASSERT_TRUE(acked) << "no DHCPACK for qemu within 30 s\n---- dnsmasq ----\n"
                       << dhcp.err() << "---- qemu ----\n"
                       << vm.err() << "---- SeaBIOS ----\n"
                       << read_whole(bios_log) << "---- stats ----\n"
                       << slurp(net + "/stats");
    std::string log = dhcp.err();
    for (const char* step : {"DHCPDISCOVER", "DHCPOFFER", "DHCPREQUEST", "DHCPACK"}) {
        EXPECT_TRUE(contains(log, std::string(step) + "(" + tap_name + ")"))
            << step << " missing:\n"
            << log;
    }
    std::string ack_line = log.substr(log.find(ack));
    ack_line.resize(ack_line.find('\n'));
    EXPECT_TRUE(contains(ack_line, mac)) << ack_line;
    EXPECT_TRUE(eventually([&] { return contains(read_whole(leases), mac); }, 2s))
        << "dnsmasq's lease file:\n"
        << read_whole(leases);
    // dnsmasq logs its DHCPACK before it sends it.
    EXPECT_TRUE(eventually(
        [&] {
            auto rows = vde_rows(net);
            if (rows.size() != 1) return false;
            row = parse_vde_row(rows[0]);
            return row.frames_in >= 2 && row.frames_out >= 2;
        },
        2s))
        << "DHCPDISCOVER and DHCPREQUEST from qemu, DHCPOFFER and DHCPACK to it:\n"
        << slurp(net + "/stats");

    // qemu killed: its port is free again and its socket gone.
    vm.kill();
    EXPECT_TRUE(eventually([&] { return vde_rows(net).empty(); }, 5s)) << slurp(net + "/stats");
    Fd freed = open_fd(net + "/port" + std::to_string(row.port), O_RDWR);
    EXPECT_TRUE(freed.ok()) << "qemu's port " << row.port << " is still held";
    EXPECT_EQ(list_dir(sw_), std::vector<std::string>{"ctl"}) << "qemu's socket is left";
}

TEST_F(VdeTest, TheEndpointFollowsTheNetworksPermissionsForOtherUsers) {
    std::string net = switch_net("lan", 0755);
    auto mode_of = [](const std::string& path) {
        struct stat st {};
        return stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 07777U;
    };
    EXPECT_EQ(mode_of(sw_), 0755U) << "root's, whatever the network's mode";
    EXPECT_EQ(mode_of(sw_ + "/ctl"), 0600U);
    {
        Program refused = plug(sw_, {}, true);
        std::optional<int> status = refused.exited(5s);
        ASSERT_TRUE(status) << "nobody's vde_plug was served on a 0755 network";
        EXPECT_NE(exit_code_of(status), 0);
        EXPECT_TRUE(contains(refused.err(), "ermission denied")) << refused.err();
        EXPECT_TRUE(vde_rows(net).empty());
    }
    ASSERT_EQ(chmod(net.c_str(), 0777), 0);
    EXPECT_EQ(mode_of(sw_), 0755U) << "writable by root alone: nobody's socket goes elsewhere";
    EXPECT_EQ(mode_of(sw_ + "/ctl"), 0666U);
    // nobody's data socket is its own, mode 0600 (in /var/tmp: vde_plug's
    // fallback); the daemon reaches it as nobody and serves it.
    Program client = plug(sw_, {"-m", "0600"}, true);
    ASSERT_TRUE(has_client(net)) << client.err() << mount_.log();
    EXPECT_TRUE(contains(vde_rows(net)[0], " 65534 ")) << "the client's uid: " << vde_rows(net)[0];
    frames_cross(net, client, 3);
    for (const auto& name : list_dir(sw_)) {
        if (name == "ctl") continue;
        struct stat st {};
        ASSERT_EQ(lstat((sw_ + "/" + name).c_str(), &st), 0) << name;
        EXPECT_EQ(st.st_uid, kNobody) << name << ": the port's socket is the client's";
    }
    ASSERT_EQ(chmod(net.c_str(), 0750), 0);
    EXPECT_EQ(mode_of(sw_), 0755U);
    EXPECT_EQ(mode_of(sw_ + "/ctl"), 0600U);
}

TEST_F(VdeTest, MistakesGetTheirErrnoAndReason) {
    std::string net = make_net("lan");
    EXPECT_EQ(ctl(net, "vde relative/sw"), EINVAL);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "not an endpoint name"));
    EXPECT_EQ(ctl(net, "vde " + base_ + "/missing/sw"), EPERM);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "VDE endpoints are made only there"))
        << ctl_text(net);
    Fd file(open((base_ + "/file").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(file.ok()) << std::strerror(errno);
    EXPECT_EQ(ctl(net, "vde " + base_ + "/file"), ENOTDIR);
    EXPECT_EQ(ctl(net, "unvde " + sw_), ENODEV);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "no VDE endpoint"));

    // A live vde_switch at the path, then another network of this daemon.
    {
        const std::string other = base_ + "/theirs";
        Program vde_switch({{"/usr/bin/vde_switch", "-s", other}, scratch() + "/switch.err", true});
        ASSERT_TRUE(eventually([&] { return fs::exists(other + "/ctl"); }, 5s)) << vde_switch.err();
        EXPECT_EQ(ctl(net, "vde " + other), EADDRINUSE);
        EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "already listens"));
    }
    ASSERT_EQ(ctl(net, "vde " + sw_), 0);
    std::string second = make_net("second");
    EXPECT_EQ(ctl(second, "vde " + sw_), EADDRINUSE);
    EXPECT_EQ(ctl(net, "vde " + sw_), EADDRINUSE);

    // Root without CAP_NET_ADMIN.
    Shell denied =
        root_sh("setpriv --inh-caps=-net_admin --bounding-set=-net_admin /bin/echo 'vde " + base_ +
                "/x' > " + sq(net + "/ctl"));
    EXPECT_NE(denied.exit_code(), 0);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "vde needs CAP_NET_ADMIN"))
        << ctl_text(net);
    EXPECT_FALSE(fs::exists(base_ + "/x"));
}

TEST_F(VdeTest, AGarbageRequestIsDroppedAndLoggedAndTheNextClientServed) {
    std::string net = switch_net("lan");
    {
        Fd garbage(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strcpy(addr.sun_path, (sw_ + "/ctl").c_str());
        ASSERT_EQ(connect(garbage.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        ASSERT_TRUE(write_all(garbage.get(), std::string(200, 'g')));
        Io end = read_one(garbage.get(), 3000);
        EXPECT_EQ(end.n, 0) << "the connection was not closed";
    }
    EXPECT_TRUE(eventually([&] { return contains(mount_.log(), "not a VDE request"); }, 3s))
        << mount_.log();
    EXPECT_TRUE(contains(mount_.log(), "network=lan uid=0 event=vde-client-drop: vde " + sw_));
    Program client = plug(sw_);
    ASSERT_TRUE(has_client(net)) << client.err();
    frames_cross(net, client, 4);
}

TEST_F(VdeTest, RemovingTheNetworkEndsItsClientsAndRemovesThePath) {
    std::string net = switch_net("lan");
    Program client = plug(sw_);
    ASSERT_TRUE(has_client(net)) << client.err();
    // vde_plug (root) bound its own socket in the directory too, and removes
    // it once connected: `vde` removes only what it made.
    EXPECT_TRUE(eventually([&] { return list_dir(sw_).size() == 2; }, 5s)) << list_dir(sw_).size();
    ASSERT_EQ(rmdir(net.c_str()), 0);
    EXPECT_FALSE(fs::exists(sw_)) << "rmdir left " << sw_;
    EXPECT_TRUE(client.exited(5s)) << "vde_plug outlived the network";
}

TEST_F(VdeTest, UnvdeEndsItsClientsAndKeepsADirectoryItDidNotMake) {
    ASSERT_EQ(mkdir(sw_.c_str(), 0700), 0);
    std::string net = switch_net("lan");
    Program client = plug(sw_);
    ASSERT_TRUE(has_client(net)) << client.err();
    EXPECT_TRUE(contains(ctl_text(net), "\nvde " + sw_ + "\n")) << ctl_text(net);
    ASSERT_EQ(ctl(net, "unvde " + sw_), 0);
    EXPECT_TRUE(client.exited(5s)) << "vde_plug outlived unvde";
    EXPECT_TRUE(vde_rows(net).empty());
    EXPECT_TRUE(fs::is_directory(sw_));
    EXPECT_TRUE(list_dir(sw_).empty()) << "left: " << list_dir(sw_).size();
}

// docs/usage.md, "Spanning tree": a VDE client is a port like any other,
// so with `stp on` it gets the switch's BPDUs in its stream, and a BPDU it
// sends is the switch's (it names the client's port the root port), not
// forwarded to other ports.
TEST_F(VdeTest, AVdeClientGetsAndSendsBpdusWithStpOn) {
    std::string net = switch_net("lan");
    ASSERT_EQ(ctl(net, "stp hello 1\nstp on"), 0) << last_error_line(ctl_text(net));
    Program client = plug(sw_);
    ASSERT_TRUE(has_client(net)) << slurp(net + "/stats") << client.err();
    unsigned port = client_port(net);
    Fd other = open_fd(net + "/port7", O_RDWR);
    ASSERT_TRUE(other.ok());
    // To the bridge group address, 802.3 length 38, LLC 42 42 03, protocol 0.
    std::string bpdu = client.read_frame(3000);
    ASSERT_GE(bpdu.size(), 52U) << client.err();
    EXPECT_EQ(bpdu.substr(0, 6), std::string("\x01\x80\xc2\x00\x00\x00", 6));
    EXPECT_EQ(bpdu.substr(12, 9), std::string("\x00\x26\x42\x42\x03\x00\x00\x00\x00", 9));
    // A configuration BPDU from a better root (priority 0) at the client.
    std::string better(60, '\0');
    const unsigned char head[] = {0x01, 0x80, 0xc2, 0,    0,    0,    0x02, 0,   0,
                                  0,    0,    0x09, 0x00, 0x26, 0x42, 0x42, 0x03};
    better.replace(0, sizeof head, reinterpret_cast<const char*>(head), sizeof head);
    const unsigned char id[] = {0x00, 0x00, 0x02, 0, 0, 0, 0, 0x09};
    better.replace(22, 8, reinterpret_cast<const char*>(id), 8);  // root
    better.replace(34, 8, reinterpret_cast<const char*>(id), 8);  // bridge
    better[42] = '\x80';
    better[43] = '\x01';
    better[46] = 20;  // max age 20 s, hello 2 s, forward delay 15 s (1/256 s)
    better[48] = 2;
    better[50] = 15;
    ASSERT_TRUE(write_all(client.in(), framed(better)));
    std::string want = "root_port " + std::to_string(port) + " ";
    EXPECT_TRUE(eventually([&] { return contains(slurp(net + "/stats"), want); }, 3s))
        << slurp(net + "/stats");
    EXPECT_TRUE(contains(slurp(net + "/stats"), "root_id 0000.020000000009"))
        << slurp(net + "/stats");
    // Port 7 only ever hears the switch's own BPDUs, never the client's.
    for (;;) {
        Io io = read_one(other.get(), 300);
        if (io.timed_out() || io.n <= 0) break;
        EXPECT_NE(io.data.substr(6, 6), better.substr(6, 6)) << "the client's BPDU was forwarded";
    }
}

}  // namespace
}  // namespace ipnfs_it
