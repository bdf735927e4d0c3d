// The loads: one sender to N receivers (throughput, paced latency, stalled
// readers) and ping-pong, the same for every contender.
#include <atomic>
#include <thread>

#include "daemon.hpp"
#include "include/ipnfs.h"
#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

struct ReceiverResult {
    std::uint64_t count = 0;   // data messages taken
    std::uint64_t stray = 0;   // data messages a learned unicast should not have brought
    std::int64_t last_ns = 0;  // when the last data message arrived
    std::vector<std::int64_t> latency;
    std::vector<std::int64_t> sent_at;  // for --dump: when each of those was sent
};

// The run's shared clock and end.
struct Run {
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};  // nullfs: nothing carries a marker
    std::atomic<int> done{0};
    std::int64_t start_ns = 0;
};

void receive_loop(Endpoint& ep, const Setup& s, Run& run, ReceiverResult& r, bool target,
                  bool latency) {
    std::vector<std::byte> buf(65536);
    std::unique_ptr<Receiver> receiver = make_receiver(ep, wait_of(s.opt.str("receiver")));
    ++run.ready;
    while (!run.go.load()) std::this_thread::yield();
    bool finished = false;
    const bool null = s.kind == "nullfs";
    OnMessage on = [&](const std::byte* m, std::size_t len) {
        Header h = read_header(m, len);
        if (h.kind == kMarker) {
            finished = true;
        } else if (h.kind == kData) {
            std::int64_t t = now_ns();
            if (!target) {
                ++r.stray;
                return;
            }
            ++r.count;
            r.last_ns = t;
            if (latency && !null) {
                r.latency.push_back(t - h.sent_ns);
                r.sent_at.push_back(h.sent_ns - run.start_ns);
            }
        }
    };
    while (!finished && !(null && run.stop.load())) {
        if (!receiver->next(buf, on)) break;
    }
    receiver.reset();
    if (null) r.last_ns = now_ns();
    ep.close();
    ++run.done;
}

struct Traffic {
    std::vector<std::byte> frames;  // batch messages of `size` bytes each
    std::size_t size;
    int batch;
    Mac dst;
    Mac src;

    Traffic(std::size_t size_, int batch_, Mac dst_, Mac src_)
        : frames(size_ * batch_), size(size_), batch(batch_), dst(dst_), src(src_) {
        for (int i = 0; i < batch; ++i) write_frame(&frames[i * size], dst, src);
    }
    void stamp(int i, std::uint64_t seq, std::uint32_t kind = kData) {
        write_header(&frames[i * size], seq, now_ns(), kind);
    }
};

// Marker to every receiver, again and again, until all have left.
bool finish(Endpoint& sender, Traffic& t, Run& run, int receivers, double timeout_s) {
    std::int64_t deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
    std::vector<std::byte> marker(t.size);
    write_frame(marker.data(), kBroadcast, t.src);
    write_header(marker.data(), 0, 0, kMarker);
    while (run.done.load() < receivers) {
        if (now_ns() > deadline) return false;
        sender.try_send(marker.data(), marker.size());
        sleep_ms(2);
    }
    return true;
}

// --dump FILE (latency): "receiver sent_us latency_us" per message, to see
// when the slow ones happened.
void dump_latency(const std::string& path, int receiver, const ReceiverResult& r) {
    FILE* f = std::fopen(path.c_str(), receiver == 0 ? "w" : "a");
    if (f == nullptr) die_errno("open " + path);
    for (std::size_t k = 0; k < r.latency.size(); ++k) {
        std::fprintf(f, "%d %.1f %.1f\n", receiver, static_cast<double>(r.sent_at[k]) / 1e3,
                     static_cast<double>(r.latency[k]) / 1e3);
    }
    std::fclose(f);
}

int default_batch(const Setup& s) {
    if (!s.framed) return 1;
    // Records fitting in 32 KiB: far below the kernel's FUSE write chunk, so
    // a batch is one write request.
    long b = s.opt.num("batch", 0);
    if (b > 0) return static_cast<int>(b);
    return static_cast<int>(std::clamp<std::size_t>(32768 / IPNFS_RECORD_SIZE(s.size), 1, 256));
}

}  // namespace

int throughput(const Setup& s, bool paced, int stalled) {
    Wiring w = wire_fanout(s);
    Run run;
    DaemonProbe probe{static_cast<pid_t>(s.opt.num("pid", 0))};
    const int n = static_cast<int>(w.receivers.size());
    const int active = n - stalled;
    std::vector<ReceiverResult> results(n);

    Mac src = mac_of(1);
    Mac dst = kBroadcast;
    if (s.learn) {
        // Each receiver announces its address, the switch learns its port;
        // the sender then addresses the first receiver only.
        std::vector<std::byte> hello(s.size);
        for (int i = 0; i < n; ++i) {
            write_frame(hello.data(), kBroadcast, mac_of(0x100 + i));
            write_header(hello.data(), 0, now_ns(), kHello);
            w.receivers[i]->send(hello.data(), hello.size());
        }
        dst = mac_of(0x100);
    }
    std::vector<std::thread> threads;
    threads.reserve(active);
    for (int i = 0; i < active; ++i) {
        threads.emplace_back([&, i] {
            receive_loop(*w.receivers[i], s, run, results[i], !s.learn || i == 0, paced);
        });
    }
    while (run.ready.load() < active) std::this_thread::yield();

    const double seconds = s.opt.real("seconds", 1.0);
    const int batch = paced ? 1 : default_batch(s);
    Traffic t(s.size, batch, dst, src);
    std::unique_ptr<RssSampler> sampler;
    if (stalled > 0) sampler = std::make_unique<RssSampler>(probe, 200);
    probe.begin();
    run.start_ns = now_ns();
    run.go = true;
    const std::int64_t end = run.start_ns + static_cast<std::int64_t>(seconds * 1e9);
    std::uint64_t seq = 0;
    if (paced) {
        const double period = 1e9 / s.opt.real("rate", 2000);
        for (std::uint64_t i = 0;; ++i) {
            std::int64_t due =
                run.start_ns + static_cast<std::int64_t>(period * static_cast<double>(i));
            if (due >= end) break;
            sleep_until(due);
            t.stamp(0, seq++);
            w.sender->send(t.frames.data(), t.size);
        }
    } else {
        while (now_ns() < end) {
            for (int k = 0; k < 16; ++k) {
                for (int i = 0; i < batch; ++i) t.stamp(i, seq++);
                w.sender->send_batch(t.frames.data(), t.size, batch);
            }
        }
    }
    const std::int64_t sent_ns = now_ns();
    // What the stalled readers' queues hold now, from the network's stats.
    long queued = -1;
    if (stalled > 0 && s.kind == "ipnfs") queued = queued_total(s.opt.str("net"));
    bool clean = true;
    if (s.kind == "nullfs") {
        run.stop = true;
        // Readers of nullfs never block, so they see the flag at once.
    } else {
        clean = finish(*w.sender, t, run, active, 10.0);
    }
    if (!clean) {
        std::fprintf(stderr, "ipnfs-loadgen: %d of %d receivers never finished\n",
                     active - run.done.load(), active);
        std::fflush(stderr);
    }
    const std::int64_t done_ns = now_ns();
    const double cpu = probe.cpu_seconds();
    const long hwm = probe.pid ? probe.status_kb("VmHWM:") : 0;
    const long switches = probe.switches() - probe.switches0;
    if (sampler) sampler->stop();
    if (!clean) {
        // Receivers stuck in a read would hold the process: report and leave.
        std::printf("{\"error\":\"receivers did not finish\",\"sent\":%llu}\n",
                    static_cast<unsigned long long>(seq));
        std::fflush(stdout);
        std::_Exit(3);
    }
    for (auto& th : threads) th.join();
    w.sender->close();

    std::vector<double> rates;
    std::vector<double> counts;
    std::uint64_t stray = 0;
    std::int64_t last = run.start_ns;
    std::vector<std::int64_t> lat;
    for (int i = 0; i < active; ++i) {
        const ReceiverResult& r = results[i];
        stray += r.stray;
        if (s.learn && i > 0) continue;
        double span = static_cast<double>(r.last_ns - run.start_ns) / 1e9;
        rates.push_back(r.count && span > 0 ? static_cast<double>(r.count) / span : 0.0);
        counts.push_back(static_cast<double>(r.count));
        last = std::max(last, r.last_ns);
        lat.insert(lat.end(), r.latency.begin(), r.latency.end());
        if (s.opt.has("dump")) dump_latency(s.opt.str("dump"), i, r);
    }
    const double send_s = static_cast<double>(sent_ns - run.start_ns) / 1e9;
    const double wall = static_cast<double>(done_ns - run.start_ns) / 1e9;
    std::printf(
        "{\"sent\":%llu,\"send_s\":%.4f,\"send_rate\":%.1f,\"wall_s\":%.4f,\"counts\":%s,"
        "\"rates\":%s,\"stray\":%llu,\"cpu_s\":%.3f,\"hwm_kb\":%ld,\"switches\":%ld",
        static_cast<unsigned long long>(seq), send_s, static_cast<double>(seq) / send_s, wall,
        list(counts).c_str(), list(rates).c_str(), static_cast<unsigned long long>(stray), cpu, hwm,
        switches);
    if (paced) {
        std::printf(",%s", latency_fields(lat).c_str());
    }
    if (sampler) {
        std::vector<double> series;
        for (long kb : sampler->series()) series.push_back(static_cast<double>(kb));
        std::printf(R"(,"rss_max_kb":%ld,"rss_kb":%s,"queued":%ld)", sampler->max_kb(),
                    list(series).c_str(), queued);
    }
    std::printf("}\n");
    return 0;
}

int pingpong(const Setup& s) {
    if (s.kind == "nullfs") return null_pairs(s, true);
    auto [a, b] = wire_pair(s);
    std::atomic<bool> b_ready{false};
    std::thread echo([&, ep = b.get()] {
        std::vector<std::byte> buf(65536);
        bool finished = false;
        OnMessage on = [&](const std::byte* m, std::size_t len) {
            Header h = read_header(m, len);
            if (h.kind == kMarker) finished = true;
            if (h.kind == kData) ep->send(m, len);
        };
        b_ready = true;
        while (!finished && ep->receive(buf, on)) {
        }
    });
    while (!b_ready.load()) std::this_thread::yield();
    std::vector<std::byte> m(s.size);
    std::vector<std::byte> buf(65536);
    write_frame(m.data(), kBroadcast, mac_of(1));
    const double seconds = s.opt.real("seconds", 1.0);
    std::vector<std::int64_t> rtt;
    std::int64_t start = now_ns();
    std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
    std::uint64_t seq = 0;
    bool back = false;
    OnMessage on = [&](const std::byte* msg, std::size_t len) {
        if (read_header(msg, len).kind == kData) back = true;
    };
    while (now_ns() < end) {
        std::int64_t t0 = now_ns();
        write_header(m.data(), seq, t0, kData);
        a->send(m.data(), m.size());
        back = false;
        while (!back) {
            if (!a->receive(buf, on)) die("pingpong: the echo went away");
        }
        if (seq++ >= 100) rtt.push_back(now_ns() - t0);  // after a warm-up
    }
    write_header(m.data(), seq, 0, kMarker);
    a->send(m.data(), m.size());
    echo.join();
    std::printf("{%s}\n", latency_fields(rtt).c_str());
    return 0;
}

}  // namespace ipnfs_loadgen
