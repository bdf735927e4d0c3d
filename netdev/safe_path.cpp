#include "netdev/safe_path.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

namespace ipnfs::netdev {

namespace {

bus::Status failure(int err, std::string_view what) {
    return bus::Status::error(static_cast<std::errc>(err),
                              fmt::format("{}: {}", what, std::strerror(err)));
}

// Mount id -> filesystem type, from /proc/self/mountinfo: reading it asks no
// filesystem anything.  Read again when an id is missing (a new mount).
class MountTypes {
  public:
    bool find(std::uint64_t id, std::string& type) {
        for (int pass = 0; pass < 2; ++pass) {
            if (auto it = types_.find(id); it != types_.end()) {
                type = it->second;
                return true;
            }
            if (pass == 0) load();
        }
        return false;
    }

  private:
    void load() {
        types_.clear();
        std::ifstream in("/proc/self/mountinfo");
        std::string line;
        while (std::getline(in, line)) {
            // "ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - TYPE SOURCE SUPER"
            std::size_t dash = line.find(" - ");
            if (dash == std::string::npos) continue;
            std::istringstream head(line.substr(0, dash));
            std::istringstream tail(line.substr(dash + 3));
            std::uint64_t id = 0;
            std::string type;
            if (head >> id && tail >> type) types_[id] = type;
        }
    }

    std::unordered_map<std::uint64_t, std::string> types_;
};

// statx of `fd` itself, its mount's type checked; `out` has its type bits.
bus::Status probe(int fd, std::string_view what, MountTypes& mounts, struct statx& out) {
    // AT_STATX_DONT_SYNC: a FUSE inode answers from its cache, no request.
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
                STATX_TYPE | STATX_MNT_ID, &out) != 0) {
        return failure(errno, what);
    }
    if ((out.stx_mask & STATX_MNT_ID) == 0) {
        return bus::Status::error(
            std::errc::operation_not_supported,
            fmt::format("{}: the kernel does not tell its mount (statx STATX_MNT_ID, Linux 5.8)",
                        what));
    }
    std::string type;
    if (!mounts.find(out.stx_mnt_id, type)) {
        return bus::Status::error(
            std::errc::operation_not_permitted,
            fmt::format("{}: its mount ({}) is not in /proc/self/mountinfo", what, out.stx_mnt_id));
    }
    if (is_fuse_type(type)) {
        return bus::Status::error(
            std::errc::operation_not_permitted,
            fmt::format("{} is on a FUSE filesystem ({}): ipnfs does not look into one", what,
                        type));
    }
    return bus::Status::success();
}

void push_components(std::string_view path, std::deque<std::string>& rest) {
    std::deque<std::string> parts;
    while (!path.empty()) {
        std::size_t end = path.find('/');
        std::string_view part = path.substr(0, end);
        if (!part.empty() && part != ".") parts.emplace_back(part);
        if (end == std::string_view::npos) break;
        path.remove_prefix(end + 1);
    }
    rest.insert(rest.begin(), parts.begin(), parts.end());
}

int open_root() {
    return ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

}  // namespace

bool is_fuse_type(std::string_view fstype) {
    return fstype == "fuse" || fstype == "fuseblk" || fstype.starts_with("fuse.");
}

bus::Status check_not_fuse(int fd, std::string_view what) {
    MountTypes mounts;
    struct statx stx {};
    return probe(fd, what, mounts, stx);
}

bus::Status open_no_fuse(std::string_view path, int max_links, UniqueFd& out) {
    if (path.empty() || path.front() != '/') {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("'{}' is not an absolute path", path));
    }
    MountTypes mounts;
    struct statx stx {};
    UniqueFd dir(open_root());
    if (!dir.ok()) return failure(errno, "/");
    if (bus::Status s = probe(dir.get(), "/", mounts, stx); !s.ok()) return s;
    std::string at;  // the walk so far, for reasons
    std::deque<std::string> rest;
    push_components(path, rest);
    int links = 0;
    while (!rest.empty()) {
        const std::string name = std::move(rest.front());
        rest.pop_front();
        std::string shown = at;
        shown += '/';
        shown += name;
        if (name.size() > NAME_MAX) {
            return bus::Status::error(std::errc::filename_too_long,
                                      fmt::format("{}: a name longer than {}", shown, NAME_MAX));
        }
        // `dir` is not FUSE: this lookup is its own filesystem's.
        UniqueFd next(::openat(dir.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        if (!next.ok()) return failure(errno, shown);
        if (bus::Status s = probe(next.get(), shown, mounts, stx); !s.ok()) return s;
        if (S_ISLNK(stx.stx_mode)) {
            if (++links > max_links) {
                return bus::Status::error(
                    std::errc::too_many_symbolic_link_levels,
                    fmt::format("{}: more than {} symbolic links on the way", shown, max_links));
            }
            std::string target(PATH_MAX, '\0');
            ssize_t n = ::readlinkat(dir.get(), name.c_str(), target.data(), target.size());
            if (n <= 0) return failure(n < 0 ? errno : ENOENT, shown);
            target.resize(static_cast<std::size_t>(n));
            if (target.front() == '/') {
                dir.reset(open_root());
                if (!dir.ok()) return failure(errno, "/");
                if (bus::Status s = probe(dir.get(), "/", mounts, stx); !s.ok()) return s;
                at.clear();
            }
            push_components(target, rest);
            continue;
        }
        if (rest.empty()) {
            out = std::move(next);
            return bus::Status::success();
        }
        if (!S_ISDIR(stx.stx_mode)) {
            return bus::Status::error(std::errc::not_a_directory,
                                      fmt::format("{} is not a directory", shown));
        }
        dir = std::move(next);
        at = shown;
    }
    out = std::move(dir);  // the path named "/"
    return bus::Status::success();
}

}  // namespace ipnfs::netdev
