// One total order per network: every reader sees the messages of concurrent
// writers (threads or processes) in the same order.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

// One thread per reader descriptor, each collecting `total` messages (or
// stopping at the first 5 s without one).
std::vector<std::vector<std::string>> collect(const std::vector<Fd>& fds, int total) {
    std::vector<std::vector<std::string>> got(fds.size());
    std::vector<std::thread> threads;
    for (std::size_t r = 0; r < fds.size(); ++r) {
        threads.emplace_back([&, r] {
            while (static_cast<int>(got[r].size()) < total) {
                Io io = read_one(fds[r].get(), 5000);
                if (io.n <= 0) return;  // reported by the caller via the count
                got[r].push_back(io.data);
            }
        });
    }
    for (auto& t : threads) t.join();
    return got;
}

// Every reader got the same sequence; each writer's messages in its own order.
void expect_one_total_order(const std::vector<std::vector<std::string>>& got, int writers,
                            int per_writer) {
    ASSERT_FALSE(got.empty());
    for (std::size_t r = 0; r < got.size(); ++r) {
        ASSERT_EQ(got[r].size(), static_cast<std::size_t>(writers * per_writer))
            << "reader " << r << " missed messages";
        EXPECT_TRUE(got[r] == got[0]) << "reader " << r << " saw another order than reader 0";
    }
    std::vector<int> next(writers, 0);
    for (const auto& m : got[0]) {
        int w = 0, i = 0;
        ASSERT_EQ(std::sscanf(m.c_str(), "w%d %d", &w, &i), 2) << m;
        ASSERT_TRUE(w >= 0 && w < writers) << m;
        EXPECT_EQ(i, next[w]) << "writer " << w << "'s messages out of order";
        next[w] = i + 1;
    }
}

class OrderTest : public IpnfsTest {
  protected:
    static constexpr int kReaders = 3;
    static constexpr int kWriters = 4;
    static constexpr int kPerWriter = 500;  // 2000 messages in all

    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        net_ = make_net("lan");
        ASSERT_EQ(ctl(net_, "queue 4096\n"), 0);  // no drops: order is the only question
        for (int r = 0; r < kReaders; ++r) {
            readers_.push_back(open_fd(net_ + "/port" + std::to_string(1 + r), O_RDONLY));
        }
        for (int w = 0; w < kWriters; ++w) {
            writers_.push_back(open_fd(net_ + "/port" + std::to_string(10 + w), O_WRONLY));
        }
    }
    void TearDown() override {
        readers_.clear();
        writers_.clear();
        IpnfsTest::TearDown();  // umount needs the files closed
    }
    static std::string message(int w, int i) {
        return "w" + std::to_string(w) + " " + std::to_string(i);
    }

    std::string net_;
    std::vector<Fd> readers_, writers_;
};

TEST_F(OrderTest, ConcurrentWriterThreadsGiveEveryReaderTheSameOrder) {
    std::vector<std::vector<std::string>> got;
    std::thread collector([&] { got = collect(readers_, kWriters * kPerWriter); });
    std::vector<std::thread> writers;
    std::atomic<int> failed{0};
    for (int w = 0; w < kWriters; ++w) {
        writers.emplace_back([&, w] {
            for (int i = 0; i < kPerWriter; ++i) {
                std::string m = message(w, i);
                if (::write(writers_[w].get(), m.data(), m.size()) !=
                    static_cast<ssize_t>(m.size())) {
                    ++failed;
                }
            }
        });
    }
    for (auto& t : writers) t.join();
    collector.join();
    EXPECT_EQ(failed.load(), 0);
    expect_one_total_order(got, kWriters, kPerWriter);
    EXPECT_EQ(stats(net_).total("drops"), 0u);
}

TEST_F(OrderTest, ConcurrentWriterProcessesGiveEveryReaderTheSameOrder) {
    // Built before fork: the children only write() and _exit().
    std::vector<std::vector<std::string>> batches(kWriters);
    for (int w = 0; w < kWriters; ++w) {
        for (int i = 0; i < kPerWriter; ++i) batches[w].push_back(message(w, i));
    }
    std::vector<std::vector<std::string>> got;
    std::thread collector([&] { got = collect(readers_, kWriters * kPerWriter); });
    std::vector<pid_t> children;
    for (int w = 0; w < kWriters; ++w) {
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            int bad = 0;
            for (const auto& m : batches[w]) {
                if (::write(writers_[w].get(), m.data(), m.size()) !=
                    static_cast<ssize_t>(m.size())) {
                    bad = 1;
                }
            }
            _exit(bad);
        }
        children.push_back(pid);
    }
    auto deadline = Clock::now() + 20s;
    for (pid_t pid : children) {
        int st = 0;
        while (waitpid(pid, &st, WNOHANG) != pid) {
            if (Clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                ADD_FAILURE() << "writer process " << pid << " hung";
                break;
            }
            std::this_thread::sleep_for(5ms);
        }
        EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "a writer process failed a write";
    }
    collector.join();
    expect_one_total_order(got, kWriters, kPerWriter);
}

}  // namespace
}  // namespace ipnfs_it
