// The config file's format (config/config.hpp): what a file means, which lines
// are refused and where, and that a rendered config reads back the same.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <string>

#include "fs/network_name.hpp"

namespace ipnfs::config {
namespace {

Config parsed(std::string_view text) {
    Config config;
    Error error;
    EXPECT_TRUE(parse(text, config, error)) << error.line << ": " << error.reason;
    return config;
}

Error refused(std::string_view text) {
    Config config;
    Error error;
    EXPECT_FALSE(parse(text, config, error)) << "accepted:\n" << text;
    return error;
}

TEST(ConfigParse, SectionsHoldTheirCtlLinesInOrder) {
    Config c = parsed(
        "# networks\n"
        "\n"
        "network lan\n"
        "policy switch\n"
        "   mtu 1514  \n"
        "  # a comment after blanks\n"
        "tap tap0 0\n"
        "cable wan 1 0\n"
        "network wan\n"
        "lossless on\n");
    ASSERT_EQ(c.networks.size(), 2U);
    const Network& lan = c.networks[0];
    EXPECT_EQ(lan.name, "lan");
    EXPECT_EQ(lan.line, 3U);
    ASSERT_EQ(lan.commands.size(), 4U);
    EXPECT_EQ(lan.commands[0].text, "policy switch");
    EXPECT_EQ(lan.commands[1].text, "mtu 1514");
    EXPECT_EQ(lan.commands[1].line, 5U);
    EXPECT_EQ(lan.commands[3].text, "cable wan 1 0");
    EXPECT_TRUE(is_cable(lan.commands[3]));
    EXPECT_FALSE(is_cable(lan.commands[2]));
    EXPECT_EQ(c.networks[1].name, "wan");
    ASSERT_EQ(c.networks[1].commands.size(), 1U);
    EXPECT_EQ(c.networks[1].commands[0].text, "lossless on");
}

TEST(ConfigParse, DirectoryAttributesByNameOrNumber) {
    Config c = parsed(
        "network lan\nmode 0770\nowner root\ngroup root\n"
        "network wan\nmode 640\nowner 4321\ngroup 8765\n"
        "network dmz\n");
    ASSERT_EQ(c.networks.size(), 3U);
    EXPECT_EQ(c.networks[0].mode, 0770U);
    EXPECT_EQ(c.networks[0].owner, 0U);
    EXPECT_EQ(c.networks[0].group, 0U);
    EXPECT_EQ(c.networks[1].mode, 0640U);
    EXPECT_EQ(c.networks[1].owner, 4321U);
    EXPECT_EQ(c.networks[1].group, 8765U);
    EXPECT_FALSE(c.networks[2].mode.has_value());  // the defaults apply at mount
    EXPECT_FALSE(c.networks[2].owner.has_value());
    EXPECT_FALSE(c.networks[2].group.has_value());
    EXPECT_TRUE(c.networks[2].commands.empty());
}

TEST(ConfigParse, FileAttributeLinesNameTheFile) {
    Config c = parsed("network lan\nmode port3 0600\nowner port3 root\ngroup ctl 77\n");
    const Network& lan = c.networks.at(0);
    EXPECT_FALSE(lan.mode.has_value());
    ASSERT_EQ(lan.files.size(), 3U);
    EXPECT_EQ(lan.files[0], (FileSetting{2, "port3", FileAttr::mode, 0600}));
    EXPECT_EQ(lan.files[1], (FileSetting{3, "port3", FileAttr::owner, 0}));
    EXPECT_EQ(lan.files[2], (FileSetting{4, "ctl", FileAttr::group, 77}));
    EXPECT_EQ(lan.files[2].line, 4U);
    EXPECT_TRUE(lan.commands.empty());
}

TEST(ConfigParse, ErrorsNameTheirLine) {
    Error e = refused("\n# nothing yet\npolicy switch\nnetwork lan\n");
    EXPECT_EQ(e.line, 3U);
    EXPECT_NE(e.reason.find("before any 'network NAME' line"), std::string::npos) << e.reason;

    e = refused("network lan\nmode rwx\n");
    EXPECT_EQ(e.line, 2U);
    EXPECT_NE(e.reason.find("octal"), std::string::npos) << e.reason;
    EXPECT_EQ(refused("network lan\nmode 17777\n").line, 2U);
    EXPECT_EQ(refused("network lan\nmode port1 9\n").line, 2U);

    e = refused("network lan\npolicy hub\nowner no-such-user-ipnfs\n");
    EXPECT_EQ(e.line, 3U);
    EXPECT_EQ(e.reason, "no such user: no-such-user-ipnfs");
    e = refused("network lan\ngroup port2 no-such-group-ipnfs\n");
    EXPECT_EQ(e.line, 2U);
    EXPECT_EQ(e.reason, "no such group: no-such-group-ipnfs");

    e = refused("network lan\n\nnetwork wan\nnetwork lan\n");
    EXPECT_EQ(e.line, 4U);
    EXPECT_EQ(e.reason, "network lan exists (from line 1)");

    e = refused("network lan\nmode 0700\nmode 0755\n");
    EXPECT_EQ(e.line, 3U);
    EXPECT_NE(e.reason.find("twice"), std::string::npos) << e.reason;

    EXPECT_EQ(refused("network\n").line, 1U);
    EXPECT_EQ(refused("network a b\n").line, 1U);
    EXPECT_EQ(refused("network lan\nmode a b c\n").line, 2U);
}

TEST(ConfigParse, NetworkNamesFollowMkdir) {
    EXPECT_TRUE(fs::check_network_name("lan-2.x").ok());
    EXPECT_EQ(fs::check_network_name(".").code, std::errc::invalid_argument);
    EXPECT_EQ(fs::check_network_name("..").code, std::errc::invalid_argument);
    EXPECT_EQ(fs::check_network_name("a/b").code, std::errc::invalid_argument);
    EXPECT_EQ(fs::check_network_name(std::string(256, 'n')).code, std::errc::filename_too_long);
    EXPECT_TRUE(fs::check_network_name(std::string(255, 'n')).ok());
    Error e = refused("network a/b\n");
    EXPECT_EQ(e.line, 1U);
    EXPECT_NE(e.reason.find("'/'"), std::string::npos) << e.reason;
}

TEST(ConfigRender, ReadsBackTheSame) {
    Config c;
    Network lan;
    lan.name = "lan";
    lan.mode = 0770;
    lan.owner = 0;
    lan.group = 4242;  // a number with no group name stays a number
    lan.commands = {{0, "policy switch"}, {0, "ports 8"}, {0, "cable wan 1 0"}};
    lan.files = {{0, "port3", FileAttr::mode, 0600}, {0, "port3", FileAttr::owner, 4343}};
    Network wan;
    wan.name = "wan";
    wan.commands = {{0, "lossless on"}};
    c.networks = {lan, wan};

    std::string text;
    ASSERT_TRUE(render(c, text).ok());
    EXPECT_EQ(text,
              "network lan\nmode 0770\nowner root\ngroup 4242\npolicy switch\nports 8\n"
              "cable wan 1 0\nmode port3 0600\nowner port3 4343\n"
              "\n"
              "network wan\nlossless on\n");
    EXPECT_EQ(parsed(text), c);
    std::string again;
    ASSERT_TRUE(render(parsed(text), again).ok());
    EXPECT_EQ(again, text);
}

TEST(ConfigRender, RefusesANameItCannotWrite) {
    Config c;
    c.networks.push_back({});
    c.networks[0].name = "two words";
    std::string text;
    EXPECT_EQ(render(c, text).code, std::errc::invalid_argument);
}

TEST(ConfigRender, EmptyConfigIsEmptyText) {
    std::string text = "stale";
    ASSERT_TRUE(render(Config{}, text).ok());
    EXPECT_EQ(text, "");
    EXPECT_EQ(parsed(""), Config{});
}

}  // namespace
}  // namespace ipnfs::config
