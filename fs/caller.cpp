#include "fs/caller.hpp"

#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <string>

#include <fmt/format.h>

namespace ipnfs::fs {

namespace {

constexpr int kMaxGroups = 65536;  // the kernel's NGROUPS_MAX

bool same_user_namespace(pid_t pid) {
    struct stat mine {};
    struct stat theirs {};
    if (::stat("/proc/self/ns/user", &mine) != 0) return false;
    if (::stat(fmt::format("/proc/{}/ns/user", pid).c_str(), &theirs) != 0) return false;
    return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
}

// The effective capability set of `pid` (0 if it cannot be read).
unsigned long long effective(pid_t pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line)) {
        if (line.starts_with("CapEff:")) return std::stoull(line.substr(7), nullptr, 16);
    }
    return 0;
}

bool has(unsigned long long caps, unsigned capability) {
    return (caps >> capability & 1U) != 0;
}

// The capabilities of the process behind `req` that count here: none when
// it is outside the daemon's pid namespace (pid 0) or user namespace.
unsigned long long capabilities_of(fuse_req_t req) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    if (ctx == nullptr || ctx->pid <= 0 || !same_user_namespace(ctx->pid)) return 0;
    return effective(ctx->pid);
}

}  // namespace

bus::Caller opener_of(fuse_req_t req) {
    bus::Caller caller;
    const fuse_ctx* ctx = fuse_req_ctx(req);
    if (ctx == nullptr) return caller;
    caller.uid = ctx->uid;
    caller.gid = ctx->gid;
    std::array<gid_t, 64> some{};
    int n = fuse_req_getgroups(req, static_cast<int>(some.size()), some.data());
    if (n > static_cast<int>(some.size())) {
        caller.groups.resize(static_cast<std::size_t>(std::min(n, kMaxGroups)));
        n = fuse_req_getgroups(req, static_cast<int>(caller.groups.size()), caller.groups.data());
        caller.groups.resize(
            static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(caller.groups.size()))));
    } else if (n > 0) {
        caller.groups.assign(some.begin(), some.begin() + n);
    }
    unsigned long long caps = capabilities_of(req);
    caller.net_admin = has(caps, CAP_NET_ADMIN);
    caller.dac_override = has(caps, CAP_DAC_OVERRIDE);
    return caller;
}

bus::Caller writer_of(fuse_req_t req, const bus::Caller& opener) {
    bus::Caller caller = opener;
    if (!opener.net_admin && !opener.dac_override) return caller;  // nothing to lose
    unsigned long long caps = capabilities_of(req);
    caller.net_admin = opener.net_admin && has(caps, CAP_NET_ADMIN);
    caller.dac_override = opener.dac_override && has(caps, CAP_DAC_OVERRIDE);
    return caller;
}

bus::Credentials sender_of(fuse_req_t req) {
    // The kernel's fsuid and fsgid of the writing thread, mapped into the
    // daemon's user namespace (a request from a user it cannot map fails
    // with EOVERFLOW before it gets here), and the thread's id in the
    // daemon's pid namespace (0 when it is not visible there).
    const fuse_ctx* ctx = fuse_req_ctx(req);
    if (ctx == nullptr) return {};
    return {static_cast<std::uint32_t>(ctx->pid), ctx->uid, ctx->gid, true};
}

bus::Caller daemon_caller() {
    bus::Caller caller;
    caller.uid = ::geteuid();
    caller.gid = ::getegid();
    unsigned long long caps = effective(::getpid());
    caller.net_admin = has(caps, CAP_NET_ADMIN);
    caller.dac_override = has(caps, CAP_DAC_OVERRIDE);
    return caller;
}

}  // namespace ipnfs::fs
