// The kernel interfaces of one network: the ctl verbs tap, untap, grab and
// ungrab, their lines in ctl and stats, and their end with the network.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bus/extension.hpp"
#include "bus/network.hpp"
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
    void describe(std::string& out) const override;
    void stats(std::string& out) const override;
    void hang_up() override;

  private:
    using Opener = bus::Status (*)(std::string_view, std::unique_ptr<Link>&);

    bus::Status attach(std::string_view kind, Opener open, bus::Words w);
    bus::Status detach(std::string_view kind, std::string_view name);
    void destroy(std::unique_ptr<Device> device);

    bus::Network& net_;
    Engine& engine_;
    bus::CommandTable commands_;

    // mu_ guards devices_ and hung_up_, and serializes attach and detach.
    // Lock order: mu_ before the network's lock (attach connects under it);
    // the network never calls in here while holding its own.
    mutable std::mutex mu_;
    std::vector<std::unique_ptr<Device>> devices_;
    bool hung_up_ = false;
};

}  // namespace ipnfs::netdev
