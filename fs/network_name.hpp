// What may name a network: the rule of mkdir in the tree's root, which the
// config parser applies too, so a config file is refused at its `network`
// line rather than half applied.  Without FUSE types, so the parser and its
// fuzzer link it alone.
#pragma once

#include <string_view>

#include "bus/status.hpp"

namespace ipnfs::fs {

// A network name as mkdir takes it: not empty, "." or "..", at most NAME_MAX
// bytes, no '/', blank or control character (what ctl and a config file can
// carry).  EINVAL or ENAMETOOLONG with a reason.
bus::Status check_network_name(std::string_view name);

}  // namespace ipnfs::fs
