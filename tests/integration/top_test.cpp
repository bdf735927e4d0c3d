// `ipnfs top` (tools/ipnfs-top), the live view, used as a user would: in a
// terminal (a pane of a tmux server of the test's own), driven by its keys,
// its screen read back with capture-pane; and its --once snapshot, run
// through the daemon binary's `top` word.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"
#include "test_user.hpp"

namespace ipnfs_it {
namespace {

const std::string kTop = IPNFS_SOURCE_DIR "/tools/ipnfs-top";

std::vector<std::string> words_of(const std::string& line) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < line.size()) {
        std::size_t start = line.find_first_not_of(' ', i);
        if (start == std::string::npos) break;
        std::size_t end = line.find(' ', start);
        if (end == std::string::npos) end = line.size();
        words.push_back(line.substr(start, end - start));
        i = end;
    }
    return words;
}

// The words of the screen's first line whose first word is `first` (a
// network's name, "port3"), or none.
std::vector<std::string> row_of(const std::string& screen, const std::string& first) {
    for (const std::string& line : lines_of(screen)) {
        std::vector<std::string> words = words_of(line);
        if (!words.empty() && words[0] == first) return words;
    }
    return {};
}

// The screen's lines whose first word is one of `names`, by that word, top
// to bottom.
std::vector<std::string> order_of(const std::string& screen,
                                  const std::vector<std::string>& names) {
    std::vector<std::string> out;
    for (const std::string& line : lines_of(screen)) {
        std::vector<std::string> words = words_of(line);
        if (!words.empty() && std::ranges::find(names, words[0]) != names.end())
            out.push_back(words[0]);
    }
    return out;
}

// The words after `first` on the screen: true if its line exists and the
// word at `column` (0: the name) satisfies `ok`.
bool column_is(const std::string& screen, const std::string& first, std::size_t column,
               const std::function<bool(const std::string&)>& ok) {
    std::vector<std::string> words = row_of(screen, first);
    return words.size() > column && ok(words[column]);
}

// A rate as the view prints it ("0", "12.5", "1.2k") that is above zero.
bool positive(const std::string& word) {
    return !word.empty() && word != "0" && word != "-" && std::atof(word.c_str()) > 0;
}
bool zero(const std::string& word) {
    return word == "0";
}

// Columns of a network's row, by the words of its line.
constexpr std::size_t kConn = 2, kMsgsIn = 3, kMsgsOut = 4, kQueued = 8;
// A port's row: "port1 1r 0w IN OUT ...": one more word for the readers.
constexpr std::size_t kPortMsgsIn = 3;

// A tmux server on a private socket (-L) with one session, "top", whose
// 120x40 pane runs `command`; its exit status is written to `status_file`
// (tmux's own #{pane_dead_status} is sometimes left empty, and the pane's
// last output lost, when the terminal closes before the process is reaped).
// The server is killed when this goes, whatever the test did.
class Tmux {
  public:
    Tmux(const std::string& command, const std::string& status_file) {
        static std::atomic<int> counter{0};
        socket_ = "ipnfs-top-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
        // The pane starts idle, is told to stay once dead, then runs the
        // command: a command that fails at once still leaves its screen.
        const std::vector<std::vector<std::string>> steps{
            {"new-session", "-d", "-s", "top", "-x", "120", "-y", "40", "sleep 600"},
            {"set-option", "-w", "-t", "top", "remain-on-exit", "on"},
            {"respawn-pane", "-k", "-t", "top", command + "; echo $? > " + status_file}};
        std::vector<std::string> argv{"tmux", "-L", socket_, "-f", "/dev/null"};
        for (const auto& step : steps) {
            if (argv.size() > 5) argv.emplace_back(";");
            argv.insert(argv.end(), step.begin(), step.end());
        }
        Shell sh = run_argv(argv);
        if (sh.exit_code() != 0) {
            error_ = "tmux new-session: " + sh.err;
            return;
        }
        sh = run_argv({"tmux", "-L", socket_, "display-message", "-p", "#{socket_path}"});
        path_ = sh.out.substr(0, sh.out.find('\n'));
    }
    // The server leaves its socket behind.
    ~Tmux() {
        run_argv({"tmux", "-L", socket_, "kill-server"});
        if (!path_.empty()) unlink(path_.c_str());
    }
    Tmux(const Tmux&) = delete;
    Tmux& operator=(const Tmux&) = delete;

    [[nodiscard]] const std::string& error() const { return error_; }

    [[nodiscard]] std::string screen() const {
        return run_argv({"tmux", "-L", socket_, "capture-pane", "-p", "-t", "top"}).out;
    }

    // Polls the screen every 100 ms until `done` holds, for up to `timeout`;
    // `last` is the last screen seen, for the failure message.
    bool wait_for(const std::function<bool(const std::string&)>& done, std::string& last,
                  std::chrono::milliseconds timeout = 10s) const {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            last = screen();
            if (done(last)) return true;
            if (Clock::now() >= deadline) return false;
            std::this_thread::sleep_for(100ms);
        }
    }

    void keys(const std::vector<std::string>& keys) const {
        std::vector<std::string> argv{"tmux", "-L", socket_, "send-keys", "-t", "top"};
        argv.insert(argv.end(), keys.begin(), keys.end());
        Shell sh = run_argv(argv);
        EXPECT_EQ(sh.exit_code(), 0) << "tmux send-keys: " << sh.err;
    }

    void resize(int columns, int lines) const {
        Shell sh = run_argv({"tmux", "-L", socket_, "resize-window", "-t", "top", "-x",
                             std::to_string(columns), "-y", std::to_string(lines)});
        EXPECT_EQ(sh.exit_code(), 0) << "tmux resize-window: " << sh.err;
    }

    // Whether the pane's command has ended.
    [[nodiscard]] bool dead() const {
        Shell sh =
            run_argv({"tmux", "-L", socket_, "display-message", "-p", "-t", "top", "#{pane_dead}"});
        return sh.out.starts_with("1");
    }

  private:
    std::string socket_;
    std::string path_;  // of the socket
    std::string error_;
};

// Messages through a network as fast as a writer and a reader go: port 1
// sends, port 2 takes, until this goes.
class Traffic {
  public:
    explicit Traffic(const std::string& net)
        : reader_(open_fd(net + "/port2", O_RDONLY)), writer_(open_fd(net + "/port1", O_WRONLY)) {
        thread_ = std::thread([this] {
            while (!stop_.load()) {
                if (write_msg(writer_.get(), "twelve bytes", 500).n < 0) break;
                (void)read_one(reader_.get(), 500);
                std::this_thread::sleep_for(2ms);
            }
        });
    }
    ~Traffic() {
        stop_ = true;
        thread_.join();
    }
    Traffic(const Traffic&) = delete;
    Traffic& operator=(const Traffic&) = delete;

  private:
    Fd reader_, writer_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

class TopTest : public IpnfsTest {
  protected:
    // The second user of the permissions test reaches the mount.
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"allow_other"};
    }

    void SetUp() override {
        IpnfsTest::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        if (run_argv({"tmux", "-V"}).exit_code() != 0)
            IPNFS_SKIP_OR_FAIL("tmux is not installed (tools/deps.sh --test)");
    }

    void TearDown() override {
        traffic_.reset();  // while the mount is there
        held_reader_.reset();
        IpnfsTest::TearDown();
    }

    // The view on this test's mount, refreshing twice a second.
    [[nodiscard]] std::string command(const std::string& extra = "") const {
        return "/usr/bin/python3 " + kTop + " " + mount_.dir() + " -d 0.5" + extra;
    }

    // Where the pane's shell writes the view's exit status.
    [[nodiscard]] std::string status_file() const { return scratch() + "/status"; }

    // alpha: idle; held: five messages queued for a reader that does not
    // read; omega: busy (traffic_).
    void make_three() {
        make_net("alpha");
        std::string held = make_net("held");
        held_reader_ = open_fd(held + "/port2", O_RDONLY);
        Fd w = open_fd(held + "/port1", O_WRONLY);
        for (int i = 0; i < 5; ++i) ASSERT_EQ(write_msg(w.get(), "queued").n, 6);
        traffic_ = std::make_unique<Traffic>(make_net("omega"));
    }

    // Waits until the view shows rates: omega busy, alpha idle.
    static void wait_rates(const Tmux& tmux) {
        std::string screen;
        ASSERT_TRUE(tmux.wait_for(
            [](const std::string& s) {
                return column_is(s, "omega", kMsgsIn, positive) &&
                       column_is(s, "alpha", kMsgsIn, zero);
            },
            screen))
            << screen;
    }

    Fd held_reader_;
    std::unique_ptr<Traffic> traffic_;
};

TEST_F(TopTest, ABusyNetworkShowsItsRatesAndAnIdleOneZero) {
    make_three();
    Tmux tmux(command(), status_file());
    ASSERT_EQ(tmux.error(), "");
    std::string screen;
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return column_is(s, "omega", kMsgsIn, positive) &&
                   column_is(s, "omega", kMsgsOut, positive) &&
                   column_is(s, "alpha", kMsgsIn, zero) && column_is(s, "alpha", kMsgsOut, zero);
        },
        screen))
        << screen;
    // The header names the mount, the count and the refresh; the columns are titled.
    EXPECT_TRUE(contains(screen, mount_.dir() + "  3 networks  every 0.5s")) << screen;
    EXPECT_TRUE(contains(screen, "MSG/s IN MSG/s OUT")) << screen;
    // Connected ports of the network's 32; held's five messages queued.
    EXPECT_EQ(row_of(screen, "omega").at(kConn), "2/32") << screen;
    EXPECT_EQ(row_of(screen, "held").at(kQueued), "5") << screen;
    EXPECT_EQ(row_of(screen, "held").at(kMsgsIn), "0") << screen;
}

TEST_F(TopTest, SortKeysOrderTheNetworksAndRReversesThem) {
    make_three();
    Tmux tmux(command(), status_file());
    ASSERT_EQ(tmux.error(), "");
    wait_rates(tmux);
    const std::vector<std::string> nets{"alpha", "held", "omega"};
    // The rows from the top: `order`, or only its first `count`.
    auto expect_order = [&](const std::string& label, const std::vector<std::string>& order,
                            std::size_t count = 3) {
        std::string screen;
        EXPECT_TRUE(tmux.wait_for(
            [&](const std::string& s) {
                std::vector<std::string> shown = order_of(s, nets);
                return contains(s, "sort: " + label) && shown.size() == order.size() &&
                       std::equal(order.begin(), order.begin() + count, shown.begin());
            },
            screen))
            << "sort: " << label << "\n"
            << screen;
    };
    // The default: messages in per second, highest first (ties by name).
    expect_order("MSG/s IN (highest first)", {"omega", "alpha", "held"});
    tmux.keys({"r"});
    expect_order("MSG/s IN (lowest first)", {"alpha", "held", "omega"});
    tmux.keys({"r", "u"});
    // held's five first; omega's queue may hold a message for an instant.
    expect_order("QUEUED (highest first)", {"held", "alpha", "omega"}, 1);
    tmux.keys({"n"});
    expect_order("NETWORK (a-z)", {"alpha", "held", "omega"});
    tmux.keys({"r"});
    expect_order("NETWORK (z-a)", {"omega", "held", "alpha"});
    tmux.keys({"r", "o"});
    expect_order("MSG/s OUT (highest first)", {"omega", "alpha", "held"});
    // < and > walk the columns: from out, < is in.
    tmux.keys({"<"});
    expect_order("MSG/s IN (highest first)", {"omega", "alpha", "held"});
}

TEST_F(TopTest, EnterPlusAndMinusShowAndHideTheSelectedNetworksPorts) {
    make_three();
    Tmux tmux(command(), status_file());
    ASSERT_EQ(tmux.error(), "");
    wait_rates(tmux);
    std::string screen;
    // Sorted by name, End selects the last network, omega; Enter shows its
    // ports, one row each, under it: 1 sends, 2 takes.
    tmux.keys({"n", "End", "Enter"});
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return column_is(s, "port1", kPortMsgsIn, positive) &&
                   column_is(s, "port2", kPortMsgsIn, zero);
        },
        screen))
        << screen;
    EXPECT_EQ(order_of(screen, {"alpha", "held", "omega", "port1", "port2"}),
              (std::vector<std::string>{"alpha", "held", "omega", "port1", "port2"}))
        << screen;
    EXPECT_EQ(row_of(screen, "port1").at(1), "0r") << screen;
    EXPECT_EQ(row_of(screen, "port2").at(1), "1r") << screen;
    tmux.keys({"-"});
    ASSERT_TRUE(
        tmux.wait_for([](const std::string& s) { return row_of(s, "port1").empty(); }, screen))
        << screen;
    // Up twice: alpha; + shows its ports: none in use, so no rows.
    tmux.keys({"Up", "k", "+"});
    // a: the ports of every network: held's and omega's, in name order.
    tmux.keys({"a"});
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return order_of(s, {"alpha", "held", "omega", "port1", "port2"}) ==
                   std::vector<std::string>{"alpha", "held",  "port1", "port2",
                                            "omega", "port1", "port2"};
        },
        screen))
        << screen;
}

TEST_F(TopTest, HelpResizeAndQuit) {
    make_three();
    Tmux tmux(command(), status_file());
    ASSERT_EQ(tmux.error(), "");
    wait_rates(tmux);
    std::string screen;
    tmux.keys({"h"});
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) { return contains(s, "ipnfs top: keys") && contains(s, "quit"); },
        screen))
        << screen;
    tmux.keys({"x"});  // any key closes the help
    ASSERT_TRUE(
        tmux.wait_for([](const std::string& s) { return !row_of(s, "omega").empty(); }, screen))
        << screen;
    // A terminal smaller than a row: what fits, and the view goes on.
    tmux.resize(30, 4);
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return lines_of(s).size() <= 4 && contains(s, "ipnfs top") && contains(s, "NETWORK");
        },
        screen))
        << screen;
    tmux.resize(120, 40);
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) { return column_is(s, "omega", kMsgsIn, positive); }, screen))
        << screen;
    EXPECT_FALSE(tmux.dead());
    tmux.keys({"q"});
    EXPECT_TRUE(eventually([&] { return read_whole(status_file()) == "0\n"; }, 5s))
        << "status: " << read_whole(status_file()) << "\n"
        << tmux.screen();
    EXPECT_TRUE(eventually([&] { return tmux.dead(); }, 5s));
}

TEST_F(TopTest, NetworksMadeAndRemovedWhileItRunsComeAndGo) {
    make_net("alpha");
    Tmux tmux(command(" -s name"), status_file());
    ASSERT_EQ(tmux.error(), "");
    std::string screen;
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) { return column_is(s, "alpha", kMsgsIn, zero); }, screen))
        << screen;
    make_net("beta");
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return contains(s, "2 networks") && column_is(s, "beta", kMsgsIn, zero);
        },
        screen))
        << screen;
    ASSERT_EQ(rmdir(p("alpha").c_str()), 0) << std::strerror(errno);
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return contains(s, "  1 network  ") && row_of(s, "alpha").empty();
        },
        screen))
        << screen;
    EXPECT_FALSE(tmux.dead()) << screen;
}

// A network root makes 0700 while a second user watches: its stats are
// EACCES for him, the view says so on its row and goes on with the others.
TEST_F(TopTest, ANetworkTheUserMayNotReadIsShownSoAndTheViewGoesOn) {
    TestUser user;
    if (!user.ok()) IPNFS_SKIP_OR_FAIL(user.error());
    traffic_ = std::make_unique<Traffic>(make_net("omega"));
    Tmux tmux("setpriv --reuid=" + std::to_string(user.uid()) +
                  " --regid=" + std::to_string(user.gid()) + " --clear-groups -- " + command(),
              status_file());
    ASSERT_EQ(tmux.error(), "");
    std::string screen;
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) { return column_is(s, "omega", kMsgsIn, positive); }, screen))
        << screen;
    make_net("secret", 0700);
    ASSERT_TRUE(tmux.wait_for(
        [](const std::string& s) {
            return contains(s, "secret") && contains(s, "not readable: permission denied (EACCES)");
        },
        screen))
        << screen;
    // Still running, still counting omega's traffic, refresh after refresh.
    std::this_thread::sleep_for(1200ms);
    screen = tmux.screen();
    EXPECT_FALSE(tmux.dead()) << screen;
    EXPECT_TRUE(column_is(screen, "omega", kMsgsIn, positive)) << screen;
    EXPECT_TRUE(contains(screen, "2 networks")) << screen;
}

// `ipnfs top --once`: the daemon binary runs ipnfs-top (next to it in the
// build tree), which prints one snapshot whose rates span one interval.
TEST_F(TopTest, IpnfsTopOncePrintsOneSnapshotWithEveryPort) {
    make_three();
    Shell sh = run_argv({IPNFS_BINARY, "top", mount_.dir(), "--once", "-d", "0.5"});
    ASSERT_EQ(sh.exit_code(), 0) << sh.out << sh.err;
    EXPECT_TRUE(contains(sh.out, "ipnfs top: " + mount_.dir() + ", 3 networks, rates over 0."))
        << sh.out;
    EXPECT_TRUE(column_is(sh.out, "omega", kMsgsIn, positive)) << sh.out;
    EXPECT_TRUE(column_is(sh.out, "alpha", kMsgsIn, zero)) << sh.out;
    // Every network's ports: held's two and omega's two.
    EXPECT_EQ(
        order_of(sh.out, {"alpha", "held", "omega", "port1", "port2"}),
        (std::vector<std::string>{"omega", "port1", "port2", "alpha", "held", "port1", "port2"}))
        << sh.out;
    // -n: these networks only; one that does not exist says so.
    sh = run_argv(
        {IPNFS_BINARY, "top", mount_.dir(), "-b", "-d", "0.2", "-n", "alpha", "-n", "nosuch"});
    ASSERT_EQ(sh.exit_code(), 0) << sh.out << sh.err;
    EXPECT_FALSE(row_of(sh.out, "alpha").empty()) << sh.out;
    EXPECT_TRUE(row_of(sh.out, "omega").empty()) << sh.out;
    EXPECT_TRUE(contains(sh.out, "nosuch") && contains(sh.out, "no such network")) << sh.out;
    // A mount point that is not there: a message and status 1, no traceback.
    sh = run_argv({IPNFS_BINARY, "top", mount_.dir() + "/nothing", "--once"});
    EXPECT_EQ(sh.exit_code(), 1) << sh.out << sh.err;
    EXPECT_TRUE(contains(sh.err, "No such file or directory")) << sh.err;
    EXPECT_FALSE(contains(sh.err, "Traceback")) << sh.err;
    // --help names it.
    sh = run_argv({IPNFS_BINARY, "--help"});
    EXPECT_TRUE(contains(sh.out, "top [MOUNT]")) << sh.out;
}

}  // namespace
}  // namespace ipnfs_it
