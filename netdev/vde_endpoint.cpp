#include "netdev/vde_endpoint.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "netdev/device.hpp"
#include "netdev/thread_credentials.hpp"
#include "netdev/vde_client.hpp"
#include "netdev/vde_endpoint_private.hpp"

namespace ipnfs::netdev {

namespace {

constexpr int kBacklog = 16;
constexpr int kAcceptBudget = 16;
// The endpoint directory: root's, searchable by all, writable by none but
// root.  Who may plug in is decided by ctl's owner and mode, which follow the
// network; clients that cannot bind their own socket here (everyone but
// root) bind it where they may (vde_plug and qemu fall back to /var/tmp).
constexpr mode_t kDirMode = 0755;

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    return addr;
}

// Whether something accepts connections on the stream socket `name` of the
// directory `dir_fd`.
bool listening(int dir_fd, const char* name) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr = unix_address(at_fd(dir_fd, name));
    int r = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    bool live = r == 0 || errno == EAGAIN || errno == EINPROGRESS;
    ::close(fd);
    return live;
}

}  // namespace

bus::Status failure(int err, const std::string& what) {
    return bus::Status::error(static_cast<std::errc>(err),
                              fmt::format("{}: {}", what, std::strerror(err)));
}

mode_t ctl_mode(mode_t net) {
    mode_t mode = 0;
    for (int shift : {6, 3, 0}) {
        if (((net >> shift) & 6) == 6) mode |= 6 << shift;
    }
    return mode;
}

std::string at_fd(int dir_fd, std::string_view name) {
    return fmt::format("/proc/self/fd/{}/{}", dir_fd, name);
}

int own(int dir_fd, const char* name, uid_t uid, gid_t gid, mode_t mode) {
    if (::fchownat(dir_fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    if (::fchmodat(dir_fd, name, mode, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    return 0;
}

// ---- Endpoint ----

void VdeEndpoints::Endpoint::on_readable() {
    for (int n = 0; n < kAcceptBudget; ++n) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            accept_one(fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN)
            bus::log::limited(spdlog::level::warn, {network(), "vde-error"}, "{}: accept: {}",
                              who(), std::strerror(errno));
        return;
    }
}

void VdeEndpoints::Endpoint::accept_one(int fd) {
    Credentials peer;
    if (bus::Status s = peer_credentials(fd, peer); !s.ok()) {
        bus::log::limited(spdlog::level::warn, {network(), "vde-error"},
                          "{}: a client's credentials: {}", who(), s.reason);
        ::close(fd);
        return;
    }
    MutexLock lock(owner_.mu_);
    auto pending = std::count_if(clients_.begin(), clients_.end(), [](const auto& c) {
        return c->state() == Client::State::requesting;
    });
    auto mine = std::count_if(clients_.begin(), clients_.end(), [&](const auto& c) {
        return c->state() == Client::State::requesting && c->uid() == peer.uid;
    });
    // Per user first: one user's idle connections must not lock others out.
    if (static_cast<std::size_t>(mine) >= kMaxPendingPerUser) {
        bus::log::limited(spdlog::level::warn,
                          bus::log::Fields{network(), "vde-client-refuse"}.by(peer.uid),
                          "{}: refused a client (pid {}): {} of its own have not sent their "
                          "request",
                          who(), peer.pid, mine);
        ::close(fd);
        return;
    }
    if (static_cast<std::size_t>(pending) >= kMaxPending) {
        bus::log::limited(spdlog::level::warn,
                          bus::log::Fields{network(), "vde-client-refuse"}.by(peer.uid),
                          "{}: refused a client (pid {}): {} others have not sent their request",
                          who(), peer.pid, pending);
        ::close(fd);
        return;
    }
    clients_.push_back(std::make_unique<Client>(*this, fd, std::move(peer)));
    owner_.engine_.watch(*clients_.back(), fd);
}

void VdeEndpoints::Endpoint::bury(Client& client) {
    std::unique_ptr<Client> gone;
    {
        MutexLock lock(owner_.mu_);
        auto it = std::find_if(clients_.begin(), clients_.end(),
                               [&](const auto& c) { return c.get() == &client; });
        if (it == clients_.end()) return;
        gone = std::move(*it);
        clients_.erase(it);
    }
    gone->end();
    ended_.push_back(std::move(gone));
    owner_.engine_.wake(*this);
}

void VdeEndpoints::Endpoint::shut() {
    if (listen_fd_ < 0) return;
    std::vector<std::unique_ptr<Client>> clients;
    {
        MutexLock lock(owner_.mu_);
        clients.swap(clients_);
    }
    clients.clear();  // each ends as it goes
    ended_.clear();
    owner_.engine_.forget(*this, listen_fd_);
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlinkat(dir_fd_, "ctl", 0);
    ::close(dir_fd_);
    dir_fd_ = -1;
    // Through the held VDE directory: only root can rename in it, so NAME is
    // still the directory `vde` made.
    if (created_ && ::unlinkat(owner_.dir_.fd(), name_.c_str(), AT_REMOVEDIR) != 0) {
        bus::log::warn({network(), "vde-error"}, "{}: not removed: {}", who(),
                       std::strerror(errno));
    }
}

void VdeEndpoints::Endpoint::apply(const bus::Access& access) const {
    // The directory stays root's (a user's could be swapped for a symbolic
    // link); ctl alone follows the network.
    if (int err = own(dir_fd_, "ctl", access.uid, access.gid, ctl_mode(access.mode)); err != 0) {
        bus::log::warn({network(), "vde-error"}, "{}: ctl: owner and mode not set: {}", who(),
                       std::strerror(err));
    }
}

// ---- VdeEndpoints ----

VdeEndpoints::VdeEndpoints(bus::Network& net, Engine& engine, const VdeDir& dir)
    : net_(net), engine_(engine), dir_(dir) {
    commands_ = {
        {.verb = "vde",
         .args = "NAME",
         .nargs = 1,
         .help = "serve VDE clients (vde_plug, qemu -netdev vde) at VDE_DIR/NAME (mount option "
                 "vde_dir), as vde_switch -s VDE_DIR/NAME; needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return open(w[0]); },
         .net_admin = true},
        {.verb = "unvde",
         .args = "NAME",
         .nargs = 1,
         .help = "stop serving VDE clients at VDE_DIR/NAME; needs CAP_NET_ADMIN",
         .run = [this](bus::Words w) { return close(w[0]); },
         .net_admin = true},
    };
}

VdeEndpoints::~VdeEndpoints() {
    hang_up();
}

bus::Status VdeEndpoints::open(std::string_view given) {
    // Strings only until the directory is made through the held descriptor:
    // a path the user names is never looked up (it could be in this mount).
    std::string name;
    if (bus::Status s = dir_.endpoint_name(given, name); !s.ok()) return s;
    const std::string path = dir_.path() + "/" + name;
    MutexLock lock(mu_);
    if (hung_up_) {
        return bus::Status::error(std::errc::no_such_file_or_directory, "network is removed");
    }
    for (const auto& e : endpoints_) {
        if (e->name() == name) {
            return bus::Status::error(std::errc::address_in_use,
                                      fmt::format("{} is a VDE endpoint of this network", path));
        }
    }
    if (endpoints_.size() >= kMaxEndpoints) {
        return bus::Status::error(
            std::errc::no_space_on_device,
            fmt::format("this network has {} VDE endpoints, the most it may", kMaxEndpoints));
    }

    const int parent = dir_.fd();
    bool created = ::mkdirat(parent, name.c_str(), kDirMode) == 0;
    if (!created && errno != EEXIST) return failure(errno, path);
    // Undo what this call made, on every way out but success.
    int dir_fd = -1;
    int listen_fd = -1;
    auto undo = [&](bus::Status s) {
        if (listen_fd >= 0) ::close(listen_fd);
        if (dir_fd >= 0) ::close(dir_fd);
        if (created) ::unlinkat(parent, name.c_str(), AT_REMOVEDIR);
        return s;
    };
    dir_fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd < 0) {
        int err = errno;
        if (err == ENOTDIR || err == ELOOP) {
            return undo(bus::Status::error(std::errc::not_a_directory,
                                           fmt::format("{} exists and is not a directory", path)));
        }
        return undo(failure(err, path));
    }
    struct stat st {};
    if (::fstat(dir_fd, &st) != 0) return undo(failure(errno, path));
    if (created) {
        if (::fchmod(dir_fd, kDirMode) != 0) return undo(failure(errno, path));  // past the umask
    } else if (st.st_uid != ::geteuid() || (st.st_mode & 022) != 0) {
        // Root left it (an earlier daemon, the administrator): kept as it is.
        // Anything else is not the daemon's to serve from.
        return undo(bus::Status::error(
            std::errc::operation_not_permitted,
            fmt::format("{} exists, owned by uid {} with mode {:04o}: not the daemon's own", path,
                        st.st_uid, st.st_mode & 07777)));
    }

    const std::string ctl = path + "/ctl";
    if (::fstatat(dir_fd, "ctl", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return undo(bus::Status::error(std::errc::file_exists,
                                           fmt::format("{} exists and is not a socket", ctl)));
        }
        if (listening(dir_fd, "ctl")) {
            return undo(bus::Status::error(
                std::errc::address_in_use,
                fmt::format("a VDE switch (or another network) already listens at {}", ctl)));
        }
        ::unlinkat(dir_fd, "ctl", 0);
        bus::log::info({net_.name(), "vde-stale"}, "vde {}: replaced a stale {}", path, ctl);
    }
    listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) return undo(failure(errno, "socket"));
    sockaddr_un addr = unix_address(at_fd(dir_fd, "ctl"));
    if (::bind(listen_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return undo(failure(errno, fmt::format("bind {}", ctl)));
    }
    if (::listen(listen_fd, kBacklog) != 0) {
        int err = errno;
        ::unlinkat(dir_fd, "ctl", 0);
        return undo(failure(err, fmt::format("listen {}", ctl)));
    }
    auto endpoint = std::make_unique<Endpoint>(*this, name, path, created, dir_fd, listen_fd);
    endpoint->apply(access_);
    engine_.watch(*endpoint, listen_fd);
    bus::log::info({net_.name(), "vde-start"}, "vde {}: serving VDE clients at {}", path, ctl);
    endpoints_.push_back(std::move(endpoint));
    return bus::Status::success();
}

bus::Status VdeEndpoints::close(std::string_view given) {
    std::string name;
    if (bus::Status s = dir_.endpoint_name(given, name); !s.ok()) return s;
    std::unique_ptr<Endpoint> endpoint;
    {
        MutexLock lock(mu_);
        auto it = std::find_if(endpoints_.begin(), endpoints_.end(),
                               [&](const auto& e) { return e->name() == name; });
        if (it == endpoints_.end()) {
            return bus::Status::error(
                std::errc::no_such_device,
                fmt::format("no VDE endpoint {}/{} on this network", dir_.path(), name));
        }
        endpoint = std::move(*it);
        endpoints_.erase(it);
    }
    bus::log::info({net_.name(), "vde-stop"}, "vde {}: stopped", endpoint->path());
    destroy(std::move(endpoint));
    return bus::Status::success();
}

void VdeEndpoints::destroy(std::unique_ptr<Endpoint> endpoint) {
    // On the engine thread, between its turns: none of the endpoint's
    // descriptors or devices is in use then.
    engine_.run_sync([&] { endpoint.reset(); });
}

void VdeEndpoints::hang_up() {
    std::vector<std::unique_ptr<Endpoint>> endpoints;
    {
        MutexLock lock(mu_);
        hung_up_ = true;
        endpoints.swap(endpoints_);
    }
    for (auto& endpoint : endpoints) destroy(std::move(endpoint));
}

// Not static, though it reads nothing of *this: it requires mu_.
// NOLINTNEXTLINE(readability-convert-member-functions-to-static)
const std::vector<std::unique_ptr<VdeEndpoints::Client>>& VdeEndpoints::clients_of(
    const Endpoint& e) const {
    assert(&e.owner_ == this);
    e.owner_.mu_.assert_held();  // the mu_ this function requires
    return e.clients_;
}

void VdeEndpoints::set_access(const bus::Access& access) {
    MutexLock lock(mu_);
    access_ = access;
    for (const auto& e : endpoints_) e->apply(access);
}

void VdeEndpoints::describe(std::string& out) const {
    MutexLock lock(mu_);
    for (const auto& e : endpoints_) out += fmt::format("vde {}\n", e->path());
}

void VdeEndpoints::stats(std::string& out) const {
    static constexpr std::string_view kRow =
        "{:<24} {:>6} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6} {}\n";
    MutexLock lock(mu_);
    bool header = false;
    for (const auto& e : endpoints_) {
        for (const auto& c : clients_of(*e)) {
            const Device* d = c->device();
            if (c->state() != Client::State::serving || d == nullptr) continue;
            if (!header) {
                out += fmt::format(fmt::runtime(kRow), "vde", "port", "state", "frames_in",
                                   "bytes_in", "frames_out", "bytes_out", "drops", "uid", "client");
                header = true;
            }
            const DeviceCounters& k = d->counters();
            out += fmt::format(fmt::runtime(kRow), e->path(), d->port(), d->state(),
                               k.frames_in.load(std::memory_order_relaxed),
                               k.bytes_in.load(std::memory_order_relaxed),
                               k.frames_out.load(std::memory_order_relaxed),
                               k.bytes_out.load(std::memory_order_relaxed),
                               k.drops.load(std::memory_order_relaxed), c->uid(),
                               c->description().empty() ? "-" : c->description());
        }
    }
}

}  // namespace ipnfs::netdev
