// Locks the compiler checks.  Built with clang and -Wthread-safety
// (IPNFS_THREAD_SAFETY=ON, a step of tools/test.sh), every member marked
// GUARDED_BY(mu) may be touched only with mu held, and every function marked
// REQUIRES(mu) / EXCLUDES(mu) may be called only with mu held / not held: a
// broken rule is a compile error, not a race found (or not) under TSan.
// libstdc++'s std::mutex carries no such marks, so the daemon's code locks
// these wrappers instead; with gcc the marks are empty and the wrappers cost
// nothing over std::mutex.  The model is Clang's documentation and abseil's
// Mutex; the macro names are theirs without a prefix, as in most code bases.
#pragma once

#include <mutex>

#if defined(__clang__)
#define IPNFS_TSA(x) __attribute__((x))
#else
#define IPNFS_TSA(x)
#endif

#define CAPABILITY(x) IPNFS_TSA(capability(x))
#define SCOPED_CAPABILITY IPNFS_TSA(scoped_lockable)
#define GUARDED_BY(x) IPNFS_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) IPNFS_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) IPNFS_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) IPNFS_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) IPNFS_TSA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) IPNFS_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) IPNFS_TSA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) IPNFS_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) IPNFS_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) IPNFS_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) IPNFS_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS IPNFS_TSA(no_thread_safety_analysis)

namespace ipnfs {

// std::mutex with the marks.
class CAPABILITY("mutex") Mutex {
  public:
    void lock() ACQUIRE() { mu_.lock(); }
    void unlock() RELEASE() { mu_.unlock(); }
    bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
    // Tells the analysis the caller holds it, where it cannot see so (a
    // callback run under the lock by code it does not follow).
    void assert_held() const ASSERT_CAPABILITY(this) {}
    // For std::condition_variable, which needs the std::mutex itself.
    std::mutex& native() { return mu_; }

  private:
    std::mutex mu_;
};

// std::lock_guard for a Mutex.
class SCOPED_CAPABILITY MutexLock {
  public:
    explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
    ~MutexLock() RELEASE() { mu_.unlock(); }
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

  private:
    Mutex& mu_;
};

// A lock that can be let go of before its scope ends (std::unique_lock
// without deferral or moves, which the analysis cannot follow), and taken
// again; a std::condition_variable waits on native().
class SCOPED_CAPABILITY UniqueLock {
  public:
    explicit UniqueLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.native()) {}
    ~UniqueLock() RELEASE() = default;
    UniqueLock(const UniqueLock&) = delete;
    UniqueLock& operator=(const UniqueLock&) = delete;

    void unlock() RELEASE() { lock_.unlock(); }
    void lock() ACQUIRE() { lock_.lock(); }
    std::unique_lock<std::mutex>& native() { return lock_; }

  private:
    std::unique_lock<std::mutex> lock_;
};

}  // namespace ipnfs
