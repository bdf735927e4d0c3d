// The kernel interfaces of one network: the ctl verbs tap, untap, grab and
// ungrab, their lines in ctl and stats, and their end with the network.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/extension.hpp"
#include "bus/network.hpp"
#include "bus/thread_safety.hpp"
#include "netdev/device.hpp"
#include "netdev/engine.hpp"

namespace ipnfs::netdev {

class Interfaces final : public bus::Extension {
  public:
    Interfaces(bus::Network& net, Engine& engine);
    ~Interfaces() override;
    Interfaces(const Interfaces&) = delete;
    Interfaces& operator=(const Interfaces&) = delete;

    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override EXCLUDES(mu_);
    void stats(std::string& out) const override EXCLUDES(mu_);
    void hang_up() override EXCLUDES(mu_);

  private:
    using Opener = std::function<bus::Status(std::string_view, std::unique_ptr<Link>&)>;

    // tap NAME [PORT]
    bus::Status tap(bus::Words w) EXCLUDES(mu_);
    // grab IFACE [PORT] [rcvbuf BYTES]; on a grabbed IFACE, rcvbuf alone
    // sets its receive buffer in place.
    bus::Status grab(bus::Words w) EXCLUDES(mu_);
    bus::Status attach(std::string_view kind, const Opener& open, std::string_view name,
                       std::optional<std::string_view> port) EXCLUDES(mu_);
    bus::Status detach(std::string_view kind, std::string_view name) EXCLUDES(mu_);
    // Waits for the engine thread, so never under mu_.
    void destroy(std::unique_ptr<Device> device) EXCLUDES(mu_);

    bus::Network& net_;
    Engine& engine_;
    bus::CommandTable commands_;

    // mu_ guards devices_ and hung_up_, and serializes attach and detach.
    // Lock order: mu_ before the network's lock (attach connects under it);
    // the network never calls in here while holding its own.
    mutable Mutex mu_;
    std::vector<std::unique_ptr<Device>> devices_ GUARDED_BY(mu_);
    bool hung_up_ GUARDED_BY(mu_) = false;
};

}  // namespace ipnfs::netdev
