// A network's VDE endpoint driven by a client written here from the
// protocol (a stream socket to PATH/ctl, a request_v3, a datagram socket
// each way): frames cross byte-exact, a client's port ends with its control
// connection, a bad client is dropped without holding up the next one, and
// the directory follows the network's access and goes with the network.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "bus_test_support.hpp"
#include "netdev/engine.hpp"
#include "netdev/vde_dir.hpp"
#include "netdev/vde_endpoint.hpp"
#include "netdev/vde_protocol.hpp"
#include "netdev_test_support.hpp"

namespace ipnfs::test {
namespace {

namespace fs = std::filesystem;
namespace vde = netdev::vde;

const bus::Caller kAdmin{.net_admin = true};
const bus::Caller kUser{.net_admin = false};

sockaddr_un address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
    return addr;
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

// A VDE client as libvdeplug_vde.c is one: its data socket bound in the
// switch's directory with a restrictive mode, a request on ctl, the reply's
// socket connected to.
class Client {
  public:
    // Connects to DIR/ctl; false if that fails.
    bool dial(const std::string& dir) {
        ctl_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr = address(dir + "/ctl");
        return ::connect(ctl_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    }
    // Sends raw bytes on the control connection.
    bool say(std::span<const std::byte> bytes) {
        return ::send(ctl_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }
    // The whole exchange; the switch's socket path, or "" if it failed.
    std::string plug(const std::string& dir, std::uint32_t type, std::string_view descr,
                     mode_t mode = 0600) {
        if (!dial(dir)) return "";
        data_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        own_ = fmt::format("{}/.{:05}-{:05}", dir, ::getpid(), next_++);
        sockaddr_un mine = address(own_);
        if (::bind(data_.get(), reinterpret_cast<const sockaddr*>(&mine), sizeof mine) != 0) {
            return "";
        }
        ::chmod(own_.c_str(), mode);
        std::vector<std::byte> req(vde::kFixedSize + descr.size());
        std::uint32_t words[3] = {vde::kMagic, vde::kVersion, type};
        std::memcpy(req.data(), words, sizeof words);
        std::memcpy(req.data() + sizeof words, &mine, sizeof mine);
        std::memcpy(req.data() + vde::kFixedSize, descr.data(), descr.size());
        if (!say(req) || !readable(ctl_.get(), 5000)) return "";
        sockaddr_un theirs{};
        if (::recv(ctl_.get(), &theirs, sizeof theirs, 0) != sizeof theirs) return "";
        if (::connect(data_.get(), reinterpret_cast<const sockaddr*>(&theirs), sizeof theirs) !=
            0) {
            return "";
        }
        ::unlink(own_.c_str());
        return theirs.sun_path;
    }
    [[nodiscard]] bool send(std::string_view frame) const {
        return ::send(data_.get(), frame.data(), frame.size(), 0) ==
               static_cast<ssize_t>(frame.size());
    }
    [[nodiscard]] std::optional<std::string> receive(int timeout_ms = 5000) const {
        if (!readable(data_.get(), timeout_ms)) return std::nullopt;
        std::string buf(70000, '\0');
        ssize_t n = ::recv(data_.get(), buf.data(), buf.size(), 0);
        if (n < 0) return std::nullopt;
        buf.resize(static_cast<std::size_t>(n));
        return buf;
    }
    // True once the switch closed the control connection.
    [[nodiscard]] bool closed_by_switch(int timeout_ms = 5000) const {
        char c = 0;
        return readable(ctl_.get(), timeout_ms) && ::recv(ctl_.get(), &c, 1, 0) == 0;
    }
    void hang_up() { ctl_.reset(); }

  private:
    static inline int next_ = 0;
    UniqueFd ctl_, data_;
    std::string own_;
};

class NetdevVde : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "ipnfs-vde-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        tmp_ = tmpl;
        dir_ = tmp_ + "/sw";
        ASSERT_TRUE(IsOk(netdev::VdeDir::open(tmp_, vde_dir_)));
        ASSERT_TRUE(IsOk(bus::Network::create("lan", {}, catalog_, "hub", net_)));
        net_->set_extension(std::make_unique<netdev::VdeEndpoints>(*net_, engine_, vde_dir_));
        net_->set_access({0755, 0, 0});
    }
    void TearDown() override {
        if (net_) net_->hang_up();
        std::error_code ec;
        fs::remove_all(tmp_, ec);
    }

    [[nodiscard]] static bool has_line(std::string_view text, std::string_view start) {
        std::istringstream in{std::string(text)};
        std::string line;
        while (std::getline(in, line)) {
            if (line.starts_with(start)) return true;
        }
        return false;
    }
    // The stats row of the client on `port`, "" if none.
    [[nodiscard]] std::string row(bus::PortId port) const {
        stats_text::Table vde = parse_stats(net_->stats()).table("vde");
        for (std::size_t i = 0; i < vde.rows.size(); ++i) {
            const auto& words = vde.rows[i];
            if (words.size() > 1 && words[0] == dir_ && words[1] == std::to_string(port)) {
                return vde.lines[i];
            }
        }
        return "";
    }
    // The next message for `conn`, waiting up to 5 s; "" if none came.
    std::string next_message(const bus::Connection& conn) const {
        bus::Received got{bus::Outcome::would_block, nullptr};
        bool came = wait_until([&] {
            got = net_->receive(conn, nullptr);
            return got.outcome == bus::Outcome::message;
        });
        return came ? text(got.message) : "";
    }
    // frames_in, bytes_in, frames_out, bytes_out, drops of that row.
    [[nodiscard]] std::vector<std::uint64_t> counters(bus::PortId port) const {
        std::istringstream words(row(port));
        std::string path;
        std::string state;
        unsigned p = 0;
        std::vector<std::uint64_t> out(5);
        words >> path >> p >> state >> out[0] >> out[1] >> out[2] >> out[3] >> out[4];
        return out;
    }
    [[nodiscard]] bool port_free(bus::PortId port) const {
        bus::Connection c;
        if (!net_->connect(port, true, true, c, true).ok()) return false;
        net_->disconnect(c);
        return true;
    }

    netdev::Engine engine_;   // outlives the network, whose end runs on it
    netdev::VdeDir vde_dir_;  // outlives the network, whose endpoints are in it
    policies::Catalog catalog_;
    std::shared_ptr<bus::Network> net_;
    std::string tmp_, dir_;
};

TEST_F(NetdevVde, VdeMakesTheDirectoryAndCtlAndUnvdeRemovesThem) {
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_ + "/", kAdmin)));
    EXPECT_TRUE(fs::is_directory(dir_));
    EXPECT_TRUE(fs::is_socket(dir_ + "/ctl"));
    EXPECT_TRUE(has_line(net_->describe(), "vde " + dir_)) << net_->describe();
    EXPECT_TRUE(has_line(net_->describe(), "#   vde NAME"));
    ASSERT_TRUE(IsOk(net_->control("unvde " + dir_, kAdmin)));
    EXPECT_FALSE(fs::exists(dir_));
    EXPECT_FALSE(has_line(net_->describe(), "vde " + dir_));
}

TEST_F(NetdevVde, FramesCrossBothWaysAndTheStatsRowCountsThem) {
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    Client client;
    std::string theirs = client.plug(dir_, 5U << 8, "vdeplug: test");
    ASSERT_NE(theirs, "");
    EXPECT_TRUE(theirs.starts_with(dir_ + "/005.")) << theirs;
    struct stat st {};
    ASSERT_EQ(::stat(theirs.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600U);
    EXPECT_EQ(st.st_uid, ::geteuid());

    bus::Connection file;
    ASSERT_TRUE(IsOk(net_->connect(1, true, true, file)));
    const std::string in = make_frame(1, 60);
    ASSERT_TRUE(client.send(in));
    EXPECT_EQ(next_message(file), in);
    const std::string out = make_frame(2, 1514);
    ASSERT_TRUE(IsOk(net_->send(file, bytes(out))));
    EXPECT_EQ(client.receive(), out);

    // The counters move just after the frame: wait for them.
    EXPECT_TRUE(wait_until([&] {
        return counters(5) == std::vector<std::uint64_t>{1, 60, 1, 1514, 0};
    })) << net_->stats();
    std::string line = row(5);
    EXPECT_NE(line.find(" running "), std::string::npos) << line;
    EXPECT_NE(line.find("vdeplug: test"), std::string::npos) << line;

    client.hang_up();
    EXPECT_TRUE(wait_until([&] { return row(5).empty(); })) << net_->stats();
    EXPECT_TRUE(wait_until([&] { return !fs::exists(theirs); })) << theirs;
    net_->disconnect(file);
    EXPECT_TRUE(port_free(5));
}

TEST_F(NetdevVde, ATakenPortAskedForGivesTheLowestFreeOne) {
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    bus::Connection holder;
    ASSERT_TRUE(IsOk(net_->connect(0, true, true, holder)));
    Client asks_taken;
    Client asks_port0;
    Client asks_beyond;
    EXPECT_TRUE(asks_taken.plug(dir_, 0U << 8, "any").starts_with(dir_ + "/001."));
    EXPECT_TRUE(asks_port0.plug(dir_, vde::kNewPort0, "port0").starts_with(dir_ + "/002."));
    EXPECT_TRUE(asks_beyond.plug(dir_, 999U << 8, "far").starts_with(dir_ + "/003."));
    net_->disconnect(holder);
}

TEST_F(NetdevVde, ABadClientIsDroppedAndTheNextOneServed) {
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    // Half a request and silence: it holds nothing up.
    Client slow;
    ASSERT_TRUE(slow.dial(dir_));
    std::vector<std::byte> half(8);
    std::uint32_t words[2] = {vde::kMagic, vde::kVersion};
    std::memcpy(half.data(), words, sizeof words);
    ASSERT_TRUE(slow.say(half));

    for (std::uint32_t magic : {0xdeadbeefU, 0U}) {
        Client garbage;
        ASSERT_TRUE(garbage.dial(dir_));
        std::vector<std::byte> junk(16, std::byte{0x5a});
        std::memcpy(junk.data(), &magic, sizeof magic);
        ASSERT_TRUE(garbage.say(junk));
        EXPECT_TRUE(garbage.closed_by_switch()) << std::hex << magic;
    }
    Client good;
    ASSERT_NE(good.plug(dir_, 0, "good"), "");
    EXPECT_TRUE(row(0).find("good") != std::string::npos) << net_->stats();
    EXPECT_FALSE(slow.closed_by_switch(50)) << "a slow client is not timed out";
}

TEST_F(NetdevVde, OneUsersSilentConnectionsAreBoundedSoTheyLockNobodyOut) {
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    std::vector<Client> silent(netdev::VdeEndpoints::kMaxPendingPerUser);
    for (Client& c : silent) ASSERT_TRUE(c.dial(dir_));
    for (Client& c : silent) EXPECT_FALSE(c.closed_by_switch(50));
    // One more from the same user is refused at once, far below the
    // endpoint's own bound, which other users' connections still have.
    Client extra;
    ASSERT_TRUE(extra.dial(dir_));
    EXPECT_TRUE(extra.closed_by_switch());
    static_assert(netdev::VdeEndpoints::kMaxPendingPerUser < netdev::VdeEndpoints::kMaxPending);
    // Once one leaves, the user may try again.
    silent.front().hang_up();
    EXPECT_TRUE(wait_until([&] {
        Client next;
        return next.dial(dir_) && !next.closed_by_switch(100);
    }));
}

TEST_F(NetdevVde, TooShortAndTooLongDatagramsAreCountedDrops) {
    ASSERT_TRUE(IsOk(net_->control("mtu 1514", kAdmin)));
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    Client client;
    ASSERT_NE(client.plug(dir_, 0, "x"), "");
    bus::Connection file;
    ASSERT_TRUE(IsOk(net_->connect(1, true, true, file)));
    EXPECT_TRUE(client.send(std::string(10, 'a')));
    EXPECT_TRUE(client.send(std::string(9000, 'b')));
    EXPECT_TRUE(client.send(""));
    const std::string ok = make_frame(3, 64);
    EXPECT_TRUE(client.send(ok));
    EXPECT_EQ(next_message(file), ok) << "only the good frame arrives";
    EXPECT_TRUE(wait_until([&] {
        // As for a TAP: frames_in counts what was read, the 9000 bytes too.
        return counters(0) == std::vector<std::uint64_t>{2, 9064, 0, 0, 3};
    })) << net_->stats();
    net_->disconnect(file);
}

TEST_F(NetdevVde, MistakesGetTheirErrno) {
    EXPECT_TRUE(FailsWith(net_->control("vde " + dir_, kUser), std::errc::operation_not_permitted));
    EXPECT_TRUE(
        FailsWith(net_->control("unvde " + dir_, kUser), std::errc::operation_not_permitted));
    EXPECT_TRUE(FailsWith(net_->control("vde relative/sw", kAdmin), std::errc::invalid_argument));
    EXPECT_TRUE(FailsWith(net_->control("vde ..", kAdmin), std::errc::invalid_argument));
    // Outside the VDE directory, or below one of its entries: never looked at.
    EXPECT_TRUE(FailsWith(net_->control("vde " + tmp_ + "/no/sw", kAdmin),
                          std::errc::operation_not_permitted));
    EXPECT_TRUE(FailsWith(net_->control("vde /etc", kAdmin), std::errc::operation_not_permitted));
    EXPECT_TRUE(
        FailsWith(net_->control("vde " + tmp_, kAdmin), std::errc::operation_not_permitted));
    UniqueFd file(::open((tmp_ + "/file").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_GE(file.get(), 0);
    EXPECT_TRUE(
        FailsWith(net_->control("vde " + tmp_ + "/file", kAdmin), std::errc::not_a_directory));
    EXPECT_TRUE(FailsWith(net_->control("vde " + std::string(100, 'x'), kAdmin),
                          std::errc::filename_too_long));
    // A symbolic link where the directory would be is not followed.
    ASSERT_EQ(::symlink("/etc", (tmp_ + "/link").c_str()), 0);
    EXPECT_TRUE(FailsWith(net_->control("vde link", kAdmin), std::errc::not_a_directory));
    EXPECT_FALSE(fs::exists("/etc/ctl"));
    EXPECT_TRUE(FailsWith(net_->control("unvde " + dir_, kAdmin), std::errc::no_such_device));
    EXPECT_FALSE(fs::exists(dir_));

    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    EXPECT_TRUE(FailsWith(net_->control("vde " + dir_, kAdmin), std::errc::address_in_use));
    // Another network at the same PATH finds it listening.
    std::shared_ptr<bus::Network> other;
    ASSERT_TRUE(IsOk(bus::Network::create("other", {}, catalog_, "hub", other)));
    other->set_extension(std::make_unique<netdev::VdeEndpoints>(*other, engine_, vde_dir_));
    EXPECT_TRUE(FailsWith(other->control("vde " + dir_, kAdmin), std::errc::address_in_use));
    EXPECT_TRUE(fs::is_socket(dir_ + "/ctl")) << "the refused one removed the first one's ctl";
    other->hang_up();

    net_->hang_up();
    EXPECT_FALSE(fs::exists(dir_)) << "hang_up left the directory";
    EXPECT_TRUE(
        FailsWith(net_->control("vde " + dir_, kAdmin), std::errc::no_such_file_or_directory));
}

TEST_F(NetdevVde, AStaleCtlIsReplacedAndAnExistingDirectoryKept) {
    ASSERT_TRUE(fs::create_directory(dir_));
    ::chmod(dir_.c_str(), 0711);
    {
        UniqueFd dead(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un addr = address(dir_ + "/ctl");
        ASSERT_EQ(::bind(dead.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    }  // closed without listening: a switch that died
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    Client client;
    EXPECT_NE(client.plug(dir_, 0, "after"), "");
    ASSERT_TRUE(IsOk(net_->control("unvde " + dir_, kAdmin)));
    EXPECT_TRUE(client.closed_by_switch()) << "unvde ends its clients";
    EXPECT_TRUE(fs::is_directory(dir_)) << "a directory vde did not make stays";
    EXPECT_FALSE(fs::exists(dir_ + "/ctl"));
    struct stat st {};
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0711U) << "its mode is its owner's";
}

TEST_F(NetdevVde, CtlFollowsTheNetworksAccessAndTheDirectoryStaysTheDaemons) {
    if (::geteuid() != 0) {
        if (in_ci()) FAIL() << "needs root to give files away";
        GTEST_SKIP() << "needs root to give files away";
    }
    ASSERT_TRUE(IsOk(net_->control("vde " + dir_, kAdmin)));
    auto mode_of = [](const std::string& path) {
        struct stat st {};
        return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 07777U;
    };
    EXPECT_EQ(mode_of(dir_), 0755U);
    EXPECT_EQ(mode_of(dir_ + "/ctl"), 0600U) << "only the owner may read and write";
    net_->set_access({0770, 1234, 4321});
    EXPECT_EQ(mode_of(dir_), 0755U) << "writable by root alone, whoever owns the network";
    EXPECT_EQ(mode_of(dir_ + "/ctl"), 0660U);
    struct stat st {};
    ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0U) << "a network owner's directory could be swapped for a link";
    ASSERT_EQ(::stat((dir_ + "/ctl").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1234U);
    EXPECT_EQ(st.st_gid, 4321U);
    net_->set_access({0706, 0, 0});
    EXPECT_EQ(mode_of(dir_ + "/ctl"), 0606U);
    net_->set_access({0500, 0, 0});
    EXPECT_EQ(mode_of(dir_ + "/ctl"), 0U);
}

}  // namespace
}  // namespace ipnfs::test
