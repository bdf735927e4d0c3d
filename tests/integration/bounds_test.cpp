// What an unprivileged user can make the daemon hold (issue 16, findings 9,
// 10, 11), measured as the daemon's RSS while nobody holds it, against the
// bounds docs/security.md states: capture readers and events readers per
// network (-o max_capture_readers, -o max_event_readers) and the rendered
// ctl/stats text (-o max_text_bytes, shared between descriptors).
#include <fcntl.h>
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

constexpr long kMarginKib = 32L * 1024;  // allocator slack on a shared machine
constexpr long kTextBudget = 4 << 20;    // -o max_text_bytes below

// What the attacking child reports once it holds everything it could get.
struct Report {
    int opened = 0;   // descriptors it holds
    int refused = 0;  // opens refused with ENFILE
    int other = 0;    // any other failure (its last errno)
};

// Runs `attack` as nobody:nogroup in a child that keeps its descriptors open
// while the parent measures the daemon (`measure`), then lets it exit.
class Attacker {
  public:
    explicit Attacker(const std::function<Report()>& attack) {
        if (pipe2(report_.data(), O_CLOEXEC) != 0 || pipe2(release_.data(), O_CLOEXEC) != 0) {
            ADD_FAILURE() << "pipe: " << std::strerror(errno);
            return;
        }
        pid_ = fork_child([&] {
            close(report_[0]);
            close(release_[1]);
            rlimit files{8192, 8192};  // as root, before dropping it
            if (setrlimit(RLIMIT_NOFILE, &files) != 0 || setgroups(0, nullptr) != 0 ||
                setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
                setresuid(kNobody, kNobody, kNobody) != 0) {
                return 200;
            }
            Report r = attack();
            if (::write(report_[1], &r, sizeof r) != sizeof r) return 201;
            char c = 0;
            (void)::read(release_[0], &c, 1);  // until the parent has measured
            return 0;
        });
        close(report_[1]);
        close(release_[0]);
    }
    ~Attacker() {
        close(report_[0]);
        close(release_[1]);
        if (pid_ > 0) (void)wait_child(pid_, std::chrono::seconds(30));
    }
    Attacker(const Attacker&) = delete;
    Attacker& operator=(const Attacker&) = delete;

    // The child's report once it holds everything (false if it failed).
    bool wait(Report& out) {
        return pid_ > 0 && ::read(report_[0], &out, sizeof out) == sizeof out;
    }

  private:
    std::array<int, 2> report_{-1, -1};
    std::array<int, 2> release_{-1, -1};
    pid_t pid_ = -1;
};

class BoundsTest : public IpnfsTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other", "max_text_bytes=" + std::to_string(kTextBudget)};
    }
    // A network anyone may use: the attacker needs nothing root did not hand out.
    std::string open_net(const std::string& name) {
        std::string net = make_net(name);
        EXPECT_EQ(chmod(net.c_str(), 0777), 0);
        return net;
    }
};

TEST_F(BoundsTest, CaptureReadersAreBoundedAndSoIsTheMemoryTheyHold) {
    std::string net = open_net("cap");
    long before = rss_kib(mount_.pid());
    // Each capture reader that never reads keeps the first 1024 messages
    // sent after its open: open one, send 1024 MTU-sized frames, repeat.
    Attacker attacker([&] {
        Report r;
        int port = open((net + "/port0").c_str(), O_WRONLY | O_CLOEXEC);
        if (port < 0) return Report{0, 0, errno};
        std::string frame(1514, 'x');
        for (int i = 0; i < 100; ++i) {
            int fd = open((net + "/capture").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) {
                ++r.opened;
            } else if (errno == ENFILE) {
                ++r.refused;
            } else {
                r.other = errno;
            }
            for (int m = 0; m < 1024; ++m) {
                frame[0] = static_cast<char>(m);
                if (::write(port, frame.data(), frame.size()) < 0) r.other = errno;
            }
        }
        return r;
    });
    Report r;
    ASSERT_TRUE(attacker.wait(r)) << "the attacker failed";
    long after = rss_kib(mount_.pid());
    EXPECT_EQ(r.other, 0) << std::strerror(r.other);
    EXPECT_EQ(r.opened, 8) << "the default max_capture_readers is 8";
    EXPECT_EQ(r.refused, 92);
    // docs/security.md: 1024 messages of at most the MTU per capture reader.
    long bound = 8L * 1024 * (1514 + 256) / 1024 + kMarginKib;
    EXPECT_LT(after - before, bound) << "daemon RSS grew from " << before << " to " << after
                                     << " KiB with " << r.opened << " capture readers";
    RecordProperty("rss_growth_kib", std::to_string(after - before));
}

TEST_F(BoundsTest, EventsReadersAreBoundedAndSoIsTheMemoryTheyHold) {
    std::string net = open_net("ev");
    ASSERT_EQ(ctl(net, "ports 4096\n"), 0);
    long before = rss_kib(mount_.pid());
    constexpr int kMembers = 3000;
    // Every events open copies a join per connected port: connect many, then
    // open the events file again and again without reading.
    Attacker attacker([&] {
        Report r;
        for (int i = 0; i < kMembers; ++i) {
            std::string port = net + "/port" + std::to_string(i);
            if (open(port.c_str(), O_WRONLY | O_CLOEXEC) < 0) return Report{0, 0, errno};
        }
        for (int i = 0; i < 500; ++i) {
            int fd = open((net + "/events").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd >= 0) {
                ++r.opened;
            } else if (errno == ENFILE) {
                ++r.refused;
            } else {
                r.other = errno;
            }
        }
        return r;
    });
    Report r;
    ASSERT_TRUE(attacker.wait(r)) << "the attacker failed";
    long after = rss_kib(mount_.pid());
    EXPECT_EQ(r.other, 0) << std::strerror(r.other);
    EXPECT_EQ(r.opened, 16) << "the default max_event_readers is 16";
    EXPECT_EQ(r.refused, 484);
    // docs/security.md: per events reader, its queue and one event per
    // connected port (the ports' own cost is not the readers').
    long bound = 16L * (64 * 8 + (kMembers + 1) * 160) / 1024 + kMarginKib;
    EXPECT_LT(after - before, bound) << "daemon RSS grew from " << before << " to " << after
                                     << " KiB with " << r.opened << " events readers";
    RecordProperty("rss_growth_kib", std::to_string(after - before));
}

// nobody manages the network: he grows ctl with two lines per port of
// 65536.  The text's size in KiB.
long grow_ctl(const std::string& net) {
    Attacker grow([&] {
        Report r;
        int ctl_fd = open((net + "/ctl").c_str(), O_WRONLY | O_CLOEXEC);
        if (ctl_fd < 0) return Report{0, 0, errno};
        auto write_ctl = [&](const std::string& text) {
            if (::write(ctl_fd, text.data(), text.size()) < 0) r.other = errno;
        };
        write_ctl("ports 65536\n");
        std::string lines;
        for (int p = 0; p < 65536; ++p) {
            lines +=
                "events " + std::to_string(p) + " on\ndropwhenfull " + std::to_string(p) + " on\n";
            if (lines.size() > 3000) {
                write_ctl(lines);
                lines.clear();
            }
        }
        write_ctl(lines);
        return r;
    });
    Report r;
    EXPECT_TRUE(grow.wait(r)) << "the attacker failed";
    EXPECT_EQ(r.other, 0) << std::strerror(r.other);
    return static_cast<long>(slurp(net + "/ctl").size()) / 1024;
}

// As nobody, opens `count` ctl descriptors and reads one byte at offset 0 of
// each, toggling a setting before each open if `change` (so each renders a
// text of its own).
Report hold_ctl(const std::string& net, int count, bool change, long& rss_before, long& rss_after,
                pid_t daemon) {
    rss_before = rss_kib(daemon);
    Attacker hold([&] {
        Report r;
        int ctl_fd = open((net + "/ctl").c_str(), O_WRONLY | O_CLOEXEC);
        if (ctl_fd < 0) return Report{0, 0, errno};
        for (int i = 0; i < count; ++i) {
            std::string line = i % 2 == 0 ? "mtu 1600\n" : "mtu 1514\n";
            if (change && ::write(ctl_fd, line.data(), line.size()) < 0) r.other = errno;
            int fd = open((net + "/ctl").c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                r.other = errno;
                continue;
            }
            char c = 0;
            if (pread(fd, &c, 1, 0) != 1) r.other = errno;
            ++r.opened;
        }
        return r;
    });
    Report r;
    EXPECT_TRUE(hold.wait(r)) << "the attacker failed";
    rss_after = rss_kib(daemon);
    return r;
}

TEST_F(BoundsTest, CtlTextIsBoundedAcrossDescriptorsWithDifferentTexts) {
    std::string net = open_net("txt");
    long text_kib = grow_ctl(net);
    ASSERT_GT(text_kib, 1500) << "the attack did not grow ctl";
    long before = 0;
    long after = 0;
    Report r = hold_ctl(net, 100, true, before, after, mount_.pid());
    EXPECT_EQ(r.other, 0) << std::strerror(r.other);
    EXPECT_EQ(r.opened, 100);
    // docs/security.md: max_text_bytes, plus the newest text of ctl and of stats.
    long bound = kTextBudget / 1024 + 2 * text_kib + kMarginKib;
    EXPECT_LT(after - before, bound) << "daemon RSS grew from " << before << " to " << after
                                     << " KiB; ctl text " << text_kib << " KiB";
    RecordProperty("rss_growth_kib", std::to_string(after - before));
}

// Without a byte bound to hide it: descriptors that read the same text share it.
class SharedTextTest : public BoundsTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other", "max_text_bytes=4294967295"};
    }
};

TEST_F(SharedTextTest, DescriptorsThatReadTheSameCtlTextShareOneCopy) {
    std::string net = open_net("txt");
    long text_kib = grow_ctl(net);
    ASSERT_GT(text_kib, 1500) << "the attack did not grow ctl";
    long before = 0;
    long after = 0;
    Report r = hold_ctl(net, 100, false, before, after, mount_.pid());
    EXPECT_EQ(r.other, 0) << std::strerror(r.other);
    EXPECT_EQ(r.opened, 100);
    long bound = 2 * text_kib + kMarginKib;
    EXPECT_LT(after - before, bound) << "daemon RSS grew from " << before << " to " << after
                                     << " KiB; ctl text " << text_kib << " KiB";
    RecordProperty("rss_growth_kib", std::to_string(after - before));
}

}  // namespace
}  // namespace ipnfs_it
