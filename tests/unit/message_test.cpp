// Message: one refcounted buffer per message, shared by every holder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bus/message.hpp"
#include "bus/network.hpp"
#include "bus_test_support.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define IPNFS_TEST_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define IPNFS_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IPNFS_TEST_ASAN 1
#elif __has_feature(thread_sanitizer)
#define IPNFS_TEST_TSAN 1
#endif
#endif

#if defined(IPNFS_TEST_ASAN)
#include <sanitizer/asan_interface.h>
#elif defined(IPNFS_TEST_TSAN)
// The sanitizer runtime's allocator statistics (gcc ships no header for it).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ipnfs::test {
namespace {

using bus::Message;
using bus::MessageRef;

TEST(Message, CopiesThePayloadOnceIntoItsOwnBuffer) {
    std::string source = "hello, bus";
    MessageRef m = Message::make(7, bytes(source));
    EXPECT_NE(static_cast<const void*>(m->payload().data()),
              static_cast<const void*>(source.data()));
    source.assign("overwritten");
    EXPECT_EQ(text(m), "hello, bus");
    EXPECT_EQ(m->payload().size(), 10u);
    EXPECT_EQ(m->from(), 7u);
}

TEST(Message, KeepsEveryByteIncludingZeros) {
    std::string payload("\0a\0\xff\n", 5);
    MessageRef m = Message::make(0, bytes(payload));
    EXPECT_EQ(text(m), payload);
}

TEST(Message, EmptyPayloadIsAMessageOfSizeZero) {
    MessageRef m = Message::make(3, {});
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(m->payload().empty());
    EXPECT_EQ(m->from(), 3u);
}

TEST(Message, LargestMtuPayloadRoundTrips) {
    std::string payload(bus::Limits::kMaxMtu, '\0');
    std::iota(payload.begin(), payload.end(), '\0');
    MessageRef m = Message::make(1, bytes(payload));
    EXPECT_EQ(text(m), payload);
}

TEST(Message, SeqIsZeroUntilSetAndThenKeepsTheValueSet) {
    MessageRef m = Message::make(0, bytes("x"));
    EXPECT_EQ(m->seq(), 0u);
    m->set_seq(42);
    EXPECT_EQ(m->seq(), 42u);
}

TEST(Message, HoldersShareOneBufferAndItOutlivesAllButTheLast) {
    MessageRef first = Message::make(2, bytes("shared"));
    std::vector<MessageRef> holders(8, first);  // like eight recipient queues
    const std::byte* data = first->payload().data();
    for (const MessageRef& h : holders) {
        EXPECT_EQ(h.get(), first.get());
        EXPECT_EQ(h->payload().data(), data);
    }
    first.reset();
    std::mt19937 rng(1);
    std::shuffle(holders.begin(), holders.end(), rng);
    while (holders.size() > 1) {
        holders.pop_back();
        EXPECT_EQ(text(holders.front()), "shared");  // ASan: no use after free
    }
}

// Is the memory of this (live or dead) message still allocated?  Answered by
// ASan's shadow (a freed block is poisoned), by TSan's allocator (which
// replaces glibc's, so mallinfo2 sees nothing) or by glibc's in-use byte count.
class AllocationProbe {
  public:
    static bool supported() {
#if defined(IPNFS_TEST_ASAN) || defined(IPNFS_TEST_TSAN) || defined(__GLIBC__)
        return true;
#else
        return false;
#endif
    }
    explicit AllocationProbe(const void* block) : block_(block) {
#if defined(IPNFS_TEST_TSAN)
        in_use_ = __sanitizer_get_current_allocated_bytes();
#elif !defined(IPNFS_TEST_ASAN) && defined(__GLIBC__)
        in_use_ = mallinfo2().uordblks;
#endif
    }
    // `size`: at most the payload size, large enough to stand out in the
    // allocator's count.  The count may also have grown since (threads,
    // gtest), hence the signed difference.
    [[nodiscard]] bool freed(std::size_t size) const {
#if defined(IPNFS_TEST_ASAN)
        (void)size;
        return __asan_address_is_poisoned(block_) != 0;
#elif defined(IPNFS_TEST_TSAN)
        (void)block_;
        return dropped_by(__sanitizer_get_current_allocated_bytes(), size);
#elif defined(__GLIBC__)
        (void)block_;
        return dropped_by(mallinfo2().uordblks, size);
#else
        (void)size;
        return false;
#endif
    }

  private:
    [[nodiscard]] bool dropped_by(std::size_t now, std::size_t size) const {
        return now < in_use_ && in_use_ - now >= size;
    }

    const void* block_;
    std::size_t in_use_ = 0;
};

TEST(Message, BufferIsFreedWhenTheLastHolderLetsGo) {
    if (!AllocationProbe::supported()) {
        // Under CI=true a test that cannot run fails instead of skipping.
        const char* ci = std::getenv("CI");
        if (ci != nullptr && std::string_view(ci) == "true") FAIL() << "needs ASan or glibc";
        GTEST_SKIP() << "needs ASan or glibc to see frees";
    }
    // Big enough to show in glibc's count, small enough not to be mmapped.
    const std::string payload(60000, 'p');
    MessageRef a = Message::make(0, bytes(payload));
    MessageRef b = a;
    MessageRef c = b;
    const void* block = a.get();
    AllocationProbe probe(block);
    a.reset();
    c.reset();
    EXPECT_FALSE(probe.freed(payload.size())) << "freed while a holder remained";
    EXPECT_EQ(b->payload().size(), payload.size());
    b.reset();
    EXPECT_TRUE(probe.freed(payload.size())) << "not freed after the last holder let go";
}

TEST(Message, HoldersOnManyThreadsReleaseItExactlyOnce) {
    // Every round must end with the count where it belongs: a lost release
    // leaves the buffer allocated, a doubled one frees it under a holder.
    // The allocation probe sees both in any build; ASan and TSan also catch
    // the use after free and the race themselves.
    constexpr int kThreads = 8;
    constexpr int kRounds = 2000;
    const std::string payload(60000, 'p');             // stands out in glibc's count
    const std::size_t threshold = payload.size() / 2;  // far above the threads' own noise
    for (int round = 0; round < 20; ++round) {
        MessageRef m = Message::make(0, bytes(payload));
        // Odd rounds keep a holder here, so the threads must leave the count
        // at one; even rounds let the last release happen on any thread.
        MessageRef keeper = round % 2 == 1 ? m : nullptr;
        std::vector<std::thread> threads;
        threads.reserve(kThreads);
        AllocationProbe probe(m.get());
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([copy = m, size = payload.size()]() mutable {
                for (int i = 0; i < kRounds; ++i) {
                    MessageRef extra = copy;
                    MessageRef moved = std::move(extra);
                    ASSERT_EQ(moved->payload().size(), size);
                }
                copy.reset();
            });
        }
        m.reset();  // the threads may now hold the last references
        for (auto& t : threads) t.join();
        threads.clear();
        if (keeper) {
            EXPECT_FALSE(probe.freed(threshold)) << "round " << round << ": freed under a holder";
            EXPECT_EQ(keeper->payload().size(), payload.size());
            keeper.reset();
        }
        if (AllocationProbe::supported()) {
            EXPECT_TRUE(probe.freed(threshold)) << "round " << round << ": never freed";
        }
    }
}

}  // namespace
}  // namespace ipnfs::test
