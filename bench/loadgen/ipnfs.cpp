// The ipnfs contender: port files of a network (--net DIR), plain (one
// message per write and read) or framed (IPNFS_IOC_SET_FRAMED: a batch of
// records per write, 64 KiB of records per read).
#include <sys/ioctl.h>

#include "daemon.hpp"
#include "include/ipnfs.h"
#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

// An ipnfs port file in framed mode: a batch of records per write, as many
// records as fit per read.
class FramedEndpoint final : public FileEndpoint {
  public:
    FramedEndpoint(const std::string& path, int flags) : FileEndpoint(path, flags, 65536) {
        int one = 1;
        if (::ioctl(fd_, IPNFS_IOC_SET_FRAMED, &one) != 0) die_errno("IPNFS_IOC_SET_FRAMED");
    }

    void send(const std::byte* m, std::size_t len) override { send_batch(m, len, 1); }
    void send_batch(const std::byte* m, std::size_t len, int count) override {
        std::size_t rec = IPNFS_RECORD_SIZE(len);
        out_.resize(rec * count);
        for (int i = 0; i < count; ++i) {
            ipnfs_record h{};
            h.len = static_cast<std::uint32_t>(len);
            h.kind = IPNFS_DATA;
            h.version = IPNFS_FRAME_VERSION;
            std::memcpy(out_.data() + i * rec, &h, sizeof h);
            std::memcpy(out_.data() + i * rec + sizeof h, m + i * len, len);
        }
        // A lossless network may take the first records only: go on from there.
        std::size_t done = 0;
        while (done < out_.size()) {
            ssize_t n = ::write(fd_, out_.data() + done, out_.size() - done);
            if (n < 0) {
                if (errno == EINTR || errno == EAGAIN) continue;
                die_errno("framed write");
            }
            done += static_cast<std::size_t>(n);
        }
    }
    void try_send(const std::byte* m, std::size_t len) override {
        std::vector<std::byte> rec(IPNFS_RECORD_SIZE(len));
        ipnfs_record h{};
        h.len = static_cast<std::uint32_t>(len);
        h.version = IPNFS_FRAME_VERSION;
        std::memcpy(rec.data(), &h, sizeof h);
        std::memcpy(rec.data() + sizeof h, m, len);
        FileEndpoint::try_send(rec.data(), rec.size());
    }
    bool receive(std::span<std::byte> buf, const OnMessage& on) override {
        for (;;) {
            ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n == 0) return false;
            if (n < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            parse(buf.data(), static_cast<std::size_t>(n), on);
            return true;
        }
    }
    void parse(const std::byte* m, std::size_t n, const OnMessage& on) override {
        std::size_t at = 0;
        while (at + sizeof(ipnfs_record) <= n) {
            ipnfs_record h{};
            std::memcpy(&h, m + at, sizeof h);
            // A cluster network's records carry the sender's node first.
            if (h.kind == IPNFS_DATA) on(m + at + sizeof h + IPNFS_EXTRA_SIZE(h.flags), h.len);
            at += IPNFS_RECORD_FULL_SIZE(&h);
        }
    }

  private:
    std::vector<std::byte> out_;
};

// Pipes and datagram sockets: the sender writes each message to each
// receiver's descriptor.  Lossy: without blocking, a full buffer drops that

std::vector<std::string> split(const std::string& list) {
    std::vector<std::string> parts;
    std::size_t at = 0;
    while (at < list.size()) {
        auto comma = list.find(',', at);
        if (comma == std::string::npos) comma = list.size();
        parts.push_back(list.substr(at, comma - at));
        at = comma + 1;
    }
    return parts;
}

// Receivers in ipnfs mode: ports 1..N unless --to lists them.
std::vector<int> receiver_ports(const Setup& s) {
    std::vector<int> ports;
    std::string to = s.opt.str("to");
    if (to.empty()) {
        for (int i = 1; i <= s.n; ++i) ports.push_back(i);
        return ports;
    }
    for (const std::string& p : split(to)) ports.push_back(std::atoi(p.c_str()));
    return ports;
}

std::unique_ptr<Endpoint> ipnfs_file(const Setup& s, const std::string& path, int flags) {
    if (s.framed) return std::make_unique<FramedEndpoint>(path, flags);
    return std::make_unique<FileEndpoint>(path, flags, s.size);
}

std::unique_ptr<Endpoint> ipnfs_port(const Setup& s, int port, int flags) {
    return ipnfs_file(s, s.opt.str("net") + "/port" + std::to_string(port), flags);
}

}  // namespace

Wiring wire_ipnfs_fanout(const Setup& s) {
    Wiring w;
    if (!s.opt.has("net")) die("ipnfs needs --net DIR");
    const int flags = s.learn ? O_RDWR : O_RDONLY;
    if (s.opt.has("recv")) {
        for (const std::string& path : split(s.opt.str("recv"))) {
            w.receivers.push_back(ipnfs_file(s, path, flags));
        }
    } else {
        for (int p : receiver_ports(s)) w.receivers.push_back(ipnfs_port(s, p, flags));
    }
    w.sender = ipnfs_port(s, static_cast<int>(s.opt.num("from", 0)), O_WRONLY);
    return w;
}

EndpointPair wire_ipnfs_pair(const Setup& s) {
    return {ipnfs_port(s, 0, O_RDWR), ipnfs_port(s, 1, O_RDWR)};
}

long queued_total(const std::string& net) {
    std::string text = DaemonProbe::slurp(net + "/stats");
    long total = 0;
    bool table = false;
    std::size_t at = 0;
    while (at < text.size()) {
        auto eol = text.find('\n', at);
        if (eol == std::string::npos) eol = text.size();
        std::string line = text.substr(at, eol - at);
        at = eol + 1;
        if (line.rfind("port ", 0) == 0) {
            table = true;
            continue;
        }
        if (!table) continue;
        if (line.empty()) break;  // the table of ports ends; other sections follow
        auto last = line.find_last_of(' ');
        total += std::strtol(line.c_str() + last + 1, nullptr, 10);
    }
    return total;
}

// --dump FILE (latency): "receiver sent_us latency_us" per message, to see

}  // namespace ipnfs_loadgen
