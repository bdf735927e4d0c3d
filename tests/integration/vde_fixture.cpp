#include "vde_fixture.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace ipnfs_it {

namespace fs = std::filesystem;

VdeDirTest::VdeDirTest() {
    // Outside the mount, reachable by nobody (the scratch dir may not be).
    std::string tmpl = (fs::temp_directory_path() / "ipnfs-vde-it-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr && chmod(tmpl.c_str(), 0755) == 0) base_ = tmpl;
    sw_ = base_ + "/sw";
}

std::vector<std::string> VdeDirTest::mount_options() const {
    return {"vde_dir=" + base_};
}

void VdeDirTest::SetUp() {
    ASSERT_FALSE(base_.empty()) << "no temp directory: " << std::strerror(errno);
    NetdevTest::SetUp();
}

void VdeDirTest::TearDown() {
    NetdevTest::TearDown();
    std::error_code ec;
    if (!base_.empty()) fs::remove_all(base_, ec);
}

}  // namespace ipnfs_it
