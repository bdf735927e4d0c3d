// Sender credentials (issue 18, finding 7): a descriptor that asks
// (IPNFS_IOC_SET_CREDS, as SO_PASSCRED) learns who wrote each message and
// who opened each port that joined, as the kernel gave them in the request,
// so two writers of one port can be told apart.  A reader that does not ask
// sees the records it always saw, and frames no process wrote (a TAP's)
// carry no credentials.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "ipnfs_client.hpp"
#include "netns.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

class CredentialsTest : public IpnfsTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other"};
    }

    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        if (!user_.ok()) IPNFS_SKIP_OR_FAIL(user_.error());
    }

    // A network whose ports everyone may read and write.
    std::string open_net(const std::string& name) {
        std::string net = make_net(name, 0777);
        for (int port : {1, 2, 3, 4}) {
            std::string path = net + "/port" + std::to_string(port);
            EXPECT_EQ(chmod(path.c_str(), 0666), 0) << path << ": " << std::strerror(errno);
        }
        return net;
    }

    // A reader of `port` with framed records and, if asked, credentials.
    static Fd framed_reader(const std::string& net, int port, bool creds) {
        Fd fd = open_fd(net + "/port" + std::to_string(port), O_RDONLY);
        EXPECT_EQ(set_framed(fd.get(), true), 0);
        if (creds) {
            EXPECT_EQ(set_creds(fd.get(), true), 0) << "IPNFS_IOC_SET_CREDS";
        }
        return fd;
    }

    TestUser user_;
};

// Writes "TAG PID" (the writing process's pid) to `fd` or, if fd < 0, to a
// descriptor of `path` it opens itself; 0 on success.  Runs in a child.
int write_tagged(int fd, const std::string& path, const std::string& tag) {
    int w = fd >= 0 ? fd : open(path.c_str(), O_WRONLY);
    if (w < 0) return 10;
    std::string msg = tag + " " + std::to_string(getpid());
    return write(w, msg.data(), msg.size()) == static_cast<ssize_t>(msg.size()) ? 0 : 11;
}

// Every record queued for a framed reader, until it is quiet for `quiet_ms`.
std::vector<Record> drain_framed(int fd, int quiet_ms = 200) {
    std::vector<Record> got;
    for (Framed f = read_framed(fd, 65536, quiet_ms); f.io.n > 0;
         f = read_framed(fd, 65536, quiet_ms)) {
        got.insert(got.end(), f.records.begin(), f.records.end());
    }
    return got;
}

// The pid after the tag in a write_tagged() payload.
std::uint32_t pid_in(const std::string& payload) {
    return static_cast<std::uint32_t>(std::stoul(payload.substr(payload.find(' ') + 1)));
}

TEST_F(CredentialsTest, TwoWritersOfOnePortAreToldApartByTheKernelsUidGidAndPid) {
    const std::string net = open_net("lan");
    const std::string port3 = net + "/port3";
    Fd reader = framed_reader(net, 1, true);
    Fd roots = open_fd(port3, O_WRONLY);  // root's descriptor of port 3, held open

    // Root's child writes through root's descriptor; the second user opens
    // port 3 himself; then the second user writes through root's descriptor,
    // inherited: what counts is who writes, as for SCM_CREDENTIALS.
    pid_t root_child = fork_child([&] { return write_tagged(roots.get(), "", "root"); });
    ASSERT_EQ(exit_code_of(wait_child(root_child, 10s)), 0);
    ASSERT_EQ(as_user(user_.uid(), user_.gid(), [&] { return write_tagged(-1, port3, "user"); }), 0)
        << "the second user could not write port 3";
    ASSERT_EQ(as_user(user_.uid(), user_.gid(),
                      [&] { return write_tagged(roots.get(), "", "inherited"); }),
              0);

    std::vector<Record> got;
    while (got.size() < 3) {
        Framed f = read_framed(reader.get());
        ASSERT_GT(f.io.n, 0) << "read " << got.size()
                             << " of 3 records: " << std::strerror(f.io.err);
        got.insert(got.end(), f.records.begin(), f.records.end());
    }
    ASSERT_EQ(got.size(), 3u);
    struct Want {
        std::string tag;
        uid_t uid;
        gid_t gid;
    };
    const std::vector<Want> want = {{"root", 0, 0},
                                    {"user", user_.uid(), user_.gid()},
                                    {"inherited", user_.uid(), user_.gid()}};
    for (std::size_t i = 0; i < want.size(); ++i) {
        const Record& r = got[i];
        SCOPED_TRACE(want[i].tag);
        EXPECT_EQ(r.header.kind, IPNFS_DATA);
        EXPECT_EQ(r.header.port, 3u) << "all three came from port 3";
        ASSERT_TRUE(r.has_creds()) << "flags " << r.header.flags;
        ASSERT_EQ(r.payload.substr(0, want[i].tag.size()), want[i].tag) << r.payload;
        EXPECT_EQ(r.header.len, r.payload.size());
        EXPECT_EQ(r.creds.uid, want[i].uid);
        EXPECT_EQ(r.creds.gid, want[i].gid);
        EXPECT_EQ(r.creds.pid, pid_in(r.payload)) << "the pid is the writer's, not the opener's";
        EXPECT_EQ(r.creds.pad, 0u);
        EXPECT_EQ(r.size, sizeof(ipnfs_creds) + IPNFS_RECORD_SIZE(r.payload.size()));
        EXPECT_EQ(r.size, IPNFS_RECORD_FULL_SIZE(&r.header));
    }
    EXPECT_EQ(pid_in(got[0].payload), static_cast<std::uint32_t>(root_child));
}

TEST_F(CredentialsTest, AReaderThatDidNotAskGetsTodaysRecordsByteForByte) {
    const std::string net = open_net("lan");
    Fd asked = framed_reader(net, 1, true);
    Fd plain_framed = framed_reader(net, 2, false);
    Fd plain = open_fd(net + "/port4", O_RDONLY);
    ASSERT_EQ(set_creds(plain.get(), true), 0) << "plain reads may ask too";
    ASSERT_EQ(as_user(user_.uid(), user_.gid(),
                      [&] { return write_tagged(-1, net + "/port3", "hello"); }),
              0);

    Framed with = read_framed(asked.get());
    ASSERT_EQ(with.records.size(), 1u);
    const std::string payload = with.records[0].payload;
    EXPECT_TRUE(with.records[0].has_creds());
    EXPECT_EQ(with.io.n,
              static_cast<ssize_t>(sizeof(ipnfs_creds) + IPNFS_RECORD_SIZE(payload.size())));

    // The record a reader without the ioctl gets is the one it always got:
    // header, payload, zero padding, nothing between.
    Framed without = read_framed(plain_framed.get());
    ASSERT_EQ(without.records.size(), 1u);
    RecordSpec today{payload};
    today.port = 3;
    today.seq = with.records[0].header.seq;
    EXPECT_EQ(without.io.data, encode(today));

    // Plain data reads have nowhere to put credentials: the payload alone.
    Io p = read_one(plain.get());
    EXPECT_EQ(p.data, payload);

    // Off again: today's records again.
    ASSERT_EQ(set_creds(asked.get(), false), 0);
    ASSERT_EQ(as_user(user_.uid(), user_.gid(),
                      [&] { return write_tagged(-1, net + "/port3", "again"); }),
              0);
    Framed off = read_framed(asked.get());
    ASSERT_EQ(off.records.size(), 1u);
    EXPECT_FALSE(off.records[0].has_creds());
    EXPECT_EQ(off.io.n, static_cast<ssize_t>(IPNFS_RECORD_SIZE(off.records[0].payload.size())));
}

TEST_F(CredentialsTest, AFramedReadWithCredentialsNeedsRoomForThemAndCutsOnlyThePayload) {
    const std::string net = open_net("lan");
    Fd reader = framed_reader(net, 1, true);
    Fd w = open_fd(net + "/port3", O_WRONLY);
    ASSERT_EQ(write_msg(w.get(), "0123456789").n, 10);

    Io small = read_one(reader.get(), 2000, sizeof(ipnfs_record) + sizeof(ipnfs_creds) - 1);
    EXPECT_EQ(small.err, EINVAL) << "a header without its credentials is no record";
    Framed cut = read_framed(reader.get(), sizeof(ipnfs_record) + sizeof(ipnfs_creds) + 4);
    ASSERT_EQ(cut.records.size(), 1u);
    const Record& r = cut.records[0];
    EXPECT_TRUE(r.has_creds());
    EXPECT_TRUE((r.header.flags & IPNFS_FLAG_TRUNCATED) != 0);
    EXPECT_EQ(r.header.len, 10u);
    EXPECT_EQ(r.payload, "0123");
    EXPECT_EQ(r.creds.uid, 0u);
    EXPECT_EQ(r.creds.pid, static_cast<std::uint32_t>(gettid())) << "the writing thread";
}

TEST_F(CredentialsTest, JoinEventsSayWhoOpenedThePortFramedAndAsLines) {
    const std::string net = open_net("lan");
    Fd lines = open_fd(net + "/events", O_RDONLY);
    ASSERT_EQ(set_creds(lines.get(), true), 0) << "IPNFS_IOC_SET_CREDS on the events file";
    Fd records = framed_reader(net, 1, true);
    ASSERT_EQ(set_events(records.get(), true), 0);
    (void)drain(lines.get());  // port 1's own join and the counts
    (void)drain_framed(records.get());

    // The second user opens port 4, says its pid, and closes it.
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    Fd from_child(pipe_fds[0]);
    Fd to_parent(pipe_fds[1]);
    ASSERT_EQ(as_user(user_.uid(), user_.gid(),
                      [&] {
                          int fd = open((net + "/port4").c_str(), O_WRONLY);
                          if (fd < 0) return 10;
                          pid_t me = getpid();
                          if (write(to_parent.get(), &me, sizeof me) != sizeof me) return 11;
                          close(fd);
                          return 0;
                      }),
              0);
    pid_t child = 0;
    ASSERT_EQ(read(from_child.get(), &child, sizeof child), static_cast<ssize_t>(sizeof child));

    const std::string join = "join 4 uid " + std::to_string(user_.uid()) + " gid " +
                             std::to_string(user_.gid()) + " pid " + std::to_string(child) + "\n";
    std::vector<std::string> got = drain(lines.get());
    ASSERT_EQ(got.size(), 4u) << "join, counts, leave, counts";
    EXPECT_EQ(got[0], join);
    EXPECT_EQ(got[1], "counts 1 1\n");
    EXPECT_EQ(got[2], "leave 4\n") << "a leave carries nothing";

    std::vector<Record> recs = drain_framed(records.get());
    ASSERT_EQ(recs.size(), 4u);
    EXPECT_EQ(recs[0].header.kind, IPNFS_JOIN);
    EXPECT_EQ(recs[0].header.port, 4u);
    ASSERT_TRUE(recs[0].has_creds());
    EXPECT_EQ(recs[0].creds.uid, user_.uid());
    EXPECT_EQ(recs[0].creds.gid, user_.gid());
    EXPECT_EQ(recs[0].creds.pid, static_cast<std::uint32_t>(child));
    EXPECT_EQ(recs[0].header.len, 0u);
    for (std::size_t i = 1; i < recs.size(); ++i) {
        EXPECT_FALSE(recs[i].has_creds()) << event_line(recs[i]);
    }

    // A reader that joins later learns the same of those already there.
    Fd stays = open_fd(net + "/port2", O_WRONLY);
    Fd late = open_fd(net + "/events", O_RDONLY);
    ASSERT_EQ(set_creds(late.get(), true), 0);
    std::vector<std::string> snapshot = drain(late.get());
    ASSERT_GE(snapshot.size(), 2u);
    EXPECT_EQ(snapshot[0], "join 1 uid 0 gid 0 pid " + std::to_string(gettid()) + "\n");
    EXPECT_EQ(snapshot[1], "join 2 uid 0 gid 0 pid " + std::to_string(gettid()) + "\n");
    std::uint32_t next = 0;
    Fd again = open_fd(net + "/events", O_RDONLY);
    ASSERT_EQ(set_creds(again.get(), true), 0);
    ASSERT_EQ(ioctl(again.get(), IPNFS_IOC_NEXT_SIZE, &next), 0);
    EXPECT_EQ(next, snapshot[0].size()) << "IPNFS_IOC_NEXT_SIZE counts the line as read";
}

TEST_F(CredentialsTest, APidIsTheWritersAsTheDaemonSeesIt) {
    if (run_argv({"unshare", "--pid", "--fork", "true"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL("unshare --pid does not work here");
    }
    const std::string net = open_net("lan");
    Fd reader = framed_reader(net, 1, true);
    // The shell sees itself as pid 1 of its own namespace; the daemon, one
    // level up, sees its real number.
    Shell sh = run_argv(
        {"unshare", "--pid", "--fork", "sh", "-c", "echo \"inside $$\" >> " + sq(net + "/port2")});
    ASSERT_EQ(sh.exit_code(), 0) << sh.err;
    Framed f = read_framed(reader.get());
    ASSERT_EQ(f.records.size(), 1u);
    const Record& r = f.records[0];
    EXPECT_EQ(r.payload, "inside 1\n");
    ASSERT_TRUE(r.has_creds());
    EXPECT_NE(r.creds.pid, 0u) << "the daemon sees into the child namespace";
    EXPECT_NE(r.creds.pid, 1u) << "a pid in the daemon's namespace, not the writer's own";
}

class CredentialsNetdevTest : public NetdevTest {};

TEST_F(CredentialsNetdevTest, FramesFromATapCarryNoCredentials) {
    std::string net = make_net("lan");
    Fd reader = open_fd(net + "/port1", O_RDONLY);
    ASSERT_EQ(set_framed(reader.get(), true), 0);
    ASSERT_EQ(set_creds(reader.get(), true), 0);
    NetNs ns;
    ASSERT_TRUE(ns.ok()) << ns.error();
    std::optional<unsigned> tap_port = tap_into(net, ifname("c1"), ns, {"10.0.0.1/24"}, 5);
    ASSERT_TRUE(tap_port.has_value());
    (void)ns.ping("10.0.0.2", 1, 0.2);  // nobody answers: the kernel's ARP requests come out

    Framed f = read_framed(reader.get(), 65536, 5000);
    ASSERT_GT(f.io.n, 0) << "no frame from the TAP: " << std::strerror(f.io.err);
    bool from_tap = false;
    for (const Record& r : f.records) {
        if (r.header.kind != IPNFS_DATA) continue;
        from_tap = true;
        EXPECT_EQ(r.header.port, *tap_port);
        EXPECT_FALSE(r.has_creds()) << "no process wrote this frame";
        EXPECT_EQ(r.size, IPNFS_RECORD_SIZE(r.payload.size()));
    }
    EXPECT_TRUE(from_tap);
}

}  // namespace
}  // namespace ipnfs_it
