// Policy plugins on a real mount: -o plugins=DIR, "policy NAME" in ctl, the
// example topic plugin used from a shell and from a program, and broken
// plugins refused while the daemon goes on.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "ipnfs_client.hpp"
#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

namespace fsys = std::filesystem;

// The plugins directory: the example topic plugin, two broken ones and one
// built for ABI 4, copied so the test owns what the daemon loads.
class PluginTest : public IpnfsTest {
  protected:
    void SetUp() override {
        dir_ = scratch_dir() + "/plugins";
        fsys::create_directories(dir_);
        fsys::copy_file(fsys::path(IPNFS_PLUGIN_DIR) / "topic.so", dir_ + "/topic.so");
        for (const char* bad : {"bad_abi", "bad_abi4", "bad_no_symbol"}) {
            fsys::copy_file(fsys::path(IPNFS_TEST_PLUGIN_DIR) / (std::string(bad) + ".so"),
                            dir_ + "/" + bad + ".so");
        }
        IpnfsTest::SetUp();
    }
    void TearDown() override {
        IpnfsTest::TearDown();
        std::error_code ec;
        fsys::remove_all(fsys::path(dir_).parent_path(), ec);
    }
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"plugins=" + dir_};
    }
    // A directory that outlives the fixture's own scratch set-up.
    static std::string scratch_dir() {
        std::string templ = (fsys::temp_directory_path() / "ipnfs-plugin-it-XXXXXX").string();
        return ::mkdtemp(templ.data());
    }

    std::string dir_;
};

TEST_F(PluginTest, CtlListsThePluginsAndSelectsOneByName) {
    std::string net = make_net("news");
    std::string text = ctl_text(net);
    EXPECT_NE(text.find("Policies: bad_abi, bad_abi4, bad_no_symbol, group, hub, switch, topic."),
              std::string::npos)
        << text;
    ASSERT_EQ(ctl(net, "policy topic\n"), 0);
    text = ctl_text(net);
    EXPECT_EQ(nth_line(text, 0), "policy topic");
    EXPECT_NE(text.find("#   subscribe PORT PREFIX"), std::string::npos) << text;
}

// A plugin built for ABI 4 still runs, on one host: it cannot say that it
// may span hosts (docs/policy-plugins.md, "Cluster scope").
TEST_F(PluginTest, APluginBuiltForAbi4RunsButNotOnAClusterNetwork) {
    std::string net = make_net("old");
    ASSERT_EQ(ctl(net, "policy bad_abi4\n"), 0) << ctl_text(net);
    EXPECT_EQ(ctl(net, "scope cluster\n"), ENOTSUP);
    EXPECT_TRUE(contains(last_error_line(ctl_text(net)), "cannot run on a cluster network"))
        << ctl_text(net);
    EXPECT_EQ(nth_line(ctl_text(net), 0), "policy bad_abi4");
}

TEST_F(PluginTest, ShellSubscribersGetTheTopicsTheyAskedFor) {
    std::string net = make_net("news");
    ASSERT_EQ(ctl(net,
                  "policy topic\nsubscribe 1 sport/\nsubscribe 2 weather/\n"
                  "subscribe 3 *\n"),
              0);
    // dd reads one message per read(): `count` messages, then it exits.
    std::string out = scratch();
    auto take = [&](int port, int count) {
        std::string n = std::to_string(port);
        return "timeout 5 dd bs=65536 count=" + std::to_string(count) + " status=none if=port" + n +
               " of=" + sq(out + "/" + n) + " & ";
    };
    Shell sh = run_shell("cd " + sq(net) + " || exit 1; " + take(1, 1) + take(2, 1) + take(3, 3) +
                         "until grep -qx 'connected 3' stats; do sleep 0.05; done"
                         " && echo 'sport/ football 2-1' > port0 && echo 'weather/ rain' > port0"
                         " && echo 'markets/ flat' > port0 && wait");
    ASSERT_EQ(sh.exit_code(), 0) << sh.out << sh.err;
    EXPECT_EQ(slurp(scratch() + "/1"), "sport/ football 2-1\n");
    EXPECT_EQ(slurp(scratch() + "/2"), "weather/ rain\n");
    EXPECT_EQ(slurp(scratch() + "/3"), "sport/ football 2-1\nweather/ rain\nmarkets/ flat\n");
    std::string raw = slurp(net + "/stats");
    EXPECT_NE(raw.find("topic matched 3 unmatched 0\n"), std::string::npos) << raw;
}

// One message a non-blocking writer wrote six times (five EAGAINs on a
// lossless network) is matched once: the plugin counts in sent().
TEST_F(PluginTest, TheTopicPluginCountsAMessageRetriedAfterEagainOnce) {
    std::string net = make_net("news");
    ASSERT_EQ(ctl(net, "policy topic\nlossless on\nqueue 1\nsubscribe 1 *\n"), 0)
        << last_error_line(ctl_text(net));
    Fd sub = open_fd(net + "/port1", O_RDONLY);
    Fd w = open_fd(net + "/port0", O_WRONLY | O_NONBLOCK);
    auto write_now = [&](std::string_view m) {
        return write(w.get(), m.data(), m.size()) < 0 ? errno : 0;
    };
    ASSERT_EQ(write_now("first"), 0);
    for (int i = 0; i < 5; ++i) ASSERT_EQ(write_now("second"), EAGAIN);
    ASSERT_EQ(read_one(sub.get()).data, "first");
    ASSERT_EQ(write_now("second"), 0);
    ASSERT_EQ(read_one(sub.get()).data, "second");
    std::string raw = slurp(net + "/stats");
    EXPECT_NE(raw.find("topic matched 2 unmatched 0\n"), std::string::npos) << raw;
}

TEST_F(PluginTest, AProgramSubscribesItsOwnPortWithoutCtlAccess) {
    std::string net = make_net("news");
    ASSERT_EQ(ctl(net, "policy topic\n"), 0);
    Fd reader = open_fd(net + "/port5", O_RDONLY);
    EXPECT_EQ(port_ctl(reader.get(), "subscribe alerts/"), 0);
    EXPECT_EQ(port_ctl(reader.get(), "subscribe"), EINVAL) << "usage is checked";
    EXPECT_EQ(port_ctl(reader.get(), "policy hub"), EPERM) << "not a setting of the port";
    EXPECT_EQ(port_ctl(reader.get(), "no_such_verb x"), EINVAL);
    EXPECT_NE(
        ctl_text(net).find("\nsubscribe 5 alerts/  # set by its holder: reset at its last close\n"),
        std::string::npos);
    Fd writer = open_fd(net + "/port0", O_WRONLY);
    ASSERT_EQ(write_msg(writer.get(), "alerts/ fire").err, 0);
    ASSERT_EQ(write_msg(writer.get(), "other").err, 0);
    Io got = read_one(reader.get());
    EXPECT_EQ(got.data, "alerts/ fire");
    EXPECT_TRUE(drain(reader.get()).empty());
}

TEST_F(PluginTest, ABrokenPluginIsRefusedWithItsReasonAndTheDaemonGoesOn) {
    std::string net = make_net("news");
    EXPECT_EQ(ctl(net, "policy bad_abi\n"), ELIBBAD);
    EXPECT_NE(last_error_line(ctl_text(net)).find("built for policy ABI 99"), std::string::npos)
        << ctl_text(net);
    EXPECT_EQ(ctl(net, "policy bad_no_symbol\n"), ELIBBAD);
    EXPECT_NE(last_error_line(ctl_text(net)).find("exports no ipnfs_policy()"), std::string::npos)
        << ctl_text(net);
    EXPECT_EQ(ctl(net, "policy ../plugins/topic\n"), EINVAL);
    EXPECT_EQ(nth_line(ctl_text(net), 0), "policy hub") << "the network kept its policy";
    EXPECT_NE(mount_.log().find("policy 'bad_abi' refused"), std::string::npos) << "logged too";
    // Still serving: the network works and another takes the good plugin.
    std::string other = make_net("other");
    EXPECT_EQ(ctl(other, "policy topic\n"), 0);
    Fd a = open_fd(net + "/port0", O_RDWR);
    Fd b = open_fd(net + "/port1", O_RDWR);
    ASSERT_EQ(write_msg(a.get(), "hello").err, 0);
    EXPECT_EQ(read_one(b.get()).data, "hello");
}

class PluginDefaultTest : public PluginTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"plugins=" + dir_, "policy=topic"};
    }
};

TEST_F(PluginDefaultTest, APluginCanBeTheMountsDefaultPolicy) {
    EXPECT_EQ(nth_line(ctl_text(make_net("news")), 0), "policy topic");
}

TEST(PluginMount, ABrokenDefaultPolicyStopsTheMount) {
    Mount mount;
    std::string why;
    std::string dir = IPNFS_TEST_PLUGIN_DIR;
    EXPECT_FALSE(mount.start({"plugins=" + dir, "policy=bad_abi"}, why));
    EXPECT_NE(mount.log().find("policy=bad_abi: policy 'bad_abi' refused: built for policy ABI 99"),
              std::string::npos)
        << why << mount.log();
}

TEST(PluginMount, AMissingPluginDirectoryStopsTheMount) {
    Mount mount;
    std::string why;
    EXPECT_FALSE(mount.start({"plugins=/nonexistent/ipnfs-plugins"}, why));
    EXPECT_NE(mount.log().find("plugins=/nonexistent/ipnfs-plugins: not a directory"),
              std::string::npos)
        << why << mount.log();
}

}  // namespace
}  // namespace ipnfs_it
