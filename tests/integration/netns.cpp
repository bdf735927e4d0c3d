#include "netns.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <sstream>

namespace ipnfs_it {

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
    return s;
}

std::string seconds_word(double s) {
    std::ostringstream out;
    out << s;
    return out.str();
}

std::vector<std::string> words_of(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> words;
    std::string w;
    while (in >> w) words.push_back(w);
    return words;
}

// Interfaces of the root namespace whose name starts with `prefix`.
std::vector<std::string> root_links_with_prefix(const std::string& prefix) {
    std::vector<std::string> names;
    Shell sh = root_sh("ip -o link show", 10);
    for (const auto& line : lines_of(sh.out)) {
        auto w = words_of(line);  // "7: NAME[@PEER]: <...> ..."
        if (w.size() < 2) continue;
        std::string name = w[1];
        if (!name.empty() && name.back() == ':') name.pop_back();
        if (auto at = name.find('@'); at != std::string::npos) name.resize(at);
        if (name.rfind(prefix, 0) == 0) names.push_back(name);
    }
    return names;
}

}  // namespace

std::string netns_problem(const std::vector<std::string>& tools) {
    if (geteuid() != 0) return "needs root to make network namespaces and interfaces";
    struct stat st {};
    if (stat("/dev/net/tun", &st) != 0) return "/dev/net/tun does not exist";
    for (const auto& tool : tools) {
        Shell sh = run_shell("command -v " + sq(tool), 5);
        if (sh.exit_code() != 0) return tool + " is not installed (tools/deps.sh installs it)";
    }
    // Once per process: can we make (and delete) a namespace at all?
    static const std::string netns_ok = [] {
        std::string probe = "ipnfs-" + std::to_string(getpid()) + "-probe";
        Shell add = root_sh("ip netns add " + probe, 10);
        if (add.exit_code() != 0) return "ip netns add fails: " + describe(add);
        root_sh("ip netns del " + probe, 10);
        return std::string();
    }();
    return netns_ok;
}

std::string ifname_prefix() {
    return "n" + std::to_string(getpid()) + "-";
}

std::string ifname(const std::string& tag) {
    return ifname_prefix() + tag;
}

Shell root_sh(const std::string& script, double timeout_s) {
    return run_argv({"timeout", "-k", "2", seconds_word(timeout_s), "sh", "-c", script},
                    timeout_s + 5);
}

bool link_exists(const std::string& name) {
    return root_sh("ip link show dev " + sq(name) + " >/dev/null 2>&1", 10).exit_code() == 0;
}

std::string describe(const Shell& sh) {
    std::string text = sh.timed_out ? "timed out" : "exit code " + std::to_string(sh.exit_code());
    if (!sh.out.empty()) text += "\nstdout:\n" + sh.out;
    if (!sh.err.empty()) text += "\nstderr:\n" + sh.err;
    return text;
}

NetNs::NetNs() {
    static std::atomic<int> counter{0};
    name_ = "ipnfs-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    Shell add = root_sh("ip netns add " + name_, 10);
    if (add.exit_code() != 0) {
        error_ = "ip netns add " + name_ + ": " + describe(add);
        return;
    }
    Shell setup =
        sh("ip link set lo up && "
           "{ sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 "
           "2>/dev/null; true; }",
           10);
    if (setup.exit_code() != 0) error_ = "setting up " + name_ + ": " + describe(setup);
}

NetNs::~NetNs() {
    // Whatever still runs in here was started by this test (the name is ours).
    root_sh("ip netns pids " + name_ + " 2>/dev/null | xargs -r kill -9; ip netns del " + name_,
            10);
}

Shell NetNs::sh(const std::string& script, double timeout_s) const {
    return run_argv({"timeout", "-k", "2", seconds_word(timeout_s), "ip", "netns", "exec", name_,
                     "sh", "-c", script},
                    timeout_s + 5);
}

Shell NetNs::adopt(const std::string& iface) const {
    return root_sh("ip link set dev " + sq(iface) + " netns " + name_, 10);
}

Shell NetNs::configure(const std::string& iface, const std::vector<std::string>& cidrs,
                       int mtu) const {
    std::string script = "set -e\n";
    if (mtu > 0) script += "ip link set dev " + sq(iface) + " mtu " + std::to_string(mtu) + "\n";
    script += "ip link set dev " + sq(iface) + " up\n";
    for (const auto& cidr : cidrs) script += "ip addr add " + cidr + " dev " + sq(iface) + "\n";
    return sh(script, 10);
}

std::string NetNs::mac(const std::string& iface) const {
    Shell s = sh("cat /sys/class/net/" + iface + "/address", 10);
    return s.exit_code() == 0 ? trim(s.out) : std::string();
}

Shell NetNs::ping(const std::string& target, int count, double interval,
                  const std::string& extra) const {
    std::string cmd = "ping -n -c " + std::to_string(count) + " -W 2 -i " + seconds_word(interval) +
                      " " + extra + " " + target;
    return sh(cmd, count * interval + 10);
}

VethPair::VethPair(std::string a, std::string b) : a_(std::move(a)), b_(std::move(b)) {
    Shell add = root_sh("ip link add " + sq(a_) + " type veth peer name " + sq(b_), 10);
    if (add.exit_code() != 0) error_ = "ip link add veth: " + describe(add);
}

VethPair::~VethPair() {
    // Deleting either end deletes both; an end moved into a deleted namespace
    // took the pair with it.
    root_sh(
        "ip link del " + sq(a_) + " 2>/dev/null || ip link del " + sq(b_) + " 2>/dev/null; true",
        10);
}

const MacRow* NetStats::mac(const std::string& addr) const {
    for (const auto& m : macs) {
        if (m.mac == addr) return &m;
    }
    return nullptr;
}

NetStats parse_net_stats(const std::string& text) {
    NetStats st;
    st.text = text;
    Stats parsed = parse_stats(text);
    st.totals = parsed.totals;
    st.ports = parsed.rows;
    const ipnfs::stats_text::Table ifaces = parsed.table("iface");
    for (const auto& row : ifaces.rows) {
        IfaceRow r;
        r.name = row.at(0);
        r.kind = row.at(1);
        r.port = static_cast<unsigned>(ifaces.number(row, "port"));
        r.state = row.at(3);
        r.frames_in = ifaces.number(row, "frames_in");
        r.bytes_in = ifaces.number(row, "bytes_in");
        r.frames_out = ifaces.number(row, "frames_out");
        r.bytes_out = ifaces.number(row, "bytes_out");
        r.drops = ifaces.number(row, "drops");
        st.ifaces[r.name] = r;
    }
    st.sw = parsed.counters("switch");
    // "mac ADDR vlan V port P age S"
    for (const auto& w : parsed.lines_of("mac")) {
        if (w.size() < 7 || w[2] != "vlan" || w[4] != "port") continue;
        MacRow m;
        m.mac = w[1];
        m.vlan = static_cast<unsigned>(std::stoul(w[3]));
        m.port = static_cast<unsigned>(std::stoul(w[5]));
        if (w.size() >= 8 && w[6] == "age") m.age = std::stoull(w[7]);
        st.macs.push_back(m);
    }
    return st;
}

std::string iface_word(const std::string& stats_text, const std::string& iface,
                       const std::string& title) {
    ipnfs::stats_text::Table t = parse_stats(stats_text).table("iface");
    const std::vector<std::string>* row = t.row(iface);
    return row == nullptr ? std::string() : t.word(*row, title);
}

std::uint64_t iface_number(const std::string& stats_text, const std::string& iface,
                           const std::string& title) {
    std::string w = iface_word(stats_text, iface, title);
    if (w.empty() || w.find_first_not_of("0123456789") != std::string::npos) {
        ADD_FAILURE() << title << " of " << iface << " is '" << w << "' in:\n" << stats_text;
        return 0;
    }
    return std::stoull(w);
}

LinkCounts link_counts(const std::string& ip_s_out, const std::string& dir) {
    std::istringstream in(ip_s_out);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first != dir + ":") continue;
        if (!std::getline(in, line)) break;
        std::istringstream values(line);
        LinkCounts c;
        std::uint64_t bytes = 0, errors = 0;
        c.ok = static_cast<bool>(values >> bytes >> c.packets >> errors >> c.dropped);
        return c;
    }
    return {};
}

void NetdevTest::SetUp() {
    std::vector<std::string> needed{"ip"};
    for (const auto& t : tools()) needed.push_back(t);
    if (std::string why = netns_problem(needed); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
    IpnfsTest::SetUp();
}

void stop_cleanly(Mount& mount) {
    if (mount.pid() <= 0) return;
    mount.stop();
    std::optional<int> status = mount.wait_exit(0ms);
    std::string log = mount.log();
    if (status && !(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)) {
        ADD_FAILURE() << "the daemon ended with wait status " << *status << " after unmount";
    }
    for (const char* alarm :
         {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
        if (log.find(alarm) != std::string::npos) {
            ADD_FAILURE() << "the daemon's output has '" << alarm << "'";
        }
    }
}

void NetdevTest::TearDown() {
    if (!IsSkipped()) stop_cleanly(mount_);
    IpnfsTest::TearDown();  // the daemon is gone: its TAPs must be too
    if (IsSkipped() || geteuid() != 0) return;
    const std::string prefix = ifname_prefix();
    std::vector<std::string> left;
    eventually(
        [&] {
            left = root_links_with_prefix(prefix);
            return left.empty();
        },
        3s);
    for (const auto& name : left) {
        ADD_FAILURE() << "interface " << name << " is still there after the test and the daemon "
                      << "ended; deleting it";
        root_sh("ip link del " + sq(name) + " 2>/dev/null || ip tuntap del dev " + sq(name) +
                    " mode tap 2>/dev/null; true",
                10);
    }
}

int NetdevTest::tap(const std::string& net, const std::string& name, int port) {
    std::string line = "tap " + name;
    if (port >= 0) line += " " + std::to_string(port);
    return ctl(net, line + "\n");
}

int NetdevTest::grab(const std::string& net, const std::string& iface, int port) {
    std::string line = "grab " + iface;
    if (port >= 0) line += " " + std::to_string(port);
    return ctl(net, line + "\n");
}

std::optional<unsigned> NetdevTest::attached_port(const std::string& net, const std::string& kind,
                                                  const std::string& name) {
    for (const auto& line : lines_of(ctl_text(net))) {
        auto w = words_of(line);
        // "KIND NAME PORT", then maybe settings ("rcvbuf BYTES").
        if (w.size() >= 3 && w[0] == kind && w[1] == name &&
            w[2].find_first_not_of("0123456789") == std::string::npos) {
            return static_cast<unsigned>(std::stoul(w[2]));
        }
    }
    return std::nullopt;
}

std::optional<unsigned> NetdevTest::tap_into(const std::string& net, const std::string& name,
                                             const NetNs& ns, const std::vector<std::string>& cidrs,
                                             int port, int mtu) {
    if (int err = tap(net, name, port); err != 0) {
        ADD_FAILURE() << "tap " << name << " failed: " << std::strerror(err) << "\n"
                      << last_error_line(ctl_text(net));
        return std::nullopt;
    }
    std::optional<unsigned> at = attached_port(net, "tap", name);
    if (!at) {
        ADD_FAILURE() << "ctl shows no 'tap " << name << " PORT' line:\n" << ctl_text(net);
        return std::nullopt;
    }
    if (port >= 0 && *at != static_cast<unsigned>(port)) {
        ADD_FAILURE() << "tap " << name << " asked for port " << port << " but ctl shows " << *at;
    }
    if (Shell s = ns.adopt(name); s.exit_code() != 0) {
        ADD_FAILURE() << "moving " << name << " into " << ns.name() << ": " << describe(s);
        return std::nullopt;
    }
    if (Shell s = ns.configure(name, cidrs, mtu); s.exit_code() != 0) {
        ADD_FAILURE() << "configuring " << name << " in " << ns.name() << ": " << describe(s);
        return std::nullopt;
    }
    return at;
}

NetStats NetdevTest::net_stats(const std::string& net) {
    return parse_net_stats(slurp(net + "/stats"));
}

}  // namespace ipnfs_it
