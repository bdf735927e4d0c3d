// TAP offloads: the daemon opens its TAPs with virtio_net_hdr and the
// kernel's checksum and TSO offloads, so TCP between two TAPs of a switch
// network crosses it in superframes of up to 64 KiB, checksums left to the
// receiving kernel.  A port that takes only plain frames (a port file, a
// capture reader) still gets wire-size frames with valid checksums: the
// sending TAP's superframes are cut for it.
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

// python3 from the distribution if there is one (a version manager's shim
// is slow to start under ip netns exec).
std::string python() {
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

// The TCP checksum errors a namespace's kernel counted (/proc/net/snmp).
constexpr const char* kCsumErrors =
    "awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == \"InCsumErrors\") c = i; h = 1 }"
    " else print $c }' /proc/net/snmp";

// Reads frames from a port file until a stop file appears (or 30 s pass)
// and checks each as a receiving NIC would: no longer than an
// Ethernet frame of MTU 1500, and every IPv4 header and TCP checksum right.
// Prints "frames N tcp T longest L bad B".
constexpr const char* kFrameChecker = R"(import os, select, struct, sys, time
def fold(s):
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s
def ones(b):
    if len(b) % 2:
        b += b'\0'
    return fold(sum(struct.unpack('!%dH' % (len(b) // 2), b)))
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
open(sys.argv[2], 'w').close()  # ready
frames = tcp = longest = bad = 0
end = time.time() + 30
while time.time() < end and not os.path.exists(sys.argv[3]):
    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        continue
    try:
        f = os.read(fd, 65536)
    except BlockingIOError:
        continue
    frames += 1
    longest = max(longest, len(f))
    if len(f) < 34 or f[12:14] != b'\x08\x00':
        continue
    ihl = (f[14] & 15) * 4
    ip = f[14:14 + ihl]
    if ones(ip) != 0xffff:
        bad += 1
        continue
    if f[23] != 6:
        continue
    tcp += 1
    total = struct.unpack('!H', f[16:18])[0]
    seg = f[14 + ihl:14 + total]
    pseudo = f[26:34] + struct.pack('!HH', 6, len(seg))
    if ones(pseudo + seg) != 0xffff:
        bad += 1
print('frames', frames, 'tcp', tcp, 'longest', longest, 'bad', bad)
)";

class NetdevTapOffloadTest : public NetdevTest {
  protected:
    std::vector<std::string> tools() const override {
        return {"ping", "timeout", "python3", "iperf3", "awk"};
    }

    // The network's settings, written before its TAPs are made.
    [[nodiscard]] virtual std::string settings() const { return "policy switch\n"; }

    void SetUp() override {
        NetdevTest::SetUp();
        if (IsSkipped()) return;
        net_ = make_net("lan");
        ASSERT_EQ(ctl(net_, settings()), 0) << last_error_line(ctl_text(net_));
        ASSERT_TRUE(ns1_.ok()) << ns1_.error();
        ASSERT_TRUE(ns2_.ok()) << ns2_.error();
        ASSERT_TRUE(tap_into(net_, t1_, ns1_, {"10.0.0.1/24"}));
        ASSERT_TRUE(tap_into(net_, t2_, ns2_, {"10.0.0.2/24"}));
        Shell ping = ns1_.ping("10.0.0.2");
        ASSERT_EQ(ping.exit_code(), 0) << describe(ping);
    }

    // iperf3 TCP from ns1 to ns2 for `seconds`: the receiver's Mbit/s, or
    // -1 after reporting why it failed.  `before` and `after` run around it
    // in the same shell, so what `before` starts in the background lives
    // through it.
    double iperf(int seconds, const std::string& before = "", const std::string& after = "") {
        Shell run = root_sh(before + ns2_.exec() +
                                "iperf3 -s -1 -p 5201 >/dev/null 2>&1 & s=$!\n"
                                "sleep 0.5\n" +
                                ns1_.exec() + "iperf3 -c 10.0.0.2 -p 5201 -f m -t " +
                                std::to_string(seconds) +
                                " || { kill $s; exit 3; }\n"
                                "wait $s\n" +
                                after,
                            seconds + 40.0);
        if (run.exit_code() != 0) {
            ADD_FAILURE() << "iperf3: " << describe(run);
            return -1;
        }
        // "[  5]   0.00-3.00   sec  1.23 GBytes  3520 Mbits/sec    receiver"
        std::istringstream lines(run.out);
        std::string line;
        double mbits = -1;
        while (std::getline(lines, line)) {
            if (!contains(line, "receiver")) continue;
            std::istringstream words(line);
            std::string w, prev;
            while (words >> w) {
                if (w == "Mbits/sec") mbits = std::stod(prev);
                prev = w;
            }
        }
        if (mbits < 0) ADD_FAILURE() << "no receiver line in iperf3's output:\n" << run.out;
        return mbits;
    }

    static std::uint64_t csum_errors(const NetNs& ns) {
        Shell sh = ns.sh(kCsumErrors, 10);
        EXPECT_EQ(sh.exit_code(), 0) << describe(sh);
        try {
            return std::stoull(sh.out);
        } catch (const std::exception&) {
            ADD_FAILURE() << "no InCsumErrors in /proc/net/snmp: " << sh.out;
            return 0;
        }
    }

    // A port file mirrors the network while iperf3 runs between the TAPs,
    // which must pass more than `floor_mbits`.
    void mirror_reads_only_wire_frames(double floor_mbits);

    std::string net_;
    NetNs ns1_, ns2_;
    const std::string t1_ = ifname("t1"), t2_ = ifname("t2");
};

TEST_F(NetdevTapOffloadTest, TcpBetweenTwoTapsCrossesTheSwitchInSuperframes) {
    double mbits = iperf(3);
    ASSERT_GT(mbits, 0);
    RecordProperty("mbits", std::to_string(mbits));
    // Far below what it does (many Gbit/s), so that a loaded machine passes.
    EXPECT_GT(mbits, 100) << "iperf3 TCP between two TAPs";
    EXPECT_EQ(csum_errors(ns2_), 0u) << "ns2's kernel dropped segments with bad checksums";
    EXPECT_EQ(csum_errors(ns1_), 0u) << "ns1's kernel dropped segments with bad checksums";

    NetStats st = net_stats(net_);
    auto sender = st.ifaces.find(t1_);
    auto receiver = st.ifaces.find(t2_);
    ASSERT_NE(sender, st.ifaces.end()) << st.text;
    ASSERT_NE(receiver, st.ifaces.end()) << st.text;
    // Wire frames are at most 1514 bytes; superframes average far more.
    ASSERT_GT(sender->second.frames_in, 0u) << st.text;
    ASSERT_GT(receiver->second.frames_out, 0u) << st.text;
    EXPECT_GT(sender->second.bytes_in / sender->second.frames_in, 3000u)
        << "the sending TAP handed over wire-size frames, not superframes:\n"
        << st.text;
    EXPECT_GT(receiver->second.bytes_out / receiver->second.frames_out, 3000u)
        << "the receiving TAP was given wire-size frames, not superframes:\n"
        << st.text;
    EXPECT_EQ(sender->second.drops, 0u) << st.text;
    EXPECT_EQ(receiver->second.drops, 0u) << st.text;
}

void NetdevTapOffloadTest::mirror_reads_only_wire_frames(double floor_mbits) {
    // A port file that gets a copy of every frame: each TAP's superframes
    // must be cut, and their checksums filled in, for it.
    ASSERT_EQ(ctl(net_, "mirror 20 on\n"), 0) << last_error_line(ctl_text(net_));
    const std::string checker = scratch() + "/check.py", ready = scratch() + "/ready";
    const std::string verdict = scratch() + "/verdict";
    {
        std::ofstream out(checker);
        out << kFrameChecker;
    }
    const std::string stop = scratch() + "/stop";
    double mbits =
        iperf(2,
              python() + " " + sq(checker) + " " + sq(net_ + "/port20") + " " + sq(ready) + " " +
                  sq(stop) + " > " + sq(verdict) + " & c=$!\n" + "for i in $(seq 50); do [ -e " +
                  sq(ready) + " ] && break; sleep 0.1; done\n",
              "touch " + sq(stop) + "; wait $c\n");
    EXPECT_GT(mbits, floor_mbits) << "iperf3 TCP between two TAPs with a mirror port file reading";
    ASSERT_FALSE(read_whole(verdict).empty()) << "the checker printed nothing";
    RecordProperty("checker", read_whole(verdict));
    RecordProperty("mbits", std::to_string(mbits));
    std::istringstream words(read_whole(verdict));
    std::string w;
    std::uint64_t frames = 0, tcp = 0, longest = 0, bad = 0;
    words >> w >> frames >> w >> tcp >> w >> longest >> w >> bad;
    EXPECT_GT(tcp, 1000u) << read_whole(verdict);
    EXPECT_LE(longest, 1514u) << "the mirror port file read a superframe: " << read_whole(verdict);
    EXPECT_EQ(bad, 0u) << "frames with a bad checksum: " << read_whole(verdict);
    EXPECT_EQ(csum_errors(ns2_), 0u);

    NetStats st = net_stats(net_);
    auto sender = st.ifaces.find(t1_);
    ASSERT_NE(sender, st.ifaces.end()) << st.text;
    EXPECT_EQ(sender->second.drops, 0u) << "superframes that could not be cut:\n" << st.text;
}

TEST_F(NetdevTapOffloadTest, AMirrorPortFileReadsOnlyWireFramesWithValidChecksums) {
    mirror_reads_only_wire_frames(50);
}

// Lossless: a wire frame cut from a superframe that must wait for room
// parks, and the rest of the superframe follows once it went.
class NetdevTapOffloadLosslessTest : public NetdevTapOffloadTest {
  protected:
    [[nodiscard]] std::string settings() const override {
        return "policy switch\nlossless on\nholdtime 0\n";
    }
};

TEST_F(NetdevTapOffloadLosslessTest, AMirrorPortFileReadsOnlyWireFramesWithValidChecksums) {
    // Every frame waits for python3 to read its copy.
    mirror_reads_only_wire_frames(5);
}

}  // namespace
}  // namespace ipnfs_it
