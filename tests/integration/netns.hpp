// Kernel networking for the netdev integration tests: network namespaces and
// veth pairs that clean up after themselves, commands run inside a namespace
// with ip(8) under timeout(1), and a fixture that checks the machine can do
// all this (root, ip, netns, /dev/net/tun) and that nothing is left behind.
// Like the rest of the integration tests it only drives the daemon from
// outside: ctl, stats, port files, and the interfaces the daemon makes.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {

// Empty if this process may make namespaces and interfaces and drive them
// with `tools` (looked up on PATH), else why not.
std::string netns_problem(const std::vector<std::string>& tools);

// A kernel interface name for this test process, "n<pid>-<tag>": unique
// among tests running at once, at most 15 bytes for a tag of up to 6.
std::string ifname(const std::string& tag);
// The prefix every ifname() of this process starts with.
std::string ifname_prefix();

// sh -c SCRIPT in the test's (root) namespace under `timeout -k 2 T`.
Shell root_sh(const std::string& script, double timeout_s = 20.0);
// True if an interface of that name exists in the root namespace.
bool link_exists(const std::string& name);
// What a failed command said, for assertion messages.
std::string describe(const Shell& sh);

// A network namespace "ipnfs-<pid>-<n>" with loopback up and IPv6 off (so the
// only traffic is what a test makes).  The destructor kills whatever still
// runs inside it and deletes it, and with it every interface it holds (a TAP
// moved here included).
class NetNs {
  public:
    NetNs();
    ~NetNs();
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;

    [[nodiscard]] bool ok() const { return error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    // "ip netns exec NAME ": put in front of a command in a root script.
    [[nodiscard]] std::string exec() const { return "ip netns exec " + name_ + " "; }
    // nsenter(1) into this network namespace only (`ip netns exec` also
    // unshares the mount namespace, which would hide a FUSE mount made there).
    [[nodiscard]] std::vector<std::string> enter() const {
        return {"nsenter", "--net=/run/netns/" + name_};
    }

    // sh -c SCRIPT inside the namespace, under `timeout -k 2 T`.
    [[nodiscard]] Shell sh(const std::string& script, double timeout_s = 20.0) const;
    // ip link set IFACE netns NAME (from the root namespace).
    [[nodiscard]] Shell adopt(const std::string& iface) const;
    // Inside: optionally set the MTU, bring IFACE up, add each address (CIDR).
    [[nodiscard]] Shell configure(const std::string& iface, const std::vector<std::string>& cidrs,
                                  int mtu = 0) const;
    // Inside: the MAC address of IFACE as /sys shows it, "" if unknown.
    [[nodiscard]] std::string mac(const std::string& iface) const;
    // Inside: ping -c COUNT -W 2 -i INTERVAL [EXTRA] TARGET.
    [[nodiscard]] Shell ping(const std::string& target, int count = 3, double interval = 0.2,
                             const std::string& extra = "") const;

  private:
    std::string name_;
    std::string error_;
};

// A veth pair made in the root namespace.  The destructor deletes it (both
// ends go) wherever its ends are, unless it is gone already.
class VethPair {
  public:
    VethPair(std::string a, std::string b);
    ~VethPair();
    VethPair(const VethPair&) = delete;
    VethPair& operator=(const VethPair&) = delete;

    [[nodiscard]] bool ok() const { return error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] const std::string& a() const { return a_; }
    [[nodiscard]] const std::string& b() const { return b_; }

  private:
    std::string a_, b_, error_;
};

// stats of a network with kernel interfaces and the switch: the general
// lines, the port table, the iface table, the switch line and its MAC table.
struct IfaceRow {
    std::string name, kind, state;
    unsigned port = 0;
    std::uint64_t frames_in = 0, bytes_in = 0, frames_out = 0, bytes_out = 0, drops = 0;
};
struct MacRow {
    std::string mac;
    unsigned vlan = 0, port = 0;
    std::uint64_t age = 0;
};
struct NetStats {
    std::string text;
    std::map<std::string, std::string> totals;  // "network" -> NAME, ...
    std::map<unsigned, PortRow> ports;
    std::map<std::string, IfaceRow> ifaces;
    std::map<std::string, std::uint64_t> sw;  // the "switch" line: mac_entries -> N, ...
    std::vector<MacRow> macs;
    [[nodiscard]] const MacRow* mac(const std::string& addr) const;
};
NetStats parse_net_stats(const std::string& text);
// One value of IFACE's row in the iface table of a stats text as printed
// ("-" included); "" if there is no such row.
std::string iface_word(const std::string& stats_text, const std::string& iface,
                       const std::string& title);
// The same value as a number; a word that is not one is reported
// (ADD_FAILURE) and gives 0.
std::uint64_t iface_number(const std::string& stats_text, const std::string& iface,
                           const std::string& title);

// The RX (or TX) "packets" and "dropped" of `ip -s link show` output: the
// line after the one that starts with "RX:" (or "TX:"), whose titles are
// "bytes packets errors dropped ...".
struct LinkCounts {
    std::uint64_t packets = 0, dropped = 0;
    bool ok = false;
};
LinkCounts link_counts(const std::string& ip_s_out, const std::string& dir);

// Unmounts and reaps the daemon (if it was started), then reports
// (ADD_FAILURE) an exit other than a clean 0 and any sanitizer alarm in its
// output.
void stop_cleanly(Mount& mount);

// A mounted daemon plus what kernel networking needs.  Tests name their
// interfaces with ifname(); after the daemon is gone, none may be left in
// the root namespace (the daemon's TAPs go with it; a leftover is reported
// and removed).
class NetdevTest : public IpnfsTest {
  protected:
    void SetUp() override;
    void TearDown() override;
    // Tools this suite needs besides ip(8).
    virtual std::vector<std::string> tools() const { return {"ping", "timeout"}; }

    // "tap NAME [PORT]" / "grab IFACE [PORT]" in ctl: 0 or the errno.
    int tap(const std::string& net, const std::string& name, int port = -1);
    int grab(const std::string& net, const std::string& iface, int port = -1);
    // The port of ctl's "KIND NAME PORT" line (KIND tap or grab), if any.
    std::optional<unsigned> attached_port(const std::string& net, const std::string& kind,
                                          const std::string& name);
    // tap NAME [PORT] in NET, moved into NS, MTU set, up, with the addresses;
    // its port, or nullopt after reporting (ADD_FAILURE) what went wrong.
    std::optional<unsigned> tap_into(const std::string& net, const std::string& name,
                                     const NetNs& ns, const std::vector<std::string>& cidrs,
                                     int port = -1, int mtu = 0);
    [[nodiscard]] NetStats net_stats(const std::string& net);
};

}  // namespace ipnfs_it
