#include "netdev/vde_endpoint.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "netdev/device.hpp"
#include "netdev/vde_client.hpp"
#include "netdev/vde_endpoint_private.hpp"

namespace ipnfs::netdev {

namespace {

// A client socket's name is PATH/NNN.SEQ (port, then a counter): the longest,
// "/65535.4294967295", must fit in sun_path with PATH and a NUL.
constexpr std::size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1 - 17;
constexpr int kBacklog = 16;
constexpr int kAcceptBudget = 16;

// PATH without repeated or trailing slashes, as ctl shows and unvde takes it.
std::string normalized(std::string_view path) {
    std::string out;
    for (char c : path) {
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out += c;
    }
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

// The directory's mode: the network's; sticky where others may write, so
// that no client removes another's socket.
mode_t dir_mode(mode_t net) {
    mode_t mode = net & 0777;
    return (mode & 022) != 0 ? mode | S_ISVTX : mode;
}

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    return addr;
}

// Whether something accepts connections on the stream socket at `path`.
bool listening(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_un addr = unix_address(path);
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
            bus::log::warn({network(), "vde-error"}, "{}: accept: {}", who(), std::strerror(errno));
        return;
    }
}

void VdeEndpoints::Endpoint::accept_one(int fd) {
    ucred peer{};
    socklen_t len = sizeof peer;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
        bus::log::warn({network(), "vde-error"}, "{}: a client's credentials: {}", who(),
                       std::strerror(errno));
        ::close(fd);
        return;
    }
    std::lock_guard lock(owner_.mu_);
    auto pending = std::count_if(clients_.begin(), clients_.end(), [](const auto& c) {
        return c->state() == Client::State::requesting;
    });
    if (static_cast<std::size_t>(pending) >= kMaxPending) {
        bus::log::warn(
            {network(), "vde-client-refuse"},
            "{}: refused a client (pid {}, uid {}): {} others have not sent their request", who(),
            peer.pid, peer.uid, pending);
        ::close(fd);
        return;
    }
    clients_.push_back(std::make_unique<Client>(*this, fd, peer));
    owner_.engine_.watch(*clients_.back(), fd);
}

void VdeEndpoints::Endpoint::bury(Client& client) {
    std::unique_ptr<Client> gone;
    {
        std::lock_guard lock(owner_.mu_);
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
        std::lock_guard lock(owner_.mu_);
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
    if (created_ && ::rmdir(real_.c_str()) != 0) {
        bus::log::warn({network(), "vde-error"}, "{}: not removed: {}", who(),
                       std::strerror(errno));
    }
}

void VdeEndpoints::Endpoint::apply(const bus::Access& access) const {
    // The directory is the network's only if `vde` made it: an existing one
    // (say /tmp) keeps what its owner gave it.
    if (created_) {
        if (::fchown(dir_fd_, access.uid, access.gid) != 0 ||
            ::fchmod(dir_fd_, dir_mode(access.mode)) != 0) {
            bus::log::warn({network(), "vde-error"}, "{}: owner and mode not set: {}", who(),
                           std::strerror(errno));
        }
    }
    if (int err = own(dir_fd_, "ctl", access.uid, access.gid, ctl_mode(access.mode)); err != 0) {
        bus::log::warn({network(), "vde-error"}, "{}: ctl: owner and mode not set: {}", who(),
                       std::strerror(err));
    }
}

// ---- VdeEndpoints ----

VdeEndpoints::VdeEndpoints(bus::Network& net, Engine& engine) : net_(net), engine_(engine) {
    commands_ = {
        {"vde", "PATH", 1,
         "serve VDE clients (vde_plug, qemu -netdev vde) at directory PATH, as vde_switch -s "
         "PATH; needs CAP_NET_ADMIN",
         [this](bus::Words w) { return open(w[0]); }, 0, true},
        {"unvde", "PATH", 1, "stop serving VDE clients at PATH; needs CAP_NET_ADMIN",
         [this](bus::Words w) { return close(w[0]); }, 0, true},
    };
}

VdeEndpoints::~VdeEndpoints() {
    hang_up();
}

bus::Status VdeEndpoints::open(std::string_view given) {
    if (given.empty() || given.front() != '/') {
        return bus::Status::error(std::errc::invalid_argument,
                                  fmt::format("'{}' is not an absolute path", given));
    }
    std::string path = normalized(given);
    if (path.size() > kMaxPath) {
        return bus::Status::error(std::errc::filename_too_long,
                                  fmt::format("{}: {} bytes; VDE's socket names need it at most {}",
                                              path, path.size(), kMaxPath));
    }
    std::lock_guard lock(mu_);
    if (hung_up_) {
        return bus::Status::error(std::errc::no_such_file_or_directory, "network is removed");
    }
    for (const auto& e : endpoints_) {
        if (e->path() == path || e->real() == path) {
            return bus::Status::error(std::errc::address_in_use,
                                      fmt::format("{} is a VDE endpoint of this network", path));
        }
    }
    if (endpoints_.size() >= kMaxEndpoints) {
        return bus::Status::error(
            std::errc::no_space_on_device,
            fmt::format("this network has {} VDE endpoints, the most it may", kMaxEndpoints));
    }

    bool created = ::mkdir(path.c_str(), 0700) == 0;
    if (!created) {
        int err = errno;
        struct stat st {};
        if (err == ENOENT) {
            return bus::Status::error(std::errc::no_such_file_or_directory,
                                      fmt::format("{}: its parent directory does not exist", path));
        }
        if (err != EEXIST) return failure(err, path);
        if (::stat(path.c_str(), &st) != 0) return failure(errno, path);
        if (!S_ISDIR(st.st_mode)) {
            return bus::Status::error(std::errc::not_a_directory,
                                      fmt::format("{} exists and is not a directory", path));
        }
    }
    // Undo what this call made, on every way out but success.
    int dir_fd = -1;
    int listen_fd = -1;
    auto undo = [&](bus::Status s) {
        if (listen_fd >= 0) ::close(listen_fd);
        if (dir_fd >= 0) ::close(dir_fd);
        if (created) ::rmdir(path.c_str());
        return s;
    };
    std::array<char, PATH_MAX> resolved{};
    if (::realpath(path.c_str(), resolved.data()) == nullptr) return undo(failure(errno, path));
    std::string real(resolved.data());
    if (real.size() > kMaxPath) {
        return undo(bus::Status::error(
            std::errc::filename_too_long,
            fmt::format("{} is {}: {} bytes; VDE's socket names need it at most {}", path, real,
                        real.size(), kMaxPath)));
    }
    dir_fd = ::open(real.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd < 0) return undo(failure(errno, real));

    const std::string ctl = real + "/ctl";
    struct stat st {};
    if (::fstatat(dir_fd, "ctl", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return undo(bus::Status::error(std::errc::file_exists,
                                           fmt::format("{} exists and is not a socket", ctl)));
        }
        if (listening(ctl)) {
            return undo(bus::Status::error(
                std::errc::address_in_use,
                fmt::format("a VDE switch (or another network) already listens at {}", ctl)));
        }
        ::unlinkat(dir_fd, "ctl", 0);
        bus::log::info({net_.name(), "vde-stale"}, "vde {}: replaced a stale {}", path, ctl);
    }
    listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) return undo(failure(errno, "socket"));
    sockaddr_un addr = unix_address(ctl);
    if (::bind(listen_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        return undo(failure(errno, fmt::format("bind {}", ctl)));
    }
    if (::listen(listen_fd, kBacklog) != 0) {
        int err = errno;
        ::unlinkat(dir_fd, "ctl", 0);
        return undo(failure(err, fmt::format("listen {}", ctl)));
    }
    auto endpoint = std::make_unique<Endpoint>(*this, path, real, created, dir_fd, listen_fd);
    endpoint->apply(access_);
    engine_.watch(*endpoint, listen_fd);
    bus::log::info({net_.name(), "vde-start"}, "vde {}: serving VDE clients at {}", path, ctl);
    endpoints_.push_back(std::move(endpoint));
    return bus::Status::success();
}

bus::Status VdeEndpoints::close(std::string_view given) {
    std::string path = normalized(given);
    std::unique_ptr<Endpoint> endpoint;
    {
        std::lock_guard lock(mu_);
        auto it = std::find_if(endpoints_.begin(), endpoints_.end(), [&](const auto& e) {
            return e->path() == path || e->real() == path;
        });
        if (it == endpoints_.end()) {
            return bus::Status::error(std::errc::no_such_device,
                                      fmt::format("no VDE endpoint {} on this network", path));
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
        std::lock_guard lock(mu_);
        hung_up_ = true;
        endpoints.swap(endpoints_);
    }
    for (auto& endpoint : endpoints) destroy(std::move(endpoint));
}

void VdeEndpoints::set_access(const bus::Access& access) {
    std::lock_guard lock(mu_);
    access_ = access;
    for (const auto& e : endpoints_) e->apply(access);
}

void VdeEndpoints::describe(std::string& out) const {
    std::lock_guard lock(mu_);
    for (const auto& e : endpoints_) out += fmt::format("vde {}\n", e->path());
}

void VdeEndpoints::stats(std::string& out) const {
    static constexpr std::string_view kRow =
        "{:<24} {:>6} {:<8} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6} {}\n";
    std::lock_guard lock(mu_);
    bool header = false;
    for (const auto& e : endpoints_) {
        for (const auto& c : e->clients()) {
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
