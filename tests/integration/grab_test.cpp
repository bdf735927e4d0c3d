// GRAB: `grab IFACE` puts an existing interface (here one end of a veth pair)
// on the bus, so whatever is behind it joins the network; `ungrab` and rmdir
// let it go again, untouched.
#include <unistd.h>

#include <string>

#include "netns.hpp"

namespace ipnfs_it {
namespace {

class NetdevGrabTest : public NetdevTest {};

// The "promiscuity N" of `ip -d link show`: how many asked for promiscuous mode.
int promiscuity(const std::string& iface) {
    Shell sh = root_sh("ip -d link show dev " + sq(iface), 10);
    auto at = sh.out.find("promiscuity ");
    return at == std::string::npos ? -1 : std::stoi(sh.out.substr(at + 12));
}

TEST_F(NetdevGrabTest, AGrabbedVethEndJoinsTheBus) {
    std::string net = make_net("lan");
    ASSERT_EQ(ctl(net, "policy switch\n"), 0) << last_error_line(ctl_text(net));
    VethPair veth(ifname("vA"), ifname("vB"));
    ASSERT_TRUE(veth.ok()) << veth.error();
    NetNs ns_b, ns_t;
    ASSERT_TRUE(ns_b.ok() && ns_t.ok()) << ns_b.error() << ns_t.error();

    // vA stays in the root namespace, up, and is grabbed; vB is the far end.
    Shell up = root_sh("sysctl -qw net.ipv6.conf." + veth.a() +
                       ".disable_ipv6=1 2>/dev/null; ip link set dev " + sq(veth.a()) + " up");
    ASSERT_EQ(up.exit_code(), 0) << describe(up);
    ASSERT_EQ(grab(net, veth.a()), 0) << last_error_line(ctl_text(net));
    std::optional<unsigned> grab_port = attached_port(net, "grab", veth.a());
    ASSERT_TRUE(grab_port) << "no 'grab " << veth.a() << " PORT' line in ctl:\n" << ctl_text(net);
    EXPECT_GE(promiscuity(veth.a()), 1) << "a grabbed interface is promiscuous";
    Shell moved = ns_b.adopt(veth.b());
    ASSERT_EQ(moved.exit_code(), 0) << describe(moved);
    Shell conf = ns_b.configure(veth.b(), {"10.0.1.2/24"});
    ASSERT_EQ(conf.exit_code(), 0) << describe(conf);

    // A TAP of the same network in nsT.
    const std::string tap_name = ifname("tT");
    std::optional<unsigned> tap_port = tap_into(net, tap_name, ns_t, {"10.0.1.1/24"});
    ASSERT_TRUE(tap_port);

    Shell there = ns_t.ping("10.0.1.2");
    EXPECT_EQ(there.exit_code(), 0)
        << "nsT (TAP) -> nsB (behind the grabbed veth): " << describe(there);
    Shell back = ns_b.ping("10.0.1.1");
    EXPECT_EQ(back.exit_code(), 0) << "nsB -> nsT: " << describe(back);

    // The switch learned each MAC where it really is: the grab does not take
    // its own transmissions for frames from the wire.
    NetStats st = net_stats(net);
    std::string mac_b = ns_b.mac(veth.b()), mac_t = ns_t.mac(tap_name);
    const MacRow* behind_grab = st.mac(mac_b);
    const MacRow* behind_tap = st.mac(mac_t);
    ASSERT_NE(behind_grab, nullptr) << "no 'mac " << mac_b << "' line:\n" << st.text;
    ASSERT_NE(behind_tap, nullptr) << "no 'mac " << mac_t << "' line:\n" << st.text;
    EXPECT_EQ(behind_grab->port, *grab_port);
    EXPECT_EQ(behind_tap->port, *tap_port);
    auto row = st.ifaces.find(veth.a());
    ASSERT_NE(row, st.ifaces.end()) << "no iface row for " << veth.a() << ":\n" << st.text;
    EXPECT_EQ(row->second.kind, "grab");
    EXPECT_EQ(row->second.port, *grab_port);
    EXPECT_GT(row->second.frames_in, 0u) << st.text;
    EXPECT_GT(row->second.frames_out, 0u) << st.text;

    // ungrab: the bus lets go; the interface stays, no longer promiscuous.
    ASSERT_EQ(ctl(net, "ungrab " + veth.a() + "\n"), 0) << last_error_line(ctl_text(net));
    EXPECT_FALSE(attached_port(net, "grab", veth.a())) << ctl_text(net);
    EXPECT_TRUE(link_exists(veth.a())) << "ungrab must not delete the interface";
    EXPECT_TRUE(eventually([&] { return promiscuity(veth.a()) == 0; }, 2s))
        << "still promiscuous after ungrab";
    Shell cut = ns_t.ping("10.0.1.2", 2, 0.2);
    EXPECT_NE(cut.exit_code(), 0) << "nsT still reaches nsB after ungrab: " << cut.out;

    // Grabbed again, then the network is removed: the grab is released too.
    ASSERT_EQ(grab(net, veth.a()), 0) << last_error_line(ctl_text(net));
    ASSERT_EQ(rmdir(net.c_str()), 0);
    EXPECT_TRUE(link_exists(veth.a())) << "rmdir must not delete a grabbed interface";
    EXPECT_TRUE(eventually([&] { return promiscuity(veth.a()) == 0; }, 2s))
        << "still promiscuous after rmdir of the network";
}

}  // namespace
}  // namespace ipnfs_it
