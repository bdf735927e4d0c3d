// A VDE client's frames: one datagram socket of the switch's per client,
// bound in the endpoint's directory and connected to the client's own
// datagram socket.  A datagram is a frame, with no header.
#pragma once

#include <sys/un.h>

#include <memory>
#include <string>

#include "bus/status.hpp"
#include "netdev/link.hpp"
#include "netdev/thread_credentials.hpp"

namespace ipnfs::netdev {

// Makes the socket, connects it to `client` (so that it hears from the
// client only, and sends there; the client may remove its socket's name
// afterwards) and binds it at `bind_at`; the link's name is `name`.
//
// The client's socket is reached with the client's rights only (`who`, of
// its control connection), never the daemon's: its path is walked without
// a FUSE filesystem or more than a few symbolic links (netdev/safe_path.hpp)
// on this thread acting as `who`, it must be a socket that `who` owns (a
// root service's socket a client may write to, like /dev/log, would see
// root's credentials on what the daemon sends), and it is connected through
// the descriptor the walk opened.  Abstract names are refused: they have no
// owner to check.
bus::Status open_vde_link(const std::string& bind_at, const std::string& name,
                          const sockaddr_un& client, const Credentials& who,
                          std::unique_ptr<Link>& out);

}  // namespace ipnfs::netdev
