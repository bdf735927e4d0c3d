// FUSE over io_uring (issue 21): the kernel hands requests to per-CPU queues
// of ring entries instead of /dev/fuse, and takes each reply back with the
// commit of the entry that carried the request.  libfuse 3.14 knows nothing
// of it, so the transport sits under libfuse's custom I/O hooks
// (fs/stream_io.cpp): it sees the INIT request and patches its reply, and it
// turns the reply to a ring request into a commit.  /dev/fuse stays for what
// the kernel still sends there (interrupts, forgets) and for notifications.
// See docs/architecture.md, "The io_uring transport".
#pragma once

#include <fuse_lowlevel.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

namespace ipnfs::fs {

enum class UringMode { off, on, automatic };

struct UringOptions {
    UringMode mode = UringMode::off;
    // Ring entries of the whole mount, all queues together (-o uring_entries),
    // split evenly between the CPUs' queues.  Each entry is a request in
    // flight or parked; see docs/usage.md.
    std::uint32_t max_entries = 32768;
    // Parked requests one non-root uid may hold, all queues together
    // (-o uring_user_entries; 0: max_entries / 8), split as the entries are.
    // Non-root uids together may park at most three quarters of a queue.
    std::uint32_t max_user_entries = 0;
};

// Empty if this kernel lets a mount use FUSE over io_uring now, else why not
// (no CONFIG_FUSE_IO_URING, or the fuse module's enable_uring is off).
std::string uring_problem();

// False if the request being handled came through a ring queue that has no
// entry to spare for parking it: the queue keeps a few entries free for
// requests answered at once, so parked requests can never stall the mount.
// The caller then answers ENOBUFS instead of parking.  True off the ring.
bool uring_may_park();

// What the transport did, for the log and the tests.
struct UringStats {
    bool active = false;           // the ring carries requests
    std::uint32_t queues = 0;      // one per possible CPU
    std::uint32_t limit = 0;       // uring_entries
    std::uint32_t user_limit = 0;  // uring_user_entries, or what it defaults to
    std::uint32_t entries = 0;     // registered, all queues
    std::uint32_t held = 0;        // in the daemon now: in flight or parked
    std::uint32_t waits = 0;       // times a queue had no free entry at the bound
    std::uint64_t refused = 0;     // reads and writes refused ENOBUFS (uring_may_park)
    std::uint64_t requests = 0;    // requests that came through the ring
};

class UringTransport {
  public:
    UringTransport(fuse_session* se, UringOptions opts);
    ~UringTransport();
    UringTransport(const UringTransport&) = delete;
    UringTransport& operator=(const UringTransport&) = delete;

    // The read hook's view of each request read from /dev/fuse (the INIT
    // request tells whether the kernel offers the ring).
    void saw_request(const void* buf, std::size_t len);
    // The writev hook: if the reply answers a ring request, commits it and
    // returns true with `written` set; else the caller writes to /dev/fuse.
    // The INIT reply is patched and written here too, then the queues start.
    bool reply(int fd, struct iovec* iov, int count, ssize_t& written);
    // Once libfuse's loop has ended: requests that come through the ring from
    // now on are answered ENOTCONN (the tree is being taken down), and those
    // being handled are waited for.  Replies still go through the ring.
    void quiesce();
    // Ends the queue threads; replies to ring requests after this are dropped.
    // Call once libfuse's loop has ended and parked requests were answered.
    void stop();

    [[nodiscard]] UringStats stats() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace ipnfs::fs
