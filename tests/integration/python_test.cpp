// The ipnfs Python package (python/ipnfs) against a real mount, run by
// Debian's python3 from the source tree (PYTHONPATH=python): framed records,
// every address kind, events, credentials, big messages, asyncio,
// non-blocking reads, port ctl, and its copy of include/ipnfs.h checked
// against the header as the compiler sees it.
#include <ipnfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_user.hpp"

#ifndef IPNFS_SOURCE_DIR
#error "IPNFS_SOURCE_DIR must name the source tree"
#endif

namespace ipnfs_it {
namespace {

// Debian's interpreter, the one the installed module is for.
const std::string kPython3 = "/usr/bin/python3";
const std::string kPackageDir = IPNFS_SOURCE_DIR "/python";

// `code` under python3 with the package on its path; argv[1..] = args.
// No __pycache__ is left in the source tree.
Shell run_python(const std::string& code, const std::vector<std::string>& args = {},
                 double timeout_s = 30) {
    std::vector<std::string> argv = {
        "env", "PYTHONPATH=" + kPackageDir, "PYTHONDONTWRITEBYTECODE=1", kPython3, "-c", code};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_argv(argv, timeout_s);
}

class PythonTest : public IpnfsTest {
  protected:
    void SetUp() override {
        struct stat st {};
        if (stat(kPython3.c_str(), &st) != 0) IPNFS_SKIP_OR_FAIL(kPython3 + " is not installed");
        IpnfsTest::SetUp();
    }
    // Other users reach the mount only with allow_other.
    std::vector<std::string> mount_options() const override { return {"allow_other"}; }
    // Runs `code` with the network as argv[1]; its output, after checking
    // that it ended well.
    std::string python(const std::string& code, const std::string& net, double timeout_s = 30) {
        Shell sh = run_python(code, {net}, timeout_s);
        EXPECT_FALSE(sh.timed_out) << "python3 did not end within " << timeout_s << " s\n"
                                   << sh.out << sh.err;
        EXPECT_EQ(sh.exit_code(), 0) << sh.err;
        return sh.out;
    }
    std::string group(const std::string& settings = "") {
        std::string net = make_net("g");
        EXPECT_EQ(ctl(net, "policy group\n" + settings), 0) << last_error_line(ctl_text(net));
        return net;
    }
};

// A value of include/ipnfs.h and the Python expression over ipnfs.abi that
// must equal it.
struct AbiValue {
    const char* python;
    unsigned long long c;
};

const AbiValue kAbi[] = {
    {"FRAME_VERSION", IPNFS_FRAME_VERSION},
    {"DATA", IPNFS_DATA},
    {"JOIN", IPNFS_JOIN},
    {"LEAVE", IPNFS_LEAVE},
    {"COUNTS", IPNFS_COUNTS},
    {"LOST", IPNFS_LOST},
    {"FLAG_TRUNCATED", IPNFS_FLAG_TRUNCATED},
    {"FLAG_CREDS", IPNFS_FLAG_CREDS},
    {"FLAG_NODE", IPNFS_FLAG_NODE},
    {"TO_DEFAULT", IPNFS_TO_DEFAULT},
    {"TO_PORT", IPNFS_TO_PORT},
    {"TO_ANYCAST", IPNFS_TO_ANYCAST},
    {"TO_MULTICAST", IPNFS_TO_MULTICAST},
    {"TO_BROADCAST", IPNFS_TO_BROADCAST},
    {"TO_SHIFT", IPNFS_TO_SHIFT},
    {"TO_MASK", IPNFS_TO_MASK},
    {"flags_to(TO_MULTICAST)", IPNFS_FLAGS_TO(IPNFS_TO_MULTICAST)},
    {"flags_get_to(0x301)", IPNFS_FLAGS_GET_TO(0x301u)},
    {"RECORD_ALIGN", IPNFS_RECORD_ALIGN},
    {"record_size(0)", IPNFS_RECORD_SIZE(0)},
    {"record_size(13)", IPNFS_RECORD_SIZE(13)},
    {"extra_size(FLAG_CREDS)", IPNFS_EXTRA_SIZE(IPNFS_FLAG_CREDS)},
    {"extra_size(FLAG_CREDS|FLAG_NODE)", IPNFS_EXTRA_SIZE(IPNFS_FLAG_CREDS | IPNFS_FLAG_NODE)},
    {"RECORD.size", sizeof(struct ipnfs_record)},
    {"CREDS.size", sizeof(struct ipnfs_creds)},
    {"NODE.size", sizeof(struct ipnfs_node)},
    {"COUNTS_STRUCT.size", sizeof(struct ipnfs_counts)},
    {"PORT_CTL_LINE", sizeof(struct ipnfs_port_ctl)},
    {"IOC_MAGIC", IPNFS_IOC_MAGIC},
    {"IOC_SET_FRAMED", IPNFS_IOC_SET_FRAMED},
    {"IOC_GET_PORT", IPNFS_IOC_GET_PORT},
    {"IOC_SET_EVENTS", IPNFS_IOC_SET_EVENTS},
    {"IOC_PORT_CTL", IPNFS_IOC_PORT_CTL},
    {"IOC_NEXT_SIZE", IPNFS_IOC_NEXT_SIZE},
    {"IOC_SET_CREDS", IPNFS_IOC_SET_CREDS},
};

// Every constant, ioctl number and struct size of the module, as the C
// compiler sees the header; no mount needed.
TEST(PythonAbi, TheModuleSaysWhatIpnfsHSays) {
    struct stat st {};
    if (stat(kPython3.c_str(), &st) != 0) IPNFS_SKIP_OR_FAIL(kPython3 + " is not installed");
    std::string names;
    std::string expected;
    for (const AbiValue& v : kAbi) {
        names += std::string(v.python) + "\n";
        expected += std::string(v.python) + " " + std::to_string(v.c) + "\n";
    }
    Shell sh = run_python(R"py(
import sys
from ipnfs import abi
from ipnfs.abi import *
for name in sys.argv[1].splitlines():
    print("%s %d" % (name, eval(name)))
)py",
                          {names});
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_EQ(sh.out, expected);
}

TEST_F(PythonTest, FramedSendAndRecvCarryRecordsWhole) {
    std::string net = make_net("lan");
    std::string out = python(R"py(
import sys, ipnfs
net = sys.argv[1]
with ipnfs.Port(net, 1, write=False) as rx, ipnfs.Port(net) as tx:
    print("clone connected to port", tx.port, "; rx is port", rx.port)
    tx.send(b"hello\nworld")
    r = rx.recv()
    print(r.kind.name, r.port, r.payload, r.length, r.truncated, r.to.name, r.creds)
    print("taken", tx.send_many([b"one", (b"two", None), b"three"]))
    print([(r.kind.name, r.payload) for r in (rx.recv(), rx.recv(), rx.recv())])
    try:
        tx.send(b"")
    except ValueError as e:
        print("ValueError:", e)
)py",
                             net);
    EXPECT_EQ(out,
              "clone connected to port 0 ; rx is port 1\n"
              "DATA 0 b'hello\\nworld' 11 False DEFAULT None\n"
              "taken 3\n"
              "[('DATA', b'one'), ('DATA', b'two'), ('DATA', b'three')]\n"
              "ValueError: a message needs at least one byte (an empty one would read as end of "
              "file)\n");
}

TEST_F(PythonTest, EveryAddressKindReachesWhomTheGroupSays) {
    std::string net = group();
    std::string out = python(R"py(
import errno, sys, ipnfs
net = sys.argv[1]
tx = ipnfs.Port(net, 0)
rx = {n: ipnfs.Port(net, n, write=False, blocking=False) for n in (1, 2, 3, 4)}
rx[1].port_ctl("member 7")
rx[2].port_ctl("member 7")
rx[3].port_ctl("member 9")

def received():
    got = []
    for n, port in rx.items():
        while True:
            try:
                r = port.recv()
            except BlockingIOError:
                break
            got.append("%d:%s/%s" % (n, r.payload.decode(), r.to.name))
    return " ".join(got)

tx.send(b"u", to=ipnfs.ToPort(3))
print("unicast 3:", received())
tx.send(b"a1", to=ipnfs.Anycast(7))
tx.send(b"a2", to=ipnfs.Anycast(7))
print("anycast 7:", received())
tx.send(b"m", to=ipnfs.Multicast(7, 9))
print("multicast 7-9:", received())
tx.send(b"m9", to=ipnfs.Multicast(9))
print("multicast 9:", received())
tx.send(b"b", to=ipnfs.Broadcast())
print("broadcast:", received())
tx.send(b"d")
print("default (broadcast):", received())
for to in (ipnfs.ToPort(8), ipnfs.Anycast(5)):
    try:
        tx.send(b"x", to=to)
    except OSError as e:
        print(to, errno.errorcode[e.errno])
try:
    ipnfs.Multicast(9, 7)
except ValueError as e:
    print("ValueError:", e)
)py",
                             net);
    EXPECT_EQ(out,
              "unicast 3: 3:u/PORT\n"
              "anycast 7: 1:a1/ANYCAST 2:a2/ANYCAST\n"
              "multicast 7-9: 1:m/MULTICAST 2:m/MULTICAST 3:m/MULTICAST\n"
              "multicast 9: 3:m9/MULTICAST\n"
              "broadcast: 1:b/BROADCAST 2:b/BROADCAST 3:b/BROADCAST 4:b/BROADCAST\n"
              "default (broadcast): 1:d/DEFAULT 2:d/DEFAULT 3:d/DEFAULT 4:d/DEFAULT\n"
              "ToPort(port=8, node=0) EHOSTUNREACH\n"
              "Anycast(instance=5) EHOSTUNREACH\n"
              "ValueError: upper (7) is below lower (9)\n");
}

TEST_F(PythonTest, EventsAndCredsSayWhoCameWroteAndLeft) {
    std::string net = make_net("lan");
    std::string out = python(R"py(
import os, sys, ipnfs
net = sys.argv[1]
watch = ipnfs.Port(net, 0, write=False, events=True, creds=True)
with ipnfs.Port(net, 5, read=False) as p5:
    p5.send(b"bye")
me = os.getpid()
for _ in range(6):
    r = watch.recv()
    who = "" if r.creds is None else " by %s uid=%d gid=%d" % (
        "me" if r.creds.pid == me else r.creds.pid, r.creds.uid, r.creds.gid)
    line = "%s %d" % (r.kind.name, r.port)
    if r.counts:
        line += " receivers=%d senders=%d" % (r.counts.receivers, r.counts.senders)
    if r.kind == ipnfs.Kind.DATA:
        line += " " + repr(r.payload)
    print(line + who)
)py",
                             net);
    EXPECT_EQ(out,
              "COUNTS 0 receivers=1 senders=0\n"
              "JOIN 5 by me uid=0 gid=0\n"
              "COUNTS 5 receivers=1 senders=1\n"
              "DATA 5 b'bye' by me uid=0 gid=0\n"
              "LEAVE 5\n"
              "COUNTS 5 receivers=1 senders=0\n");
}

TEST_F(PythonTest, CredsNameAnotherProcessThatWrote) {
    std::string net = make_net("lan");
    std::string out = python(R"py(
import os, subprocess, sys, ipnfs
net = sys.argv[1]
with ipnfs.Port(net, 1, write=False, creds=True) as rx:
    writer = subprocess.Popen(["sh", "-c", 'echo hi > "$0"/port2', net])
    writer.wait()
    r = rx.recv()
    print(r.payload, r.creds.pid == writer.pid, r.creds.pid == os.getpid(), r.creds.uid)
    rx.creds = False
    with ipnfs.Port(net, 2, read=False) as tx:
        tx.send(b"again")
    print(rx.recv().creds)
)py",
                             net);
    EXPECT_EQ(out, "b'hi\\n' True False 0\nNone\n");
}

TEST_F(PythonTest, ABigMessageComesWholeThroughASmallBuffer) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "mtu 65535\n"), 0) << last_error_line(ctl_text(net));
    std::string out = python(R"py(
import sys, ipnfs
net = sys.argv[1]
with ipnfs.Port(net, 1, write=False, bufsize=64) as rx, ipnfs.Port(net, 2) as tx:
    print("nothing waits:", rx.next_size())
    big = bytes(range(256)) * 255 + b"end"
    tx.send(b"small")
    tx.send(big)
    print("next:", rx.next_size())
    r = rx.recv()
    print(r.payload, r.truncated)
    print("next:", rx.next_size())
    r = rx.recv()
    print(r.length, len(r.payload), r.payload == big, r.truncated)
)py",
                             net);
    EXPECT_EQ(out,
              "nothing waits: 0\n"
              "next: 5\n"
              "b'small' False\n"
              "next: 65283\n"
              "65283 65283 True False\n");
}

TEST_F(PythonTest, AsyncioReceivesFromTwoPortsInOneLoop) {
    std::string lan = make_net("lan");
    std::string wan = make_net("wan");
    std::string out = python(R"py(
import asyncio, sys, ipnfs
lan, wan = sys.argv[1], sys.argv[1][:-3] + "wan"

async def collect(port, n):
    got = []
    async for r in port:
        got.append(r.payload.decode())
        if len(got) == n:
            return got

async def main():
    a = ipnfs.Port(lan, 1, write=False)
    b = ipnfs.Port(wan, 1, write=False)
    ta = ipnfs.Port(lan, 2, read=False)
    tb = ipnfs.Port(wan, 2, read=False)
    tasks = asyncio.gather(collect(a, 3), collect(b, 2))
    ticks = 0
    for text in ("a1", "b1", "a2", "a3", "b2"):
        await asyncio.sleep(0.05)  # the receivers wait in the loop meanwhile
        ticks += 1
        (ta if text[0] == "a" else tb).send(text.encode())
    got_a, got_b = await asyncio.wait_for(tasks, 10)
    print("lan:", got_a, "wan:", got_b, "blocking:", a.blocking, b.blocking)
    try:
        await asyncio.wait_for(a.recv_async(), 0.2)
    except asyncio.TimeoutError:
        print("nothing more: the wait was cancelled cleanly")

asyncio.run(main())
)py",
                             lan);
    EXPECT_EQ(out,
              "lan: ['a1', 'a2', 'a3'] wan: ['b1', 'b2'] blocking: False False\n"
              "nothing more: the wait was cancelled cleanly\n");
}

TEST_F(PythonTest, SendAsyncWaitsForRoomOnALosslessNetwork) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "lossless on\nqueue 2\n"), 0) << last_error_line(ctl_text(net));
    std::string out = python(R"py(
import asyncio, sys, ipnfs
net = sys.argv[1]

async def main():
    rx = ipnfs.Port(net, 1, write=False, blocking=False)
    tx = ipnfs.Port(net, 2, read=False)
    await tx.send_async(b"m1")
    await tx.send_async(b"m2")
    third = asyncio.ensure_future(tx.send_async(b"m3"))
    await asyncio.sleep(0.3)
    print("third sent while the queue is full:", third.done())
    print("read", rx.recv().payload)
    await asyncio.wait_for(third, 10)
    print("third sent once there was room")
    print([rx.recv().payload for _ in range(2)])

asyncio.run(main())
)py",
                             net);
    EXPECT_EQ(out,
              "third sent while the queue is full: False\n"
              "read b'm1'\n"
              "third sent once there was room\n"
              "[b'm2', b'm3']\n");
}

TEST_F(PythonTest, ANonBlockingRecvOnAnEmptyPortRaisesBlockingIOError) {
    std::string net = make_net("lan");
    std::string out = python(R"py(
import errno, sys, ipnfs
net = sys.argv[1]
with ipnfs.Port(net, 1, blocking=False) as rx:
    try:
        rx.recv()
    except BlockingIOError as e:
        print("BlockingIOError", errno.errorcode[e.errno])
    rx.setblocking(True)
    print("blocking:", rx.blocking)
    rx.setblocking(False)
    with ipnfs.Port(net, 2) as tx:
        tx.send(b"now")
    print(rx.recv().payload)
)py",
                             net);
    EXPECT_EQ(out, "BlockingIOError EAGAIN\nblocking: True\nb'now'\n");
}

TEST_F(PythonTest, PortCtlSetsTheDescriptorsOwnPort) {
    std::string net = group();
    std::string out = python(R"py(
import errno, sys, ipnfs
net = sys.argv[1]
reader = ipnfs.Port(net, 3, write=False)
reader.port_ctl("member 7")
writer = ipnfs.Port(net, 4, read=False)
writer.port_ctl("dest anycast 7")
writer.send(b"to whoever holds 7")
print(reader.recv().payload)
for port, line in ((reader, "mtu 1000"), (reader, "member x")):
    try:
        port.port_ctl(line)
    except OSError as e:
        print(line, errno.errorcode[e.errno])
try:
    reader.port_ctl("x" * 256)
except ValueError as e:
    print("ValueError:", e)
with open(net + "/ctl") as f:
    print([l.split("  #")[0].strip() for l in f if l.startswith(("member 3", "dest 4"))])
)py",
                             net);
    EXPECT_EQ(out,
              "b'to whoever holds 7'\n"
              "mtu 1000 EPERM\n"
              "member x EINVAL\n"
              "ValueError: a port ctl line is under 256 bytes, without NUL\n"
              "['member 3 7', 'dest 4 anycast 7']\n");
}

TEST_F(PythonTest, RemovingTheNetworkEndsRecvAndIteration) {
    std::string net = make_net("lan");
    std::string out = python(R"py(
import os, sys, ipnfs
net = sys.argv[1]
with ipnfs.Port(net, 1, write=False) as rx, ipnfs.Port(net, 2, read=False) as tx:
    tx.send(b"last words")
    os.rmdir(net)
    print([r.payload for r in rx])
    try:
        rx.recv()
    except EOFError as e:
        print("EOFError")
)py",
                             net);
    EXPECT_EQ(out, "[b'last words']\nEOFError\n");
}

// As a user who may only read the port and not manage the network: what the
// descriptor grants, and nothing more.
TEST_F(PythonTest, PortCtlIsBoundByWhatTheDescriptorGrants) {
    std::string net = group();
    Shell sh = run_argv({"setpriv", "--reuid=" + std::to_string(kNobody),
                         "--regid=" + std::to_string(kNogroup), "--clear-groups", "env",
                         "PYTHONPATH=" + kPackageDir, "PYTHONDONTWRITEBYTECODE=1", kPython3, "-c",
                         R"py(
import errno, sys, ipnfs
net = sys.argv[1]
try:
    ipnfs.Port(net, 3)
except PermissionError:
    print("no write access to port3")
reader = ipnfs.Port(net, 3, write=False)
for line in ("member 7", "dest broadcast", "dropwhenfull on"):
    try:
        reader.port_ctl(line)
        print(line, "set")
    except OSError as e:
        print(line, errno.errorcode[e.errno])
)py",
                         net},
                        30);
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_EQ(sh.out,
              "no write access to port3\n"
              "member 7 set\n"
              "dest broadcast EPERM\n"
              "dropwhenfull on EPERM\n");
}

}  // namespace
}  // namespace ipnfs_it
