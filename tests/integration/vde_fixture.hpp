// A mounted daemon whose VDE directory (-o vde_dir) is a temp directory of
// the test's own, made before the mount (the daemon opens it at start) and
// removed after: tests run side by side without sharing /run/ipnfs.
#pragma once

#include <string>
#include <vector>

#include "netns.hpp"

namespace ipnfs_it {

class VdeDirTest : public NetdevTest {
  protected:
    VdeDirTest();
    void SetUp() override;
    void TearDown() override;
    [[nodiscard]] std::vector<std::string> mount_options() const override;

    std::string base_;  // the VDE directory, root's, mode 0755
    std::string sw_;    // base_/sw: the endpoint most tests make
};

}  // namespace ipnfs_it
