#include "ipnfs_client.hpp"

#include <gtest/gtest.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

namespace ipnfs_it {

namespace {
int int_ioctl(int fd, unsigned long request, bool on) {
    int value = on ? 1 : 0;
    return ioctl(fd, request, &value) == 0 ? 0 : errno;
}
}  // namespace

int set_framed(int fd, bool on) {
    return int_ioctl(fd, IPNFS_IOC_SET_FRAMED, on);
}

int set_events(int fd, bool on) {
    return int_ioctl(fd, IPNFS_IOC_SET_EVENTS, on);
}

int set_creds(int fd, bool on) {
    return int_ioctl(fd, IPNFS_IOC_SET_CREDS, on);
}

int port_ctl(int fd, std::string_view line) {
    ipnfs_port_ctl arg{};
    line.copy(arg.line, sizeof arg.line - 1);
    return ioctl(fd, IPNFS_IOC_PORT_CTL, &arg) == 0 ? 0 : errno;
}

int get_port(int fd, std::uint32_t& port) {
    return ioctl(fd, IPNFS_IOC_GET_PORT, &port) == 0 ? 0 : errno;
}

std::string encode(const RecordSpec& spec) {
    ipnfs_record h{};
    h.len = static_cast<std::uint32_t>(spec.len < 0 ? spec.payload.size() : spec.len);
    h.kind = spec.kind;
    h.version = spec.version;
    h.port = spec.port;
    h.flags = spec.flags;
    h.seq = spec.seq;
    std::string out(reinterpret_cast<const char*>(&h), sizeof h);
    out += spec.payload;
    out.resize(IPNFS_RECORD_SIZE(spec.payload.size()), '\0');
    return out;
}

std::string encode(std::string_view payload) {
    return encode(RecordSpec{std::string(payload)});
}

std::vector<Record> decode(std::string_view buf) {
    std::vector<Record> out;
    std::size_t at = 0;
    while (at < buf.size()) {
        if (buf.size() - at < sizeof(ipnfs_record)) {
            ADD_FAILURE() << "a partial record header at byte " << at << " of " << buf.size();
            return out;
        }
        Record r;
        std::memcpy(&r.header, buf.data() + at, sizeof r.header);
        const std::size_t extra = IPNFS_CREDS_SIZE(r.header.flags);
        const std::size_t before = sizeof r.header + extra;
        if (buf.size() - at < before) {
            ADD_FAILURE() << "the credentials of the record at byte " << at << " are cut";
            return out;
        }
        if (r.has_creds()) std::memcpy(&r.creds, buf.data() + at + sizeof r.header, sizeof r.creds);
        bool cut = (r.header.flags & IPNFS_FLAG_TRUNCATED) != 0;
        std::size_t present = r.header.len;
        if (cut) present = std::min<std::size_t>(present, buf.size() - at - before);
        if (buf.size() - at - before < present) {
            ADD_FAILURE() << "record at byte " << at << " claims " << r.header.len
                          << " bytes, the buffer has " << buf.size() - at - before;
            return out;
        }
        r.payload.assign(buf.data() + at + before, present);
        r.size = std::min<std::size_t>(extra + IPNFS_RECORD_SIZE(present), buf.size() - at);
        for (std::size_t i = at + before + present; i < at + r.size; ++i) {
            if (buf[i] != '\0') {
                ADD_FAILURE() << "non-zero padding at byte " << i;
                break;
            }
        }
        at += r.size;
        out.push_back(std::move(r));
    }
    return out;
}

Framed read_framed(int fd, std::size_t bufsize, int timeout_ms) {
    Framed f;
    f.io = read_one(fd, timeout_ms, bufsize);
    if (f.io.n > 0) f.records = decode(f.io.data);
    return f;
}

std::string event_line(const Record& r) {
    switch (r.header.kind) {
        case IPNFS_JOIN:
            return "join " + std::to_string(r.header.port) + "\n";
        case IPNFS_LEAVE:
            return "leave " + std::to_string(r.header.port) + "\n";
        case IPNFS_COUNTS: {
            ipnfs_counts c{};
            if (r.payload.size() != sizeof c) return "counts (bad payload)\n";
            std::memcpy(&c, r.payload.data(), sizeof c);
            return "counts " + std::to_string(c.receivers) + " " + std::to_string(c.senders) + "\n";
        }
        default:
            return "data " + r.payload + "\n";
    }
}

std::vector<std::string> drain(int fd, int quiet_ms) {
    std::vector<std::string> got;
    for (;;) {
        Io io = read_one(fd, quiet_ms);
        if (io.n <= 0) return got;
        got.push_back(io.data);
    }
}

}  // namespace ipnfs_it
