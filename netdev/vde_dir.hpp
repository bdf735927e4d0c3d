// The directory VDE endpoints live in (mount option vde_dir, default
// /run/ipnfs): root's, chosen by root, opened once at start and held, so
// that `vde NAME` makes VDE_DIR/NAME with mkdirat on that descriptor and no
// path a user names is ever looked up by the daemon (not in the mount
// itself, not in any other FUSE filesystem, not through a symbolic link).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "bus/status.hpp"
#include "netdev/unique_fd.hpp"

namespace ipnfs::netdev {

class VdeDir {
  public:
    static constexpr std::string_view kDefault = "/run/ipnfs";
    // Endpoint paths, socket names included, fit in sun_path: the longest
    // name the daemon binds in one is "/65535.4294967295" (17 bytes).
    static constexpr std::size_t kMaxEndpointPath = 107 - 17;

    // None: every `vde` is refused (a throwaway network for --help).
    VdeDir() = default;

    // Opens absolute `given`, making it (mode 0755) if it is missing.
    // Refused: a relative path, one on a FUSE filesystem, a symbolic link,
    // not a directory, not owned by the daemon's uid, writable by group or
    // others (a user could plant NAME there first), too long for endpoints.
    static bus::Status open(std::string_view given, VdeDir& out);

    // Why there is none, for `vde`'s refusal (the default could not be used).
    void set_off(std::string why) { why_off_ = std::move(why); }

    [[nodiscard]] bool ok() const { return fd_.ok(); }
    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& path() const { return path_; }

    // The endpoint's NAME in what `vde`/`unvde` got: NAME itself, or an
    // absolute path that is VDE_DIR/NAME.  NAME is one printable component,
    // not "." or "..", short enough for VDE's socket names.
    bus::Status endpoint_name(std::string_view given, std::string& name) const;

  private:
    std::string path_;
    UniqueFd fd_;
    std::string why_off_;
};

}  // namespace ipnfs::netdev
