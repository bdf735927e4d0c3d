#include "netdev/vde_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "netdev/safe_path.hpp"

namespace ipnfs::netdev {

namespace {

// Without repeated or trailing slashes, as ctl shows a path.
std::string normalized(std::string_view path) {
    std::string out;
    for (char c : path) {
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out += c;
    }
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

bus::Status failure(int err, std::string_view what) {
    return bus::Status::error(static_cast<std::errc>(err),
                              fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace

bus::Status VdeDir::open(std::string_view given, VdeDir& out) {
    if (given.empty() || given.front() != '/') {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("'{}' is not an absolute path", given));
    }
    std::string path = normalized(given);
    if (path == "/" || path.size() + 2 > kMaxEndpointPath) {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("{}: not a directory VDE endpoints fit in (at most "
                                              "{} bytes, not /)",
                                              path, kMaxEndpointPath - 2));
    }
    std::size_t slash = path.rfind('/');
    std::string parent = slash == 0 ? "/" : path.substr(0, slash);
    std::string name = path.substr(slash + 1);
    // Root chose the parents; what they are on is still checked.
    UniqueFd parent_fd;
    if (bus::Status s = open_no_fuse(parent, kMaxLinks, parent_fd); !s.ok()) return s;
    bool made = ::mkdirat(parent_fd.get(), name.c_str(), 0755) == 0;
    if (!made && errno != EEXIST) return failure(errno, path);
    UniqueFd fd(
        ::openat(parent_fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.ok()) {
        int err = errno;
        struct stat st {};
        if ((err == ELOOP || err == ENOTDIR) &&
            ::fstatat(parent_fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode)) {
            return bus::Status::error(std::errc::too_many_symbolic_link_levels,
                                      fmt::format("{} is a symbolic link", path));
        }
        return failure(err, path);
    }
    if (bus::Status s = check_not_fuse(fd.get(), path); !s.ok()) return s;
    if (made && ::fchmod(fd.get(), 0755) != 0) return failure(errno, path);  // past the umask
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return failure(errno, path);
    if (st.st_uid != ::geteuid()) {
        return bus::Status::error(std::errc::operation_not_permitted,
                                  fmt::format("{} belongs to uid {}, not to the daemon's {}", path,
                                              st.st_uid, ::geteuid()));
    }
    if ((st.st_mode & 022) != 0) {
        return bus::Status::error(
            std::errc::operation_not_permitted,
            fmt::format("{} is writable by group or others (mode {:04o}): a user could make "
                        "an endpoint's name there first",
                        path, st.st_mode & 07777));
    }
    out.path_ = std::move(path);
    out.fd_ = std::move(fd);
    return bus::Status::success();
}

bus::Status VdeDir::endpoint_name(std::string_view given, std::string& name) const {
    if (!ok()) {
        return bus::Status::error(std::errc::no_such_device,
                                  why_off_.empty()
                                      ? "this daemon has no VDE directory (mount option vde_dir)"
                                      : fmt::format("VDE endpoints are off: {}", why_off_));
    }
    std::string_view candidate = given;
    std::string path;
    if (given.starts_with('/')) {
        path = normalized(given);
        std::string_view p = path;
        if (!p.starts_with(path_) || p.size() <= path_.size() + 1 || p[path_.size()] != '/' ||
            p.substr(path_.size() + 1).find('/') != std::string_view::npos) {
            return bus::Status::error(
                std::errc::operation_not_permitted,
                fmt::format("{} is not in {}: VDE endpoints are made only there (mount option "
                            "vde_dir); write vde NAME",
                            path, path_));
        }
        candidate = p.substr(path_.size() + 1);
    }
    if (candidate.empty() || candidate == "." || candidate == ".." ||
        candidate.find('/') != std::string_view::npos ||
        !std::ranges::all_of(candidate, [](char c) { return c > 0x20 && c < 0x7f; })) {
        return bus::Status::error(
            std::errc::invalid_argument,
            fmt::format("'{}' is not an endpoint name: one printable path component, not . or ..",
                        given));
    }
    if (path_.size() + 1 + candidate.size() > kMaxEndpointPath) {
        return bus::Status::error(
            std::errc::filename_too_long,
            fmt::format("{}/{}: {} bytes; VDE's socket names need it at most {}", path_, candidate,
                        path_.size() + 1 + candidate.size(), kMaxEndpointPath));
    }
    name = std::string(candidate);
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
