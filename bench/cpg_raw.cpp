// The raw-CPG contender of bench/cluster.sh: what Corosync's CPG carries on
// its own, the ceiling a cluster network on it can reach on this machine.
//
//   ipnfs-cpg-raw send GROUP SIZE SECONDS MEMBERS [RATE]
//   ipnfs-cpg-raw recv GROUP
//
// send joins GROUP, waits until MEMBERS processes are in it (itself
// included), multicasts SIZE-byte messages (CPG_TYPE_AGREED) for SECONDS, as
// fast as CPG takes them or RATE a second, then an end mark.  Each message
// starts with its number and its CLOCK_MONOTONIC send time (one clock for
// every network namespace of a machine).  recv joins GROUP and, at the end
// mark, prints one line: messages received, msg/s between the first and the
// last, and one-way latency percentiles.  It uses libcpg directly: bench/
// depends on no ipnfs library.
#include <corosync/cpg.h>
#include <poll.h>
#include <sys/uio.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr std::uint64_t kEnd = ~std::uint64_t{0};
constexpr std::size_t kHeader = 2 * sizeof(std::uint64_t);

std::uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000U +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] void die(const std::string& what, cs_error_t err) {
    std::fprintf(stderr, "ipnfs-cpg-raw: %s: corosync error %d%s\n", what.c_str(),
                 static_cast<int>(err),
                 err == CS_ERR_LIBRARY ? " (is corosync running in this namespace?)" : "");
    std::exit(1);
}

struct State {
    std::size_t members = 0;
    bool sender = false;
    bool ended = false;
    std::uint64_t received = 0;
    std::uint64_t first_ns = 0;
    std::uint64_t last_ns = 0;
    std::vector<std::uint32_t> latency_ns;
};
State state;

void on_deliver(cpg_handle_t, const cpg_name*, uint32_t, uint32_t, void* msg, size_t len) {
    if (state.sender || len < kHeader) return;
    std::uint64_t seq = 0;
    std::uint64_t sent = 0;
    std::memcpy(&seq, msg, sizeof seq);
    std::memcpy(&sent, static_cast<char*>(msg) + sizeof seq, sizeof sent);
    if (seq == kEnd) {
        state.ended = true;
        return;
    }
    std::uint64_t now = now_ns();
    if (state.received++ == 0) state.first_ns = now;
    state.last_ns = now;
    state.latency_ns.push_back(
        static_cast<std::uint32_t>(std::min<std::uint64_t>(now - sent, ~0U)));
}

void on_confchg(cpg_handle_t, const cpg_name*, const cpg_address*, size_t n, const cpg_address*,
                size_t, const cpg_address*, size_t) {
    state.members = n;
}

// Waits up to `ns` for something to dispatch, then dispatches all of it.
void pump(cpg_handle_t handle, int fd, std::uint64_t ns) {
    pollfd p{fd, POLLIN, 0};
    timespec wait{static_cast<time_t>(ns / 1000000000U), static_cast<long>(ns % 1000000000U)};
    if (ppoll(&p, 1, &wait, nullptr) <= 0) return;
    cs_error_t err = cpg_dispatch(handle, CS_DISPATCH_ALL);
    if (err != CS_OK && err != CS_ERR_TRY_AGAIN) die("cpg_dispatch", err);
}

// One message: number, send time, padding to `size`.  On CS_ERR_TRY_AGAIN
// (CPG's own flow control) it dispatches until CPG takes it.
void send_one(cpg_handle_t handle, int fd, std::vector<char>& buf, std::uint64_t seq) {
    std::memcpy(buf.data(), &seq, sizeof seq);
    for (;;) {
        std::uint64_t sent = now_ns();
        std::memcpy(buf.data() + sizeof seq, &sent, sizeof sent);
        iovec iov{buf.data(), buf.size()};
        cs_error_t err = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
        if (err == CS_OK) return;
        if (err != CS_ERR_TRY_AGAIN) die("cpg_mcast_joined", err);
        pump(handle, fd, 1000000);
    }
}

double percentile(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k] / 1000.0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: ipnfs-cpg-raw send GROUP SIZE SECONDS MEMBERS [RATE]\n"
                 "       ipnfs-cpg-raw recv GROUP\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    std::string mode = argv[1];
    state.sender = mode == "send";
    if (!(state.sender ? argc == 6 || argc == 7 : mode == "recv" && argc == 3)) return usage();

    cpg_model_v1_data_t model{};
    model.model = CPG_MODEL_V1;
    model.cpg_deliver_fn = on_deliver;
    model.cpg_confchg_fn = on_confchg;
    cpg_handle_t handle = 0;
    cs_error_t err = cpg_model_initialize(&handle, CPG_MODEL_V1,
                                          reinterpret_cast<cpg_model_data_t*>(&model), nullptr);
    if (err != CS_OK) die("cpg_model_initialize", err);
    int fd = -1;
    if ((err = cpg_fd_get(handle, &fd)) != CS_OK) die("cpg_fd_get", err);
    cpg_name group{};
    group.length = static_cast<std::uint32_t>(std::min(std::strlen(argv[2]), sizeof group.value));
    std::memcpy(group.value, argv[2], group.length);
    while ((err = cpg_join(handle, &group)) == CS_ERR_TRY_AGAIN) pump(handle, fd, 10000000);
    if (err != CS_OK) die("cpg_join", err);

    if (state.sender) {
        std::size_t size = std::max<std::size_t>(std::strtoul(argv[3], nullptr, 10), kHeader);
        double seconds = std::strtod(argv[4], nullptr);
        std::size_t members = std::strtoul(argv[5], nullptr, 10);
        double rate = argc == 7 ? std::strtod(argv[6], nullptr) : 0;
        std::uint64_t wait_until = now_ns() + 30'000'000'000ULL;
        while (state.members < members) {
            if (now_ns() > wait_until) {
                std::fprintf(stderr, "ipnfs-cpg-raw: %zu of %zu members after 30 s\n",
                             state.members, members);
                return 1;
            }
            pump(handle, fd, 10000000);
        }
        std::vector<char> buf(size, 'x');
        std::uint64_t start = now_ns();
        std::uint64_t stop = start + static_cast<std::uint64_t>(seconds * 1e9);
        std::uint64_t seq = 0;
        for (std::uint64_t t = start; t < stop; t = now_ns()) {
            if (rate > 0) {
                auto due =
                    start + static_cast<std::uint64_t>(static_cast<double>(seq) * 1e9 / rate);
                if (t < due) {
                    pump(handle, fd, due - t);
                    continue;
                }
            }
            send_one(handle, fd, buf, seq++);
            pump(handle, fd, 0);
        }
        send_one(handle, fd, buf, kEnd);
        // Until the end mark is out of this process (it is delivered back).
        for (std::uint64_t t = now_ns(); now_ns() < t + 500'000'000ULL;) pump(handle, fd, 10000000);
        std::printf("send sent=%llu\n", static_cast<unsigned long long>(seq));
    } else {
        while (!state.ended) pump(handle, fd, 1000000000);
        double secs = static_cast<double>(state.last_ns - state.first_ns) / 1e9;
        std::printf("recv received=%llu msg_per_s=%.0f p50_us=%.1f p99_us=%.1f\n",
                    static_cast<unsigned long long>(state.received),
                    secs > 0 ? static_cast<double>(state.received - 1) / secs : 0,
                    percentile(state.latency_ns, 0.50), percentile(state.latency_ns, 0.99));
    }
    cpg_leave(handle, &group);
    cpg_finalize(handle);
    return 0;
}
