// Asynchronous reads parked on an empty port (io_submit on an O_DIRECT
// descriptor) must not take the kernel's background slots: those carry every
// FUSE_RELEASE of the mount, so twelve parked AIO reads would keep every
// other user's close from reaching the daemon (issue 16, finding 4).
#include <fcntl.h>
#include <grp.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

constexpr int kProcesses = 20;
constexpr int kReadsEach = 50;  // 1000 reads in all

enum class Api { aio, io_uring };

class AioTest : public IpnfsTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other"};
    }
    void closes_reach_the_daemon_while_reads_park(Api api);
};

// In a child: kReadsEach O_DIRECT reads of fd through io_uring (raw system
// calls: no liburing here), submitted at once.  An errno, or 0.
int submit_uring_reads(int fd) {
    io_uring_params params{};
    int ring = static_cast<int>(syscall(SYS_io_uring_setup, kReadsEach, &params));
    if (ring < 0) return errno;
    if ((params.features & IORING_FEAT_SINGLE_MMAP) == 0) return ENOSYS;
    std::size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(std::uint32_t);
    std::size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
    void* rings = mmap(nullptr, std::max(sq_size, cq_size), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    auto* sqes = static_cast<io_uring_sqe*>(mmap(nullptr, params.sq_entries * sizeof(io_uring_sqe),
                                                 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                                 ring, IORING_OFF_SQES));
    if (rings == MAP_FAILED || sqes == MAP_FAILED) return errno;
    auto* base = static_cast<char*>(rings);
    auto* tail = reinterpret_cast<std::uint32_t*>(base + params.sq_off.tail);
    auto* array = reinterpret_cast<std::uint32_t*>(base + params.sq_off.array);
    alignas(4096) static char bufs[kReadsEach][4096];
    for (std::uint32_t i = 0; i < kReadsEach; ++i) {
        sqes[i] = io_uring_sqe{};
        sqes[i].opcode = IORING_OP_READ;
        sqes[i].fd = fd;
        sqes[i].addr = reinterpret_cast<std::uint64_t>(bufs[i]);
        sqes[i].len = sizeof bufs[i];
        sqes[i].off = static_cast<std::uint64_t>(-1);  // a stream: no offset
        array[i] = i;
    }
    __atomic_store_n(tail, kReadsEach, __ATOMIC_RELEASE);
    if (syscall(SYS_io_uring_enter, ring, kReadsEach, 0, 0, nullptr, 0) < 0) return errno;
    return 0;
}

// A child, as nobody, that submits kReadsEach O_DIRECT reads of `port` at
// once and then waits to be killed.  Whether the submission returns at once
// (the reads queued in the kernel) or waits in the first read is the
// kernel's choice; either way the reads stay parked.
pid_t park_async_reads(const std::string& port, Api api) {
    return fork_child([&] {
        if (setgroups(0, nullptr) != 0 || setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
            setresuid(kNobody, kNobody, kNobody) != 0) {
            return 200;
        }
        int fd = open(port.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0) return 201;
        if (api == Api::io_uring) {
            if (submit_uring_reads(fd) != 0) return 203;
            for (;;) pause();
        }
        aio_context_t ctx = 0;
        if (syscall(SYS_io_setup, kReadsEach, &ctx) != 0) return 202;
        alignas(4096) static char bufs[kReadsEach][4096];
        iocb cbs[kReadsEach]{};
        iocb* list[kReadsEach]{};
        for (int i = 0; i < kReadsEach; ++i) {
            cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
            cbs[i].aio_fildes = static_cast<std::uint32_t>(fd);
            cbs[i].aio_buf = reinterpret_cast<std::uint64_t>(bufs[i]);
            cbs[i].aio_nbytes = sizeof bufs[i];
            list[i] = &cbs[i];
        }
        syscall(SYS_io_submit, ctx, kReadsEach, list);
        for (;;) pause();
    });
}

// The children parking reads; whatever the test's outcome, removing the
// network ends every parked read (also the ones a kernel still holds in its
// background queue), so the killed children can exit and be reaped.
class Parkers {
  public:
    explicit Parkers(std::string net) : net_(std::move(net)) {}
    Parkers(const Parkers&) = delete;
    Parkers& operator=(const Parkers&) = delete;
    ~Parkers() {
        rmdir(net_.c_str());
        for (pid_t pid : pids_) kill(pid, SIGKILL);
        for (pid_t pid : pids_) wait_child(pid, 10s);
    }
    void add(pid_t pid) {
        if (pid > 0) pids_.push_back(pid);
    }
    [[nodiscard]] bool all_asleep() const {
        // S in pause() or a read; D (killable) waiting for a background slot.
        return std::ranges::all_of(pids_, [](pid_t pid) {
            char state = process_state(pid);
            return state == 'S' || state == 'D';
        });
    }

  private:
    std::string net_;
    std::vector<pid_t> pids_;
};

void AioTest::closes_reach_the_daemon_while_reads_park(Api api) {
    std::string net = make_net("lan", 0777);
    Parkers parkers(net);
    for (int i = 0; i < kProcesses; ++i) parkers.add(park_async_reads(net + "/port0", api));
    ASSERT_TRUE(eventually([&] { return parkers.all_asleep(); }, 5s))
        << "the children did not park their reads";
    std::this_thread::sleep_for(300ms);  // the kernel sends what it will

    // Another user's reader of another port closes: the daemon must hear it.
    for (int round = 0; round < 3; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        {
            Fd reader = open_fd(net + "/port1", O_RDONLY);
            ASSERT_EQ(stats(net).rows[1].readers, 1U);
        }
        Clock::time_point closed = Clock::now();
        bool seen = eventually([&] { return stats(net).rows[1].readers == 0; }, 2s);
        double ms = seconds_since(closed) * 1000;
        RecordProperty("close_ms_" + std::to_string(round), std::to_string(ms));
        ASSERT_TRUE(seen) << "the close never reached the daemon";
        EXPECT_LT(ms, 100.0) << "the close took " << ms << " ms to reach the daemon";
    }
}

TEST_F(AioTest, ParkedAioReadsDoNotHoldBackOtherUsersCloses) {
    closes_reach_the_daemon_while_reads_park(Api::aio);
}

TEST_F(AioTest, ParkedIoUringReadsDoNotHoldBackOtherUsersCloses) {
    closes_reach_the_daemon_while_reads_park(Api::io_uring);
}

}  // namespace
}  // namespace ipnfs_it
