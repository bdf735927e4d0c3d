// A network's VDE endpoints: `vde NAME` makes VDE_DIR/NAME (netdev/vde_dir.hpp)
// a directory like vde_switch's -s, whose ctl socket speaks VDE's request
// protocol, so that unmodified VDE clients (vde_plug, vde_plug2tap, qemu
// -netdev vde) plug into the network as ports.  Each client is a Device over
// its own datagram socket; its port ends when its control connection closes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "bus/extension.hpp"
#include "bus/network.hpp"
#include "bus/thread_safety.hpp"
#include "netdev/engine.hpp"
#include "netdev/vde_dir.hpp"

namespace ipnfs::netdev {

class VdeEndpoints final : public bus::Extension {
  public:
    // At most this many endpoints per network, and per endpoint this many
    // control connections that have not finished their request (of them, this
    // many from one user, so that one user's idle connections lock nobody out).
    static constexpr std::size_t kMaxEndpoints = 8;
    static constexpr std::size_t kMaxPending = 32;
    static constexpr std::size_t kMaxPendingPerUser = 4;

    VdeEndpoints(bus::Network& net, Engine& engine, const VdeDir& dir);
    ~VdeEndpoints() override;
    VdeEndpoints(const VdeEndpoints&) = delete;
    VdeEndpoints& operator=(const VdeEndpoints&) = delete;

    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override EXCLUDES(mu_);
    void stats(std::string& out) const override EXCLUDES(mu_);
    void set_access(const bus::Access& access) override EXCLUDES(mu_);
    void hang_up() override EXCLUDES(mu_);

  private:
    class Endpoint;
    class Client;

    bus::Status open(std::string_view given) EXCLUDES(mu_);
    bus::Status close(std::string_view given) EXCLUDES(mu_);
    // Waits for the engine thread, which takes mu_: never under it.
    void destroy(std::unique_ptr<Endpoint> endpoint) EXCLUDES(mu_);
    // The clients of `e`, one of endpoints_.  They are guarded by mu_, which
    // the analysis knows only as e.owner_.mu_: it cannot tell that e's owner
    // is *this.
    const std::vector<std::unique_ptr<Client>>& clients_of(const Endpoint& e) const REQUIRES(mu_);

    bus::Network& net_;
    Engine& engine_;
    const VdeDir& dir_;
    bus::CommandTable commands_;

    // mu_ guards endpoints_, each endpoint's list of clients and what stats
    // shows of them, access_ and hung_up_; it serializes vde and unvde.
    // Lock order: mu_ before the network's lock (vde checks, clients
    // connect); the network never calls in here holding its own.  Never held
    // while waiting for the engine thread, which takes it to add and remove
    // clients.
    mutable Mutex mu_;
    std::vector<std::unique_ptr<Endpoint>> endpoints_ GUARDED_BY(mu_);
    bus::Access access_ GUARDED_BY(mu_);
    bool hung_up_ GUARDED_BY(mu_) = false;
};

}  // namespace ipnfs::netdev
