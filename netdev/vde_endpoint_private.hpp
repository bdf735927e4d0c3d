// One of VdeEndpoints' endpoints, and the helpers it shares with its clients
// (netdev/vde_client.hpp); private to netdev/vde_endpoint.cpp and
// netdev/vde_client.cpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "bus/network.hpp"
#include "bus/status.hpp"
#include "netdev/engine.hpp"
#include "netdev/vde_client.hpp"
#include "netdev/vde_endpoint.hpp"

namespace ipnfs::netdev {

bus::Status failure(int err, const std::string& what);

// ctl's mode: rw for each class that may read and write the network.
mode_t ctl_mode(mode_t net);

// Owner and mode of a name in `dir_fd`, never through a symbolic link.
// Returns the errno.
int own(int dir_fd, const char* name, uid_t uid, gid_t gid, mode_t mode);

// NAME in the directory open as `dir_fd`, as a path the kernel resolves
// through that descriptor (bind and connect take no directory descriptor).
std::string at_fd(int dir_fd, std::string_view name);

// One `vde NAME`: the directory, the listening ctl socket and its clients.
class VdeEndpoints::Endpoint final : public Pollable {
  public:
    Endpoint(VdeEndpoints& owner, std::string name, std::string path, bool created, int dir_fd,
             int listen_fd)
        : owner_(owner),
          name_(std::move(name)),
          path_(std::move(path)),
          created_(created),
          dir_fd_(dir_fd),
          listen_fd_(listen_fd) {}
    ~Endpoint() override { shut(); }
    Endpoint(const Endpoint&) = delete;
    Endpoint& operator=(const Endpoint&) = delete;

    void on_readable() override;
    // Frees the clients that ended during the turn: the engine may still have
    // had their events in hand until now.
    void on_wake() override { ended_.clear(); }

    // Ends every client and removes what `vde` made.  Engine thread.
    void shut() EXCLUDES(owner_.mu_);
    // Follows the network's access.  Under the owner's mu_.
    void apply(const bus::Access& access) const;
    // A client is done: off the list now, freed after this turn.  Engine thread.
    void bury(Client& client) EXCLUDES(owner_.mu_);

    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] int dir_fd() const { return dir_fd_; }
    [[nodiscard]] VdeEndpoints& owner() const { return owner_; }
    // The next datagram socket's name for `port`.  Engine thread.
    std::string socket_name(bus::PortId port) {
        return fmt::format("{:03}.{}", port, next_socket_++);
    }
    // For log lines: the network's field and "vde PATH" to start the text.
    [[nodiscard]] const std::string& network() const { return owner_.net_.name(); }
    [[nodiscard]] std::string who() const { return fmt::format("vde {}", path_); }

  private:
    friend class VdeEndpoints;  // clients_of()

    void accept_one(int fd) EXCLUDES(owner_.mu_);

    VdeEndpoints& owner_;
    const std::string name_;  // in the VDE directory
    const std::string path_;  // VDE_DIR/NAME: ctl shows it, clients use it
    const bool created_;      // `vde` made the directory, `unvde` removes it
    int dir_fd_;              // the directory, root's: sockets are made through it
    int listen_fd_;
    std::vector<std::unique_ptr<Client>> clients_ GUARDED_BY(owner_.mu_);
    std::vector<std::unique_ptr<Client>> ended_;  // engine thread
    std::uint32_t next_socket_ = 1;               // engine thread
};

}  // namespace ipnfs::netdev
