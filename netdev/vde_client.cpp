#include "netdev/vde_client.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "bus/log.hpp"
#include "netdev/vde_endpoint_private.hpp"
#include "netdev/vde_link.hpp"
#include "netdev/vde_protocol.hpp"

namespace ipnfs::netdev {

void VdeEndpoints::Client::on_readable() {
    if (state_ == State::requesting) {
        read_request();
    } else if (state_ == State::serving) {
        read_after_request();
    }
}

void VdeEndpoints::Client::read_request() {
    const std::string who = endpoint_.who();
    const std::string& net = endpoint_.network();
    for (;;) {
        std::size_t had = request_.size();
        request_.resize(vde::kMaxRequest + 1);
        ssize_t n = ::read(fd_, request_.data() + had, request_.size() - had);
        const int err = n < 0 ? errno : 0;
        request_.resize(had + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
        if (n > 0) {
            if (bus::Status s = vde::check_prefix(request_); !s.ok()) {
                bus::log::limited(spdlog::level::warn,
                                  bus::log::Fields{net, "vde-client-drop"}.by(peer_.uid),
                                  "{}: client (pid {}) dropped: {}", who, peer_.pid, s.reason);
                endpoint_.bury(*this);
                return;
            }
            continue;
        }
        if (err == EINTR) continue;
        if (err == EAGAIN && request_.size() < vde::kFixedSize) return;  // more to come
        if (n == 0 && request_.empty()) {
            bus::log::limited(spdlog::level::info,
                              bus::log::Fields{net, "vde-client-leave"}.by(peer_.uid),
                              "{}: client (pid {}) left before its request", who, peer_.pid);
            endpoint_.bury(*this);
            return;
        }
        if (n == 0 || (n < 0 && err != EAGAIN)) {
            std::string why = n == 0 ? "it closed the connection" : std::strerror(err);
            if (n == 0 && request_.size() < vde::kFixedSize) {
                vde::Request unused;
                why = vde::parse_request(request_, unused).reason;
            }
            bus::log::limited(spdlog::level::warn,
                              bus::log::Fields{net, "vde-client-drop"}.by(peer_.uid),
                              "{}: client (pid {}) dropped: {}", who, peer_.pid, why);
            endpoint_.bury(*this);
            return;
        }
        // Everything the client sent before waiting for the reply.
        vde::Request request;
        bus::Status s = vde::parse_request(request_, request);
        if (s.ok()) s = serve(request);
        if (!s.ok()) {
            bus::log::limited(spdlog::level::warn,
                              bus::log::Fields{net, "vde-client-drop"}.by(peer_.uid),
                              "{}: client (pid {}) dropped: {}", who, peer_.pid, s.reason);
            endpoint_.bury(*this);
        }
        return;
    }
}

bus::Status VdeEndpoints::Client::serve(const vde::Request& request) {
    VdeEndpoints& owner = endpoint_.owner();
    bus::Network& net = owner.net_;
    // The port asked for if it is there and free, else the lowest free one;
    // held alone, like a TAP's.
    bus::Connection conn;
    bus::Status s = bus::Status::error(std::errc::invalid_argument, "");
    if (request.port && *request.port < net.port_count()) {
        s = net.connect(static_cast<bus::PortId>(*request.port), true, true, conn, true);
    }
    if (!s.ok()) s = net.connect_any(true, true, conn, true);
    if (!s.ok()) return s;

    socket_name_ = endpoint_.socket_name(conn.id);
    const int dir_fd = endpoint_.dir_fd();
    struct stat st {};
    if (::fstatat(dir_fd, socket_name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISSOCK(st.st_mode)) {
        ::unlinkat(dir_fd, socket_name_.c_str(), 0);  // left by an earlier daemon
    }
    std::unique_ptr<Link> link;
    const std::string path = endpoint_.path() + "/" + socket_name_;
    if (s = open_vde_link(at_fd(dir_fd, socket_name_), path, request.client, peer_, link);
        !s.ok()) {
        socket_name_.clear();
        net.disconnect(conn);
        return s;
    }
    // The client's own, as vde_switch makes it; a daemon that may not give
    // it away lets the classes that may use ctl reach it instead.
    bus::Access access;
    {
        MutexLock lock(owner.mu_);
        access = owner.access_;
    }
    if (own(dir_fd, socket_name_.c_str(), peer_.uid, access.gid, 0600) != 0 &&
        own(dir_fd, socket_name_.c_str(), peer_.uid, static_cast<gid_t>(-1), 0600) != 0) {
        ::fchmodat(dir_fd, socket_name_.c_str(), ctl_mode(access.mode), AT_SYMLINK_NOFOLLOW);
    }
    auto device = std::make_unique<Device>(net, owner.engine_, std::move(link), conn);
    device->start();
    {
        MutexLock lock(owner.mu_);
        device_ = std::move(device);
        description_ = request.description;
        state_ = State::serving;
    }
    auto reply = vde::encode_reply(path);
    ssize_t n = ::send(fd_, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(reply.size())) {
        return failure(n < 0 ? errno : EAGAIN, "sending the reply");
    }
    bus::log::limited(
        spdlog::level::info,
        bus::log::Fields{endpoint_.network(), conn.id, "vde-client-join"}.by(peer_.uid),
        "{}: client '{}' (pid {}) on port {}, socket {}", endpoint_.who(), description_, peer_.pid,
        conn.id, path);
    return bus::Status::success();
}

void VdeEndpoints::Client::read_after_request() {
    // Clients send nothing more; what comes is read and let go, and the end
    // of the connection is the end of the port.
    std::array<std::byte, 512> scratch{};
    for (int turns = 0; turns < 64; ++turns) {
        ssize_t n = ::read(fd_, scratch.data(), scratch.size());
        if (n > 0) {
            bus::log::debug({endpoint_.network(), device_->port(), "vde-client-noise"},
                            "{}: {} bytes on the control connection ignored", endpoint_.who(), n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        bus::log::limited(
            spdlog::level::info,
            bus::log::Fields{endpoint_.network(), device_->port(), "vde-client-leave"}.by(
                peer_.uid),
            "{}: client '{}' (pid {}) left port {}", endpoint_.who(), description_, peer_.pid,
            device_->port());
        endpoint_.bury(*this);
        return;
    }
}

void VdeEndpoints::Client::end() {
    if (state_ == State::ended) return;
    state_ = State::ended;
    if (device_) {
        device_->detach();
        device_.reset();
    }
    if (!socket_name_.empty()) ::unlinkat(endpoint_.dir_fd(), socket_name_.c_str(), 0);
    endpoint_.owner().engine_.forget(*this, fd_);
    ::close(fd_);
    fd_ = -1;
}

}  // namespace ipnfs::netdev
