#include "fs/caller.hpp"

#include <linux/capability.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <fmt/format.h>

namespace ipnfs::fs {

namespace {

bool same_user_namespace(pid_t pid) {
    struct stat mine {};
    struct stat theirs {};
    if (::stat("/proc/self/ns/user", &mine) != 0) return false;
    if (::stat(fmt::format("/proc/{}/ns/user", pid).c_str(), &theirs) != 0) return false;
    return mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
}

bool has_effective(pid_t pid, unsigned capability) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line)) {
        if (!line.starts_with("CapEff:")) continue;
        unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
        return (mask >> capability & 1U) != 0;
    }
    return false;
}

}  // namespace

bus::Caller caller_of(fuse_req_t req) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    bus::Caller caller;
    // pid 0: the request came from outside the daemon's pid namespace.
    if (ctx == nullptr || ctx->pid <= 0) return caller;
    caller.net_admin = has_effective(ctx->pid, CAP_NET_ADMIN) && same_user_namespace(ctx->pid);
    return caller;
}

bus::Caller daemon_caller() {
    bus::Caller caller;
    caller.net_admin = has_effective(getpid(), CAP_NET_ADMIN);
    return caller;
}

}  // namespace ipnfs::fs
