// Cables between networks of this daemon: ctl `cable NET [PORT [PEERPORT]]`
// joins a port of this network to a port of NET, as a wire joins two
// switches, without a helper process.  Each end is a netdev::Device on a
// CableLink, so frames cross on the engine thread and no network lock is
// held while the other network's is taken.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/extension.hpp"
#include "bus/network.hpp"
#include "bus/thread_safety.hpp"
#include "netdev/cable_link.hpp"
#include "netdev/device.hpp"
#include "netdev/engine.hpp"

namespace ipnfs::netdev {

// Every cable of the daemon.  Daemon-wide because a cable has two networks,
// and either one's removal ends it.
class Cables {
  public:
    explicit Cables(Engine& engine) : engine_(engine) {}
    ~Cables();
    Cables(const Cables&) = delete;
    Cables& operator=(const Cables&) = delete;

    // A cable from `from`'s port (or its lowest free one) to `to`'s port
    // (or its lowest free one).  One cable per pair of networks.
    bus::Status plug(bus::Network& from, std::optional<bus::PortId> port,
                     const std::shared_ptr<bus::Network>& to, std::optional<bus::PortId> peer_port)
        EXCLUDES(mu_);
    // Removes the cable between the two networks (ENODEV if none).
    bus::Status unplug(const bus::Network& net, std::string_view peer) EXCLUDES(mu_);
    // The network is going away: every cable it has ends, at both ends.
    void unplug_all(const bus::Network& net) EXCLUDES(mu_);

    // `cable` lines of the cables `net` made, to write back to its ctl.
    void describe(const bus::Network& net, std::string& out) const EXCLUDES(mu_);
    // The cables table of `net`'s stats: one row per cable end it holds.
    void stats(const bus::Network& net, std::string& out) const EXCLUDES(mu_);

  private:
    struct End {
        bus::Network* net = nullptr;
        CableLink* link = nullptr;  // owned by device
        std::unique_ptr<Device> device;
    };
    struct Cable {
        End a;  // the network whose ctl made it
        End b;
        [[nodiscard]] bool touches(const bus::Network& net) const {
            return a.net == &net || b.net == &net;
        }
    };

    // Waits for the engine thread; needs no lock (the cables are off the list).
    void destroy(std::vector<std::unique_ptr<Cable>> cables) EXCLUDES(mu_);

    Engine& engine_;
    // mu_ guards cables_ and serializes plugging and unplugging.  Lock order:
    // mu_ before any network's lock (plug connects under it); no network
    // calls in here while holding its own lock, and the engine thread never
    // takes it, so waiting for the engine under it is safe.
    mutable Mutex mu_;
    std::vector<std::unique_ptr<Cable>> cables_ GUARDED_BY(mu_);
};

// One network's part of the cables: its ctl verbs, lines and stats.
class CablePorts final : public bus::Extension {
  public:
    CablePorts(bus::Network& net, const bus::Directory& directory, Cables& cables);
    ~CablePorts() override;
    CablePorts(const CablePorts&) = delete;
    CablePorts& operator=(const CablePorts&) = delete;

    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override { cables_.describe(net_, out); }
    void stats(std::string& out) const override { cables_.stats(net_, out); }
    void hang_up() override { cables_.unplug_all(net_); }

  private:
    bus::Status plug(bus::Words w, const bus::Caller& caller);

    bus::Network& net_;
    const bus::Directory& directory_;
    Cables& cables_;
    bus::CommandTable commands_;
};

}  // namespace ipnfs::netdev
