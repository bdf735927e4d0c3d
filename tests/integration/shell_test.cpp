// The filesystem from a real shell: cat, echo, timeout, mount(8), fstab.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

using ShellTest = IpnfsTest;

std::string file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Shell snippet: wait (at most ~5 s) until the network's stats show N connected ports.
std::string wait_connected(const std::string& net, int n) {
    return "i=0; until grep -qx 'connected " + std::to_string(n) + "' " + sq(net + "/stats") +
           "; do i=$((i+1)); if [ $i -gt 500 ]; then echo 'readers never connected'; exit 3; "
           "fi; sleep 0.01; done\n";
}

TEST_F(ShellTest, ReadmeScenarioCatOnePortEchoIntoAnother) {
    std::string net = make_net("lan");
    std::string out1 = scratch() + "/out1", out2 = scratch() + "/out2";
    std::string script = "cd " + sq(net) + " || exit 2\n" + "cat port1 > " + sq(out1) +
                         " & c1=$!\n" + "cat port2 > " + sq(out2) + " & c2=$!\n" +
                         wait_connected(net, 2) +
                         "echo hello > port2 || exit 4\n"
                         "i=0; until [ -s " +
                         sq(out1) +
                         " ] || [ $i -gt 300 ]; do "
                         "i=$((i+1)); sleep 0.01; done\n"
                         "sleep 0.3\n"
                         "kill $c1 $c2\n"
                         "wait\n"
                         "echo done\n";
    Shell sh = run_shell(script, 15);
    EXPECT_FALSE(sh.timed_out);
    EXPECT_EQ(sh.out, "done\n") << sh.err;
    EXPECT_EQ(file_text(out1), "hello\n") << "port1's reader must get the line exactly once";
    EXPECT_EQ(file_text(out2), "") << "port2's own reader must get nothing";
}

TEST_F(ShellTest, CatStatsAndCtlWork) {
    std::string net = make_net("lan");
    Shell sh = run_shell("cat " + sq(net + "/stats") + " && cat " + sq(net + "/ctl"));
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_EQ(sh.out.rfind("network lan\npolicy hub\nports 32\n", 0), 0u) << sh.out;
    EXPECT_NE(sh.out.find("\nparked_senders 0\nevent_readers 0\ncapture_readers 0\ncaptured "
                          "0\ncapture_drops 0\nheld_bytes 0\n"),
              std::string::npos)
        << sh.out;
    EXPECT_NE(sh.out.find("\npolicy hub\nports 32\nmtu 1514\nqueue 64\nlossless off\npool "
                          "1024\nholdtime 5000\n#"),
              std::string::npos)
        << sh.out;
}

TEST_F(ShellTest, EchoIntoCtlRunsACommand) {
    std::string net = make_net("lan");
    Shell sh =
        run_shell("echo 'mtu 9000' > " + sq(net + "/ctl") + " && grep '^mtu' " + sq(net + "/ctl"));
    EXPECT_EQ(sh.exit_code(), 0) << sh.err;
    EXPECT_EQ(sh.out, "mtu 9000\n");

    Shell bad = run_shell("echo 'mtu lots' > " + sq(net + "/ctl"));
    EXPECT_NE(bad.exit_code(), 0) << "a rejected command must fail the shell's write";
    Shell err = run_shell("grep '^# last error' " + sq(net + "/ctl"));
    EXPECT_EQ(err.out.rfind("# last error: mtu lots: ", 0), 0u) << err.out;
}

TEST_F(ShellTest, TimeoutWithSigintEndsABlockedCatPromptly) {
    std::string net = make_net("lan");
    Shell sh = run_shell("timeout -s INT 1 cat " + sq(net + "/port1") + "; echo $?", 10);
    EXPECT_FALSE(sh.timed_out);
    EXPECT_EQ(sh.out, "124\n") << sh.err;
    EXPECT_LT(sh.seconds, 3.0) << "cat did not end soon after SIGINT";
    EXPECT_EQ(stats(net).total("connected"), 0u);
}

TEST_F(ShellTest, BlockedCatExitsZeroWhenTheNetworkIsRemoved) {
    std::string net = make_net("lan");
    std::string script = "cat " + sq(net + "/port1") + " & c=$!\n" + wait_connected(net, 1) +
                         "sleep 0.2\n"
                         "rmdir " +
                         sq(net) +
                         " || exit 4\n"
                         "wait $c; echo \"cat exit $?\"\n";
    Shell sh = run_shell(script, 10);
    EXPECT_FALSE(sh.timed_out) << "cat did not end after rmdir";
    EXPECT_EQ(sh.out, "cat exit 0\n") << sh.err;
    EXPECT_LT(sh.seconds, 3.0);
}

}  // namespace
}  // namespace ipnfs_it
