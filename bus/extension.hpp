// Something outside the bus that plugs into one network through ordinary
// connections: netdev/'s interfaces, VDE endpoints and cables.  The network
// owns it, offers its ctl verbs, shows its lines in ctl and stats, and ends it
// when the network is removed.  The bus knows nothing else of it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bus/commands.hpp"
#include "bus/message.hpp"

namespace ipnfs::bus {

class Network;

// Who may use a network, as the file system shows it (its directory's mode
// bits and owner): what an extension makes outside the tree, such as a VDE
// endpoint's sockets, follows it.
struct Access {
    mode_t mode = 0;  // permission bits only
    uid_t uid = 0;
    gid_t gid = 0;
};

// The daemon's networks by name, for what joins two of them (cables).
class Directory {
  public:
    virtual ~Directory() = default;
    // The network called `name`, or null if there is none.
    [[nodiscard]] virtual std::shared_ptr<Network> find(std::string_view name) const = 0;
    // Whether `caller` could itself open port `port` of network `name` (any
    // port, through clone, if none is given) for reading and writing, as the
    // file modes say: ENOENT if there is no such network, EACCES if not.
    [[nodiscard]] virtual Status may_open(std::string_view name, std::optional<PortId> port,
                                          const Caller& caller) const = 0;
};

class Extension {
  public:
    virtual ~Extension() = default;

    // Its ctl verbs.  They run without the network lock held, so they may
    // connect, send and disconnect like any other client of the network.
    [[nodiscard]] virtual const CommandTable& commands() const = 0;

    // Its settings as ctl lines that could be written back / its stats section.
    virtual void describe(std::string& out) const = 0;
    virtual void stats(std::string& out) const = 0;

    // The network's access changed (chmod, chown), or is first set.
    virtual void set_access(const Access& /*access*/) {}

    // The network is being removed: let go of every connection now.  Called
    // once, without the network lock; later commands fail with ENOENT.
    virtual void hang_up() = 0;
};

// Makes the extension of a new network; main() decides what it holds.
// `directory` outlives every network it makes extensions for.
class ExtensionMaker {
  public:
    virtual ~ExtensionMaker() = default;
    [[nodiscard]] virtual std::unique_ptr<Extension> make(Network& network,
                                                          const Directory& directory) const = 0;
};

}  // namespace ipnfs::bus
