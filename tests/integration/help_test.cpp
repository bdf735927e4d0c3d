// --help and the man pages list everything: every ctl command a live network
// offers, on every policy (plugins included), is in `ipnfs --help` and in
// ipnfs(5); every -o option of --help is in ipnfs(8); the pages lint clean.
#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "mount_fixture.hpp"
#include "test_io.hpp"

namespace ipnfs_it {
namespace {

const std::string kManDir = IPNFS_SOURCE_DIR "/docs/man";

// A man page as a reader sees it: rendered by mandoc, overstrikes removed.
std::string rendered(const std::string& page) {
    Shell sh = run_argv({"mandoc", "-Tascii", "-Owidth=200", kManDir + "/" + page});
    EXPECT_EQ(sh.exit_code(), 0) << "mandoc " << page << ": " << sh.err;
    std::string out;
    for (char c : sh.out) {
        if (c == '\b') {
            if (!out.empty()) out.pop_back();
        } else {
            out += c;
        }
    }
    return out;
}

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(' ');
    auto e = s.find_last_not_of(' ');
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// ctl's help lines ("#   VERB ARGS   HELP"), without the "#".
std::vector<std::string> help_lines(const std::string& ctl_text) {
    std::vector<std::string> out;
    for (const std::string& line : lines_of(ctl_text)) {
        if (line.starts_with("#   ")) out.push_back(line.substr(1));
    }
    return out;
}

// The policies ctl names: "# Write commands here, one per line. Policies: a, b."
std::vector<std::string> policies_of(const std::string& ctl_text) {
    std::smatch m;
    static const std::regex re("Policies: ([^.\n]*)\\.");
    std::vector<std::string> out;
    if (!std::regex_search(ctl_text, m, re)) return out;
    std::string list = m[1];
    static const std::regex name("[A-Za-z0-9_-]+");
    for (auto it = std::sregex_iterator(list.begin(), list.end(), name);
         it != std::sregex_iterator(); ++it) {
        out.push_back(it->str());
    }
    return out;
}

// Whether a man page's definition list has an entry for this help line: an
// entry tag that is how the line starts ("VERB ARGS", then only its help).
bool documented(const std::string& help_line, const std::vector<std::string>& tags) {
    std::string line = trim(help_line);
    for (const std::string& tag : tags) {
        if (line.starts_with(tag) && (line.size() == tag.size() || line[tag.size()] == ' ')) {
            std::string verb = line.substr(0, line.find(' '));
            if (tag == verb || tag.starts_with(verb + " ")) return true;
        }
    }
    return false;
}

class HelpTest : public IpnfsTest {
  protected:
    [[nodiscard]] std::vector<std::string> mount_options() const override {
        return {"plugins=" IPNFS_PLUGIN_DIR};
    }
};

TEST_F(HelpTest, EveryCtlCommandOfEveryPolicyIsInHelpAndInIpnfs5) {
    Shell help = run_argv({IPNFS_BINARY, "--help", "-o", "plugins=" IPNFS_PLUGIN_DIR});
    ASSERT_EQ(help.exit_code(), 0) << help.err;
    std::vector<std::string> tags;
    // A short tag shares its line with the text: "flush  Forget ...".
    for (const std::string& line : lines_of(rendered("ipnfs.5"))) {
        std::string text = trim(line);
        tags.push_back(text);
        if (auto gap = text.find("  "); gap != std::string::npos)
            tags.push_back(text.substr(0, gap));
    }

    std::string net = make_net("lan");
    std::vector<std::string> policies = policies_of(ctl_text(net));
    for (const char* expected : {"group", "hub", "switch", "topic"}) {
        EXPECT_NE(std::find(policies.begin(), policies.end(), expected), policies.end())
            << "ctl does not list policy " << expected << ":\n"
            << ctl_text(net);
    }
    std::set<std::string> verbs;
    for (const std::string& policy : policies) {
        SCOPED_TRACE("policy " + policy);
        ASSERT_EQ(ctl(net, "policy " + policy + "\n"), 0) << last_error_line(ctl_text(net));
        EXPECT_NE(help.out.find(policy + " networks"), std::string::npos)
            << "--help has no section for " << policy;
        for (const std::string& line : help_lines(ctl_text(net))) {
            verbs.insert(trim(line).substr(0, trim(line).find(' ')));
            EXPECT_NE(help.out.find(line), std::string::npos) << "--help does not show ctl's line\n"
                                                              << line;
            EXPECT_TRUE(documented(line, tags)) << "ipnfs(5) has no entry for\n" << line;
        }
    }
    // The network's own verbs, each policy's and the extension's all came by.
    for (const char* verb : {"policy", "mtu", "events", "loopback", "vlan", "flush", "member",
                             "dest", "subscribe", "tap", "ungrab", "cable", "vde", "unvde"}) {
        EXPECT_TRUE(verbs.contains(verb)) << "no ctl help line for " << verb;
    }
}

TEST(HelpPagesTest, EveryMountOptionOfHelpIsInIpnfs8) {
    Shell help = run_argv({IPNFS_BINARY, "--help"});
    ASSERT_EQ(help.exit_code(), 0) << help.err;
    std::string page = rendered("ipnfs.8");
    static const std::regex option("-o ([a-z_]+)=");
    std::set<std::string> names;
    for (auto it = std::sregex_iterator(help.out.begin(), help.out.end(), option);
         it != std::sregex_iterator(); ++it) {
        names.insert((*it)[1]);
    }
    EXPECT_TRUE(names.contains("log_level") && names.contains("root_mode")) << help.out;
    for (const std::string& name : names) {
        EXPECT_NE(page.find(name + "="), std::string::npos)
            << "ipnfs(8) does not describe -o " << name << "=";
    }
}

TEST(HelpPagesTest, ManPagesLintClean) {
    for (const char* tool : {"groff", "mandoc"}) {
        if (run_shell(std::string("command -v ") + tool).exit_code() != 0) {
            IPNFS_SKIP_OR_FAIL(std::string(tool) + " is not installed (tools/deps.sh)");
        }
    }
    for (const char* page : {"ipnfs.8", "ipnfs.5", "ipnfs-cable.1", "ipnfs-top.1"}) {
        SCOPED_TRACE(page);
        const std::string path = kManDir + "/" + page;
        Shell groff = run_argv({"groff", "-man", "-ww", "-z", path});
        EXPECT_EQ(groff.exit_code(), 0);
        EXPECT_EQ(groff.out + groff.err, "");
        Shell mandoc = run_argv({"mandoc", "-Tlint", path});
        EXPECT_EQ(mandoc.exit_code(), 0);
        EXPECT_EQ(mandoc.out + mandoc.err, "");
    }
}

}  // namespace
}  // namespace ipnfs_it
