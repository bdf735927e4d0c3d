// Something outside the bus that plugs into one network through ordinary
// connections: kernel interfaces (netdev/), later cables.  The network owns
// it, offers its ctl verbs, shows its lines in ctl and stats, and ends it when
// the network is removed.  The bus knows nothing else of it.
#pragma once

#include <memory>
#include <string>

#include "bus/commands.hpp"

namespace ipnfs::bus {

class Network;

class Extension {
  public:
    virtual ~Extension() = default;

    // Its ctl verbs.  They run without the network lock held, so they may
    // connect, send and disconnect like any other client of the network.
    [[nodiscard]] virtual const CommandTable& commands() const = 0;

    // Its settings as ctl lines that could be written back / its stats section.
    virtual void describe(std::string& out) const = 0;
    virtual void stats(std::string& out) const = 0;

    // The network is being removed: let go of every connection now.  Called
    // once, without the network lock; later commands fail with ENOENT.
    virtual void hang_up() = 0;
};

// Makes the extension of a new network; main() decides what it holds.
class ExtensionMaker {
  public:
    virtual ~ExtensionMaker() = default;
    [[nodiscard]] virtual std::unique_ptr<Extension> make(Network& network) const = 0;
};

}  // namespace ipnfs::bus
