// A VDE client's frames: one datagram socket of the switch's per client,
// bound in the endpoint's directory and connected to the client's own
// datagram socket.  A datagram is a frame, with no header.
#pragma once

#include <sys/un.h>

#include <memory>
#include <string>

#include "bus/status.hpp"
#include "netdev/link.hpp"

namespace ipnfs::netdev {

// Makes the socket, connects it to `client` (so that it hears from the
// client only, and sends there; the client may remove its socket's name
// afterwards) and binds it at `path`.  The link's name is `path`.
bus::Status open_vde_link(const std::string& path, const sockaddr_un& client,
                          std::unique_ptr<Link>& out);

}  // namespace ipnfs::netdev
