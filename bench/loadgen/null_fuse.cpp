// The null FUSE contender: bench/nullfs.cpp's file (--file PATH), where
// writes are answered at once and reads with zeros; nothing is carried.
#include "loadgen.hpp"

namespace ipnfs_loadgen {

Wiring wire_null_fuse_fanout(const Setup& s) {
    Wiring w;
    std::string file = s.opt.str("file");
    for (int i = 0; i < s.n; ++i) {
        w.receivers.push_back(std::make_unique<FileEndpoint>(file, O_RDONLY, s.size));
    }
    w.sender = std::make_unique<FileEndpoint>(file, O_WRONLY, s.size);
    return w;
}

// nullfs has no path from a writer to a reader: its "one-way latency" is one
// write and one read back to back, its round trip two of each.
int null_pairs(const Setup& s, bool round_trip) {
    FileEndpoint ep(s.opt.str("file"), O_RDWR, s.size);
    std::vector<std::byte> m(s.size);
    std::vector<std::byte> buf(s.size);
    write_frame(m.data(), kBroadcast, mac_of(1));
    OnMessage ignore = [](const std::byte*, std::size_t) {};
    const double seconds = s.opt.real("seconds", 1.0);
    const double period = round_trip ? 0 : 1e9 / s.opt.real("rate", 2000);
    std::vector<std::int64_t> lat;
    std::int64_t start = now_ns();
    std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
    for (std::uint64_t i = 0;; ++i) {
        std::int64_t due = start + static_cast<std::int64_t>(period * static_cast<double>(i));
        if (due >= end || now_ns() >= end) break;
        if (period > 0) sleep_until(due);
        std::int64_t t0 = now_ns();
        for (int leg = 0; leg < (round_trip ? 2 : 1); ++leg) {
            ep.send(m.data(), m.size());
            ep.receive(buf, ignore);
        }
        if (i >= 100 || !round_trip) lat.push_back(now_ns() - t0);
    }
    std::printf("{%s}\n", latency_fields(lat).c_str());
    return 0;
}

}  // namespace ipnfs_loadgen
