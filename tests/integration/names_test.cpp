// Network names are what ctl lines and config files can carry (issue 16,
// finding 17): one word of at most NAME_MAX printable bytes.  mkdir refuses
// anything else, so `ipnfs --dump` always writes a config that mounts.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using NamesTest = IpnfsTest;

int mkdir_errno(const std::string& path) {
    return mkdir(path.c_str(), 0755) == 0 ? 0 : errno;
}

TEST_F(NamesTest, MkdirRefusesNamesCtlAndConfigCannotCarry) {
    EXPECT_EQ(mkdir_errno(p(std::string(NAME_MAX + 1, 'n'))), ENAMETOOLONG);
    EXPECT_EQ(mkdir_errno(p(std::string(1024, 'n'))), ENAMETOOLONG);
    const std::vector<std::string> bad_names = {"a\nb", "a\tb",  "a b",   "a\rb",
                                                "\x01", "x\x7f", " lead", "trail "};
    for (const std::string& bad : bad_names) {
        SCOPED_TRACE("name of " + std::to_string(bad.size()) + " bytes");
        EXPECT_EQ(mkdir_errno(p(bad)), EINVAL);
    }
    EXPECT_EQ(list_dir(mount_.dir()), std::vector<std::string>{"ipnfs.prom"})
        << "a refused name was made";
    std::string log = mount_.log();
    EXPECT_NE(log.find("uid=0 event=network-create-error: a network name has no blanks"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("uid=0 event=network-create-error: a network name has at most 255 bytes"),
              std::string::npos)
        << log;
}

TEST_F(NamesTest, EveryNameMkdirTakesDumpsToAConfigThatMounts) {
    std::vector<std::string> names = {std::string(NAME_MAX, 'n'),
                                      "a=b",
                                      "q\"uote",
                                      "back\\slash",
                                      "#hash",
                                      "caf\xc3\xa9",
                                      "dots..."};
    for (const std::string& name : names) {
        ASSERT_EQ(mkdir_errno(p(name)), 0) << name;
    }
    Shell dump = run_argv({IPNFS_BINARY, "--dump", mount_.dir()});
    ASSERT_EQ(dump.exit_code(), 0) << dump.err;
    std::string file = scratch() + "/dumped.conf";
    std::ofstream(file) << dump.out;

    Mount second;
    std::string why;
    ASSERT_TRUE(second.start({"config=" + file}, why)) << why << "\n" << dump.out;
    std::vector<std::string> want = names;
    want.emplace_back("ipnfs.prom");
    std::ranges::sort(want);
    EXPECT_EQ(list_dir(second.dir()), want);
    Shell again = run_argv({IPNFS_BINARY, "--dump", second.dir()});
    EXPECT_EQ(again.exit_code(), 0) << again.err;
    EXPECT_EQ(again.out, dump.out);
    second.cleanup();
}

}  // namespace
}  // namespace ipnfs_it
