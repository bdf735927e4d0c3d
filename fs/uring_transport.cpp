#include "fs/uring_transport.hpp"

#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bus/log.hpp"
#include "bus/thread_safety.hpp"

namespace ipnfs::fs {

namespace {

// The kernel's FUSE over io_uring ABI (include/uapi/linux/fuse.h, 7.42),
// which Debian 12's headers predate.
constexpr std::uint32_t kCmdRegister = 1;         // FUSE_IO_URING_CMD_REGISTER
constexpr std::uint32_t kCmdCommitAndFetch = 2;   // FUSE_IO_URING_CMD_COMMIT_AND_FETCH
constexpr std::uint32_t kOverIoUring2 = 1U << 9;  // FUSE_OVER_IO_URING (bit 41) in flags2
constexpr std::uint64_t kIntReqBit = 1;           // FUSE_INT_REQ_BIT

struct RingEntInOut {
    std::uint64_t flags;
    std::uint64_t commit_id;
    std::uint32_t payload_sz;
    std::uint32_t padding;
    std::uint64_t reserved;
};

struct RingHeader {
    char in_out[128];  // fuse_in_header on fetch, fuse_out_header on commit
    char op_in[128];   // the request's first argument (its per-op struct)
    RingEntInOut ent;
};

struct CmdReq {
    std::uint64_t flags;
    std::uint64_t commit_id;
    std::uint16_t qid;
    std::uint8_t padding[6];
};

constexpr std::uint64_t kWakeTag = 1;  // user_data of the wake eventfd's read
constexpr std::uint32_t kFirstEntries = 64;
constexpr std::uint32_t kMaxBatch = 512;
constexpr std::uint32_t kReserve = 4;  // entries of a queue a parked request may not take
// Payload bytes an entry keeps resident between requests: the first page,
// which every small message uses; pages past it are given back (see
// Impl::trim) so an entry costs that page, not the largest message it carried.
const std::size_t kKeepBytes = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
constexpr auto kRecheckAfter = std::chrono::seconds(1);
constexpr std::size_t kRecheckPerRound = 1000;  // /proc reads per round (one round a second)

const char* const kParam = "/sys/module/fuse/parameters/enable_uring";

std::uint32_t possible_cpus() {
    // The kernel makes one queue per possible CPU and uses the ring only
    // once every queue has an entry.
    std::ifstream in("/sys/devices/system/cpu/possible");
    std::string text;
    std::uint32_t count = 0;
    if (std::getline(in, text)) {
        std::stringstream ss(text);
        std::string range;
        while (std::getline(ss, range, ',')) {
            auto dash = range.find('-');
            unsigned lo = std::stoul(range.substr(0, dash));
            unsigned hi = dash == std::string::npos ? lo : std::stoul(range.substr(dash + 1));
            count = std::max(count, hi + 1);
        }
    }
    return count == 0 ? std::max(1U, std::thread::hardware_concurrency()) : count;
}

// A signal waits for the requester's thread: the kernel lost its interrupt
// (see docs/architecture.md), or the thread has gone.
bool signal_pending(std::uint32_t tid) {
    std::ifstream in("/proc/" + std::to_string(tid) + "/status");
    if (!in) return true;
    std::uint64_t pending = 0;
    std::uint64_t blocked = 0;
    std::string line;
    while (std::getline(in, line)) {
        auto hex = [&](std::size_t at) { return std::stoull(line.substr(at), nullptr, 16); };
        if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0) pending |= hex(7);
        if (line.rfind("SigBlk:", 0) == 0) blocked = hex(7);
    }
    constexpr std::uint64_t kKill = 1ULL << (SIGKILL - 1);
    return (pending & (~blocked | kKill)) != 0;
}

}  // namespace

std::string uring_problem() {
    std::ifstream in(kParam);
    if (!in) return "the kernel has no FUSE over io_uring (no " + std::string(kParam) + ")";
    char c = 0;
    in >> c;
    if (c != 'Y' && c != 'y' && c != '1')
        return "the fuse module's parameter enable_uring is off (" + std::string(kParam) + ")";
    return {};
}

struct Queue;
struct Entry;
std::size_t page_round(std::size_t n) {
    return (n + kKeepBytes - 1) / kKeepBytes * kKeepBytes;
}
void drop_payload(Entry* e);

// One ring entry: the header and payload buffers the kernel copies a request
// into and a reply out of.  Owned by its queue; between the request's CQE and
// its commit it belongs to whoever answers the request.
struct Entry {
    Queue* queue = nullptr;
    RingHeader header{};
    struct iovec iov[2]{};
    std::uint64_t commit_id = 0;
    std::uint32_t pid = 0;   // the requester's thread
    std::uint32_t uid = 0;   // the requester's
    bool parked = false;     // counted in its queue's parked_by_uid
    bool in_daemon = false;  // between its request's CQE and its commit
    std::chrono::steady_clock::time_point since;
    // Payload bytes that may be resident (page-rounded high water since the
    // last trim), and for the trim of an idle entry: the unique its commit
    // answered and the queue's submit round that sent the commit.
    std::size_t touched = 0;
    std::uint64_t commit_unique = 0;
    std::uint64_t commit_round = 0;
};

struct Queue {
    UringTransport::Impl* owner = nullptr;
    std::uint32_t qid = 0;
    io_uring ring{};  // only the queue's thread touches it (IORING_SETUP_SINGLE_ISSUER)
    bool ring_made = false;
    int wake_fd = -1;
    std::uint64_t wake_buf = 0;
    std::thread thread;

    Mutex mu;
    // Entries answered on other threads, for this queue's thread to commit.
    std::vector<Entry*> commits GUARDED_BY(mu);
    bool wake_sent GUARDED_BY(mu) = false;  // an eventfd write is on its way

    // The queue's thread alone:
    std::vector<std::unique_ptr<Entry[]>> batches;
    std::vector<std::pair<void*, std::size_t>> maps;
    std::uint32_t cap = 0;  // entries this queue may register
    std::uint32_t registered = 0;
    std::uint32_t held = 0;  // in flight or parked
    // Parked requests of each non-root uid (at most user_cap), and of all of
    // them (at most three quarters of what the queue may park): one user
    // cannot take the entries another user's blocking read needs, nor can
    // users together take root's.
    std::unordered_map<std::uint32_t, std::uint32_t> parked_by_uid;
    std::uint32_t parked_nonroot = 0;
    std::uint32_t user_cap = 0;
    // Committed entries whose payload holds more than kKeepBytes, to trim
    // once the kernel has taken the reply (Impl::trim); `round` counts the
    // main loop's submits.
    std::vector<Entry*> dirty;
    std::uint64_t round = 0;
    // The ring defers task work to io_uring_enter: only then may idle
    // entries be trimmed (Impl::trim).
    bool deferred = false;
    bool at_bound_logged = false;
    std::vector<char> buf;
};

// Gives back the pages of an entry's payload past the first, which only the
// daemon may touch now (the entry is in hand, or idle without a request).
void drop_payload(Entry* e) {
    if (e->touched <= kKeepBytes) return;
    char* base = static_cast<char*>(e->iov[1].iov_base);
    (void)madvise(base + kKeepBytes, e->touched - kKeepBytes, MADV_DONTNEED);
    e->touched = kKeepBytes;
}

namespace {

// The free entries below which a queue registers more.  A request that finds
// none of its CPU's entries free waits in the kernel's list for the queue,
// and the kernel (6.14 to 6.18) hands that list to an entry only when one is
// committed: entries registered later do not take it.  If every entry then
// holds a parked request that waits for one of those listed (a reader for a
// write), nothing moves until another request comes to that CPU.  So a
// queue keeps a margin of free entries, grown as parking takes it, and the
// list forms only for a burst larger than the margin (docs/architecture.md).
std::uint32_t low_water(const Queue& q) {
    return std::max(2 * kReserve, q.registered / 4);
}

thread_local Queue* t_queue = nullptr;  // the queue whose thread this is
thread_local Entry* t_entry = nullptr;  // the request it is handling
}  // namespace

struct UringTransport::Impl {
    fuse_session* se;
    UringOptions opts;
    std::atomic<std::uint64_t> init_unique{0};
    std::atomic<bool> offered{false};
    std::atomic<bool> started{false};
    std::atomic<bool> active{false};
    std::atomic<bool> stopping{false};
    // Set once libfuse's loop has ended: new requests are answered ENOTCONN
    // instead of reaching the file system, which is being taken down.
    std::atomic<bool> draining{false};
    std::atomic<int> in_dispatch{0};
    std::atomic<std::uint32_t> entries{0};
    std::atomic<std::uint32_t> held{0};
    std::atomic<std::uint32_t> waits{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<std::uint32_t> most_entries{0};
    std::atomic<std::uint64_t> rechecked{0};
    std::atomic<std::uint64_t> refused{0};
    std::size_t payload_size = 0;
    int fd = -1;
    std::vector<std::unique_ptr<Queue>> queues;
    std::promise<bool> go;
    std::shared_future<bool> go_future{go.get_future().share()};

    // Ring requests the daemon holds (in flight or parked), by unique.
    struct Shard {
        Mutex mu;
        std::unordered_map<std::uint64_t, Entry*> held GUARDED_BY(mu);
    };
    std::array<Shard, 64> shards;

    // The re-check of parked requests (lost interrupts).
    Mutex check_mu;
    std::condition_variable check_cv;
    bool check_stop GUARDED_BY(check_mu) = false;
    std::thread checker;

    Shard& shard(std::uint64_t unique) { return shards[(unique >> 1) % shards.size()]; }

    void hold(std::uint64_t unique, Entry* e) {
        Shard& s = shard(unique);
        MutexLock lock(s.mu);
        s.held.emplace(unique, e);
    }
    Entry* take(std::uint64_t unique) {
        Shard& s = shard(unique);
        MutexLock lock(s.mu);
        auto it = s.held.find(unique);
        if (it == s.held.end()) return nullptr;
        Entry* e = it->second;
        s.held.erase(it);
        return e;
    }

    bool reply_init(int fd_, struct iovec* iov, int count, ssize_t& written);
    bool start_queues(std::string& why);
    void run_queue(Queue& q, std::promise<std::string>& ready);
    bool grow(Queue& q, bool submit);
    void submit_register(Queue& q, Entry* e);
    void submit_commit(Queue& q, Entry* e);
    void arm_wake(Queue& q);
    io_uring_sqe* sqe_of(Queue& q);
    void handle(Queue& q, Entry* e, int res);
    void commit(Entry* e);
    void trim(Queue& q);
    void recheck_loop();
};

namespace {

std::uint32_t user_entries(const UringOptions& opts) {
    return opts.max_user_entries != 0 ? opts.max_user_entries : opts.max_entries / 8;
}

// Why the request in hand may not park in its queue; null if it may.
const char* park_refusal(const Queue& q, const Entry& e) {
    // q.held counts this request already.
    if (q.held + kReserve > q.cap) return "its CPU's ring queue has no entry to spare";
    if (e.uid == 0) return nullptr;
    std::uint32_t parkable = q.cap - kReserve;
    if (q.parked_nonroot >= parkable - parkable / 4)
        return "users other than root hold their three quarters of its CPU's ring queue";
    auto it = q.parked_by_uid.find(e.uid);
    if (it != q.parked_by_uid.end() && it->second >= q.user_cap)
        return "its uid holds its share of the ring entries (uring_user_entries)";
    return nullptr;
}

}  // namespace

bool uring_may_park() {
    Queue* q = t_queue;
    Entry* e = t_entry;
    if (q == nullptr || e == nullptr) return true;  // a request read from /dev/fuse
    if (const char* why = park_refusal(*q, *e); why != nullptr) {
        q->owner->refused.fetch_add(1, std::memory_order_relaxed);
        bus::log::limited(spdlog::level::info, bus::log::Fields{"uring-park-refused"}.by(e->uid),
                          "a read or write that would wait fails with ENOBUFS: {}", why);
        return false;
    }
    // Parking keeps the margin of free entries (low_water()): the new ones
    // go to the kernel now, before another request can find none.
    if (q->registered - q->held < low_water(*q) && q->owner->grow(*q, true))
        io_uring_submit(&q->ring);
    if (e->uid == 0) return true;
    ++q->parked_by_uid[e->uid];
    ++q->parked_nonroot;
    e->parked = true;
    return true;
}

io_uring_sqe* UringTransport::Impl::sqe_of(Queue& q) {
    io_uring_sqe* sqe = io_uring_get_sqe(&q.ring);
    while (sqe == nullptr) {
        io_uring_submit(&q.ring);
        sqe = io_uring_get_sqe(&q.ring);
    }
    std::memset(sqe, 0, 128);  // an SQE128
    return sqe;
}

void UringTransport::Impl::submit_register(Queue& q, Entry* e) {
    io_uring_sqe* sqe = sqe_of(q);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->cmd_op = kCmdRegister;
    sqe->addr = reinterpret_cast<std::uint64_t>(e->iov);
    sqe->len = 2;
    auto* cmd = reinterpret_cast<CmdReq*>(sqe->cmd);
    cmd->qid = static_cast<std::uint16_t>(q.qid);
    io_uring_sqe_set_data(sqe, e);
}

void UringTransport::Impl::submit_commit(Queue& q, Entry* e) {
    io_uring_sqe* sqe = sqe_of(q);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fd;
    sqe->cmd_op = kCmdCommitAndFetch;
    auto* cmd = reinterpret_cast<CmdReq*>(sqe->cmd);
    cmd->commit_id = e->commit_id;
    cmd->qid = static_cast<std::uint16_t>(q.qid);
    io_uring_sqe_set_data(sqe, e);
    if (e->parked) {
        e->parked = false;
        --q.parked_nonroot;
        auto it = q.parked_by_uid.find(e->uid);
        if (it != q.parked_by_uid.end() && --it->second == 0) q.parked_by_uid.erase(it);
    }
    e->in_daemon = false;
    if (e->touched > kKeepBytes) {
        std::memcpy(&e->commit_unique, e->header.in_out + offsetof(fuse_out_header, unique),
                    sizeof e->commit_unique);
        e->commit_round = q.round + 1;
        q.dirty.push_back(e);
    }
    --q.held;
    held.fetch_sub(1, std::memory_order_relaxed);
}

void UringTransport::Impl::arm_wake(Queue& q) {
    io_uring_sqe* sqe = sqe_of(q);
    io_uring_prep_read(sqe, q.wake_fd, &q.wake_buf, sizeof q.wake_buf, 0);
    io_uring_sqe_set_data64(sqe, kWakeTag);
}

// Registers more entries while the queue has at most one free, up to the
// mount's bound; each entry's payload is address space until touched.
bool UringTransport::Impl::grow(Queue& q, bool submit) {
    std::uint32_t want =
        q.registered == 0 ? kFirstEntries : std::clamp(q.registered / 2, 4U, kMaxBatch);
    if (q.registered >= q.cap) return false;
    std::uint32_t n = std::min(want, q.cap - q.registered);
    entries.fetch_add(n);
    std::size_t bytes = payload_size * n;
    void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) {
        entries.fetch_sub(n);
        bus::log::limited(spdlog::level::warn, {"uring-grow"},
                          "io_uring queue {}: no memory for {} more entries: {}", q.qid, n,
                          std::strerror(errno));
        return false;
    }
    q.maps.emplace_back(map, bytes);
    auto batch = std::make_unique<Entry[]>(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        Entry& e = batch[i];
        e.queue = &q;
        e.iov[0] = {&e.header, sizeof e.header};
        e.iov[1] = {static_cast<char*>(map) + i * payload_size, payload_size};
    }
    if (submit) {
        for (std::uint32_t i = 0; i < n; ++i) submit_register(q, &batch[i]);
    }
    q.registered += n;
    std::uint32_t now = entries.load();
    std::uint32_t most = most_entries.load();
    while (now > most && !most_entries.compare_exchange_weak(most, now)) {
    }
    q.batches.push_back(std::move(batch));
    return true;
}

void UringTransport::Impl::run_queue(Queue& q, std::promise<std::string>& ready) {
    t_queue = &q;
    pthread_setname_np(pthread_self(), ("ipnfs-uring" + std::to_string(q.qid)).c_str());
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(q.qid, &set);
    (void)sched_setaffinity(0, sizeof set, &set);  // best effort: the CPU may be offline

    io_uring_params p{};
    p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = 16384;
    int rc = io_uring_queue_init_params(256, &q.ring, &p);
    q.deferred = rc == 0;
    if (rc == -EINVAL) {  // an older kernel: without deferred task work
        p = {};
        p.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
        p.cq_entries = 16384;
        rc = io_uring_queue_init_params(256, &q.ring, &p);
    }
    if (rc < 0) {
        ready.set_value(std::string("io_uring_queue_init: ") + std::strerror(-rc));
        return;
    }
    q.ring_made = true;
    q.wake_fd = eventfd(0, EFD_CLOEXEC);
    if (q.wake_fd < 0) {
        ready.set_value(std::string("eventfd: ") + std::strerror(errno));
        return;
    }
    q.buf.reserve(payload_size + 512);
    if (!grow(q, false)) {
        ready.set_value("no memory for the first ring entries");
        return;
    }
    ready.set_value({});
    if (!go_future.get()) return;

    // The first batch, made before INIT was answered (the kernel takes
    // entries only once the connection is initialized).
    for (std::uint32_t i = 0; i < q.registered; ++i) submit_register(q, &q.batches[0][i]);
    arm_wake(q);
    while (!stopping.load()) {
        // Parking keeps kReserve entries of the queue free (uring_may_park()),
        // so only requests in flight can fill it, and they are answered.
        if (q.registered - q.held < low_water(q) && !grow(q, true) && q.registered == q.held) {
            waits.fetch_add(1, std::memory_order_relaxed);
            if (!q.at_bound_logged) {
                q.at_bound_logged = true;
                bus::log::warn({"uring-bound"},
                               "io_uring queue {}: all {} entries held (uring_entries={}); its "
                               "requests wait for one to be answered",
                               q.qid, q.registered, opts.max_entries);
            }
        }
        // With entries to trim, submit without waiting, so the trim follows
        // the commits at once instead of the queue's next request.
        rc = q.dirty.empty() ? io_uring_submit_and_wait(&q.ring, 1) : io_uring_submit(&q.ring);
        ++q.round;
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY && rc != -ETIME) {
            bus::log::error({"uring"}, "io_uring queue {}: {}", q.qid, std::strerror(-rc));
            break;
        }
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&q.ring, head, cqe) {
            ++seen;
            std::uint64_t tag = cqe->user_data;
            int res = cqe->res;
            if (tag == kWakeTag) {
                std::vector<Entry*> todo;
                {
                    MutexLock lock(q.mu);
                    todo.swap(q.commits);
                    q.wake_sent = false;
                }
                for (Entry* e : todo) submit_commit(q, e);
                if (!stopping.load()) arm_wake(q);
                continue;
            }
            handle(q, reinterpret_cast<Entry*>(tag), res);
        }
        io_uring_cq_advance(&q.ring, seen);
        if (!q.dirty.empty()) trim(q);
    }
    // The answers given before stop() (end of file to parked readers) go
    // to the kernel before the ring closes.
    std::vector<Entry*> todo;
    {
        MutexLock lock(q.mu);
        todo.swap(q.commits);
    }
    for (Entry* e : todo) submit_commit(q, e);
    io_uring_submit(&q.ring);
}

void UringTransport::Impl::handle(Queue& q, Entry* e, int res) {
    if (res < 0) {
        // The entry is the kernel's no more: the connection ended
        // (ENOTCONN, ECONNABORTED) or the kernel refused it.
        --q.registered;
        entries.fetch_sub(1);
        if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED) {
            bus::log::limited(spdlog::level::err, {"uring-refused"},
                              "io_uring queue {}: the kernel refused a ring entry ({}); "
                              "requests go through /dev/fuse",
                              q.qid, std::strerror(-res));
            active.store(false);
        }
        return;
    }
    ++q.held;
    held.fetch_add(1, std::memory_order_relaxed);
    requests.fetch_add(1, std::memory_order_relaxed);
    e->in_daemon = true;
    const auto* in = reinterpret_cast<const fuse_in_header*>(e->header.in_out);
    std::uint32_t payload = e->header.ent.payload_sz;
    e->touched = std::max(e->touched, page_round(std::min<std::size_t>(payload, payload_size)));
    e->commit_id = e->header.ent.commit_id;
    std::size_t op = in->len - sizeof(fuse_in_header) - payload;
    if (in->len < sizeof(fuse_in_header) + payload || op > sizeof e->header.op_in ||
        payload > payload_size) {
        bus::log::limited(spdlog::level::err, {"uring-bad"},
                          "io_uring queue {}: a request of {} bytes does not add up", q.qid,
                          in->len);
        fuse_out_header out{sizeof(fuse_out_header), -EIO, in->unique};
        std::memcpy(e->header.in_out, &out, sizeof out);
        e->header.ent.payload_sz = 0;
        submit_commit(q, e);
        return;
    }
    q.buf.resize(in->len);
    std::memcpy(q.buf.data(), in, sizeof(fuse_in_header));
    std::memcpy(q.buf.data() + sizeof(fuse_in_header), e->header.op_in, op);
    std::memcpy(q.buf.data() + sizeof(fuse_in_header) + op, e->iov[1].iov_base, payload);
    // The payload is copied out: while the request is handled or parked its
    // entry keeps only its first page.
    drop_payload(e);
    in_dispatch.fetch_add(1);
    if (draining.load()) {
        in_dispatch.fetch_sub(1);
        fuse_out_header out{sizeof(fuse_out_header), -ENOTCONN, in->unique};
        std::memcpy(e->header.in_out, &out, sizeof out);
        e->header.ent.payload_sz = 0;
        submit_commit(q, e);
        return;
    }
    e->pid = in->pid;
    e->uid = in->uid;
    e->parked = false;
    e->since = std::chrono::steady_clock::now();
    hold(in->unique, e);
    fuse_buf fb{};
    fb.size = in->len;
    fb.mem = q.buf.data();
    t_entry = e;
    fuse_session_process_buf(se, &fb);
    t_entry = nullptr;
    in_dispatch.fetch_sub(1);
}

// Idle entries whose commit went out with more than kKeepBytes of payload
// give the rest back.  The kernel writes a new request into an entry only on
// this thread, inside io_uring_enter (the commit's own submission, or task
// work), and writes the in-header last; so here, between two of this
// thread's syscalls, an entry whose header still holds the reply's unique
// holds no request, and its pages are the dead reply's.  One whose header
// changed has a request whose completion is on its way; handle() trims it.
//
// Without deferred task work (an older kernel) the task work may run on any
// return to user space, an interrupt's too, so an idle entry is never
// trimmed there; handle() trims it when it comes back.
void UringTransport::Impl::trim(Queue& q) {
    if (!q.deferred) {
        q.dirty.clear();
        return;
    }
    std::size_t kept = 0;
    for (Entry* e : q.dirty) {
        if (e->in_daemon || e->touched <= kKeepBytes) continue;
        if (e->commit_round > q.round) {
            q.dirty[kept++] = e;  // its commit has not gone out yet
            continue;
        }
        const volatile auto* unique = reinterpret_cast<const volatile std::uint64_t*>(
            e->header.in_out + offsetof(fuse_in_header, unique));
        if (*unique == e->commit_unique) drop_payload(e);
    }
    q.dirty.resize(kept);
}

// Hands an answered entry back to the kernel: at once on its queue's own
// thread, else through the queue's commit list and a wake-up.
void UringTransport::Impl::commit(Entry* e) {
    Queue& q = *e->queue;
    if (t_queue == &q) {
        submit_commit(q, e);
        return;
    }
    bool wake = false;
    {
        MutexLock lock(q.mu);
        q.commits.push_back(e);
        wake = !q.wake_sent;
        q.wake_sent = true;
    }
    if (wake) {
        std::uint64_t one = 1;
        (void)!::write(q.wake_fd, &one, sizeof one);
    }
}

bool UringTransport::Impl::start_queues(std::string& why) {
    std::uint32_t n = possible_cpus();
    if (opts.max_entries < n * 2) {
        why = "uring_entries=" + std::to_string(opts.max_entries) + " is below 2 per CPU queue";
        return false;
    }
    std::vector<std::promise<std::string>> ready(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        auto q = std::make_unique<Queue>();
        q->owner = this;
        q->qid = i;
        // The bound split evenly: one CPU's parked requests cannot take
        // the entries another CPU's requests need.
        q->cap = opts.max_entries / n;
        // A non-root uid's parked requests, split as the entries are.
        q->user_cap = std::max(1U, user_entries(opts) / n);
        queues.push_back(std::move(q));
    }
    for (std::uint32_t i = 0; i < n; ++i) {
        Queue& q = *queues[i];
        auto& r = ready[i];
        q.thread = std::thread([this, &q, &r] { run_queue(q, r); });
    }
    for (auto& r : ready) {
        std::string problem = r.get_future().get();
        if (!problem.empty() && why.empty()) why = problem;
    }
    return why.empty();
}

bool UringTransport::Impl::reply_init(int fd_, struct iovec* iov, int count, ssize_t& written) {
    const auto* header = static_cast<const fuse_out_header*>(iov[0].iov_base);
    std::string why;
    bool use = false;
    if (count < 2 || header->error != 0 || iov[1].iov_len < sizeof(fuse_init_out)) {
        why = "the INIT reply is not one the transport knows";
    } else if (!offered.load()) {
        why = "the kernel did not offer FUSE_OVER_IO_URING in INIT";
    } else {
        auto* out = static_cast<fuse_init_out*>(iov[1].iov_base);
        std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
        std::size_t pages = (out->flags & FUSE_MAX_PAGES) != 0 ? out->max_pages : 32;
        // Page-rounded, so each entry's payload starts on a page of its own
        // (drop_payload() gives pages back).
        payload_size = page_round(std::max<std::size_t>({8192, out->max_write, pages * page}));
        fd = fd_;
        use = start_queues(why);
        if (use) {
            out->flags |= FUSE_INIT_EXT;
            out->flags2 |= kOverIoUring2;
        }
    }
    written = ::writev(fd_, iov, count);
    bool ok = use && written >= 0;
    if (use && !ok) why = std::string("the INIT reply failed: ") + std::strerror(errno);
    if (ok) {
        started.store(true);
        active.store(true);
        bus::log::info({"uring"},
                       "io_uring transport: {} queues, up to {} entries of {} KiB payload",
                       queues.size(), opts.max_entries, payload_size / 1024);
        checker = std::thread([this] { recheck_loop(); });
    } else if (opts.mode == UringMode::on) {
        bus::log::error({"uring-fallback"}, "uring=on, but requests go through /dev/fuse: {}", why);
    } else {
        bus::log::info({"uring-fallback"}, "requests go through /dev/fuse: {}", why);
    }
    go.set_value(ok);
    return true;
}

// The kernel (6.18) loses the interrupt of a signal that comes while a request
// is on its way to a ring entry; the requester then waits killable-only for
// the answer.  The signal stays pending on its thread, so the daemon looks:
// a request held over a second whose requester has a signal pending (or is
// gone) is interrupted as if the kernel had said so.
void UringTransport::Impl::recheck_loop() {
    pthread_setname_np(pthread_self(), "ipnfs-urcheck");
    std::size_t cursor = 0;
    for (;;) {
        {
            UniqueLock lock(check_mu);
            if (!check_stop) check_cv.wait_for(lock.native(), std::chrono::seconds(1));
            if (check_stop) return;
        }
        auto old = std::chrono::steady_clock::now() - kRecheckAfter;
        std::vector<std::pair<std::uint64_t, std::uint32_t>> due;
        for (std::size_t i = 0; i < shards.size() && due.size() < kRecheckPerRound; ++i) {
            Shard& s = shards[(cursor + i) % shards.size()];
            MutexLock lock(s.mu);
            for (const auto& [unique, e] : s.held)
                if (e->since < old) due.emplace_back(unique, e->pid);
        }
        cursor = (cursor + 1) % shards.size();
        std::size_t checked = 0;
        for (auto [unique, pid] : due) {
            if (++checked > kRecheckPerRound) break;
            if (pid == 0 || !signal_pending(pid)) continue;
            // Answered since it was listed (its thread may have gone because
            // of that): an interrupt now would wait in libfuse for nothing.
            {
                Shard& s = shard(unique);
                MutexLock lock(s.mu);
                if (!s.held.contains(unique)) continue;
            }
            rechecked.fetch_add(1, std::memory_order_relaxed);
            bus::log::limited(spdlog::level::debug, {"uring-interrupt"},
                              "request {} of thread {}: a signal waits, interrupting it", unique,
                              pid);
            struct {
                fuse_in_header in;
                fuse_interrupt_in arg;
            } msg{};
            msg.in.len = sizeof msg;
            msg.in.opcode = FUSE_INTERRUPT;
            msg.in.unique = unique | kIntReqBit;
            msg.arg.unique = unique;
            fuse_buf fb{};
            fb.size = sizeof msg;
            fb.mem = &msg;
            fuse_session_process_buf(se, &fb);
        }
    }
}

UringTransport::UringTransport(fuse_session* se, UringOptions opts)
    : impl_(std::make_unique<Impl>()) {
    impl_->se = se;
    impl_->opts = opts;
}

UringTransport::~UringTransport() {
    stop();
}

void UringTransport::saw_request(const void* buf, std::size_t len) {
    if (len < sizeof(fuse_in_header)) return;
    const auto* in = static_cast<const fuse_in_header*>(buf);
    if (in->opcode != FUSE_INIT) return;
    if (len >= sizeof(fuse_in_header) + sizeof(fuse_init_in)) {
        const auto* arg = reinterpret_cast<const fuse_init_in*>(in + 1);
        impl_->offered.store((arg->flags & FUSE_INIT_EXT) != 0 &&
                             (arg->flags2 & kOverIoUring2) != 0);
    }
    impl_->init_unique.store(in->unique);
}

bool UringTransport::reply(int fd, struct iovec* iov, int count, ssize_t& written) {
    if (count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return false;
    const auto* header = static_cast<const fuse_out_header*>(iov[0].iov_base);
    if (header->unique == 0) return false;  // a notification
    std::uint64_t init = impl_->init_unique.load(std::memory_order_relaxed);
    if (init != 0 && header->unique == init) {
        impl_->init_unique.store(0);
        return impl_->reply_init(fd, iov, count, written);
    }
    if (!impl_->started.load(std::memory_order_relaxed)) return false;
    Entry* e = impl_->take(header->unique);
    if (e == nullptr) return false;  // a request read from /dev/fuse
    std::size_t total = 0;
    for (int i = 0; i < count; ++i) total += iov[i].iov_len;
    written = static_cast<ssize_t>(total);
    if (impl_->stopping.load()) return true;
    std::size_t payload = total - iov[0].iov_len;
    fuse_out_header out = *header;
    if (payload > impl_->payload_size) {
        out.error = -EIO;
        payload = 0;
    } else {
        e->touched = std::max(e->touched, page_round(payload));
        char* to = static_cast<char*>(e->iov[1].iov_base);
        for (int i = 1; i < count; ++i) {
            std::memcpy(to, iov[i].iov_base, iov[i].iov_len);
            to += iov[i].iov_len;
        }
    }
    out.len = static_cast<std::uint32_t>(sizeof out + payload);
    std::memcpy(e->header.in_out, &out, sizeof out);
    e->header.ent.payload_sz = static_cast<std::uint32_t>(payload);
    impl_->commit(e);
    return true;
}

void UringTransport::quiesce() {
    Impl& m = *impl_;
    m.draining.store(true);
    {
        MutexLock lock(m.check_mu);
        m.check_stop = true;
    }
    m.check_cv.notify_all();
    if (m.checker.joinable()) m.checker.join();
    // A request already handed to libfuse finishes first (no worker of
    // libfuse's loop is left to compare with: they ended with the loop).
    while (m.in_dispatch.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void UringTransport::stop() {
    Impl& m = *impl_;
    quiesce();
    if (m.stopping.exchange(true)) return;
    if (!m.started.load()) {
        try {
            m.go.set_value(false);
        } catch (const std::future_error&) {
        }
    }
    {
        MutexLock lock(m.check_mu);
        m.check_stop = true;
    }
    m.check_cv.notify_all();
    if (m.checker.joinable()) m.checker.join();
    for (auto& q : m.queues) {
        if (q->wake_fd >= 0) {
            std::uint64_t one = 1;
            (void)!::write(q->wake_fd, &one, sizeof one);
        }
    }
    for (auto& q : m.queues) {
        if (q->thread.joinable()) q->thread.join();
        if (q->ring_made) io_uring_queue_exit(&q->ring);
        // Parked entries' buffers stay mapped: the kernel may still copy
        // into an entry until the connection ends; the process ends soon.
    }
    if (m.started.load()) {
        bus::log::info({"uring-end"},
                       "io_uring transport: {} requests through the ring, at most {} entries, {} "
                       "times at the bound, {} requests interrupted by the re-check",
                       m.requests.load(), m.most_entries.load(), m.waits.load(),
                       m.rechecked.load());
    }
    m.active.store(false);
}

UringStats UringTransport::stats() const {
    const Impl& m = *impl_;
    UringStats s;
    s.active = m.active.load();
    // The queues are made before INIT is answered, and `active` set after.
    s.queues = s.active ? static_cast<std::uint32_t>(m.queues.size()) : 0;
    s.limit = m.opts.max_entries;
    s.user_limit = user_entries(m.opts);
    s.entries = m.entries.load();
    s.held = m.held.load();
    s.waits = m.waits.load();
    s.refused = m.refused.load();
    s.requests = m.requests.load();
    return s;
}

}  // namespace ipnfs::fs
