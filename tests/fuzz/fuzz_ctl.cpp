// The ctl command parser: arbitrary bytes as the text of a ctl write (or as
// one port's own settings, IPNFS_IOC_PORT_CTL), on a network of each policy.
// Every failure must carry a documented errno and a reason, and whatever the
// network ends up with, ctl's text must write back onto a fresh network and
// give the same settings.
//
// Input: byte 0 picks the policy, byte 1 the caller (bit 0: CAP_NET_ADMIN,
// bit 1: each line through control_port, bit 2: port 0 connected, so the
// settings that need an idle network are refused), the rest is the text.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bus/commands.hpp"
#include "bus/network.hpp"
#include "fuzz_support.hpp"

namespace ipnfs::fuzz {
namespace {

// What ctl's table of commands (docs/usage.md) says a write may fail with;
// the plugin errors come from "policy topic".
constexpr std::initializer_list<int> kCtlErrors = {EINVAL, EBUSY,   EPERM, ENOSPC,
                                                   EACCES, ELIBBAD, ENOMEM};

// ctl's settings: its lines but the comments (last error, help, a holder's mark).
std::string settings(std::string_view described) {
    std::string out;
    std::size_t start = 0;
    while (start < described.size()) {
        std::size_t end = described.find('\n', start);
        if (end == std::string_view::npos) end = described.size();
        // Without trailing comments: ctl marks a holder's settings with one,
        // and the same line written to ctl is a manager's.
        std::string_view line = described.substr(start, end - start);
        for (std::string_view word : bus::split_words(line)) {
            out += word;
            out += ' ';
        }
        if (!bus::split_words(line).empty()) out += '\n';
        start = end + 1;
    }
    return out;
}

// What ctl shows must write back, as the docs promise, onto a network that
// has never seen the commands that led there.
void round_trip(const bus::Network& net) {
    std::string described = net.describe();
    std::shared_ptr<bus::Network> copy;
    require(bus::Network::create("copy", {}, catalog(), "hub", copy).ok(), "a fresh network");
    bus::Status s = copy->control(described, bus::Caller{.net_admin = true});
    require(s.ok(), "ctl's text writes back", s.reason + "\n---\n" + described);
    require(settings(copy->describe()) == settings(described), "ctl's text writes back the same",
            described + "\n---\n" + copy->describe());
}

void each_line_as_port_setting(bus::Network& net, std::string_view text) {
    bus::PortId port = 0;
    bus::for_each_line(text, [&](std::string_view line) {
        bus::Status s =
            net.control_port(port++ % net.port_count(), line, bus::PortGrant{true, true, true});
        if (!s.ok()) require_error(s, kCtlErrors, "a port's own setting");
    });
}

}  // namespace
}  // namespace ipnfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace ipnfs;
    using namespace ipnfs::fuzz;
    if (size < 2) return 0;
    const auto& names = policy_names();
    const std::string& policy = names[data[0] % names.size()];
    bool admin = (data[1] & 1) != 0;
    bool by_port = (data[1] & 2) != 0;
    bool busy = (data[1] & 4) != 0;
    std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

    std::shared_ptr<bus::Network> net;
    require(bus::Network::create("fuzz", {}, catalog(), policy, net).ok(), "a network", policy);
    bus::Connection conn;
    if (busy) require(net->connect(0, true, true, conn).ok(), "port 0 connects");
    if (by_port) {
        each_line_as_port_setting(*net, text);
    } else {
        bus::Status s = net->control(text, bus::Caller{.net_admin = admin});
        if (!s.ok()) {
            require_error(s, kCtlErrors, "a ctl write");
            require(net->describe().find("# last error: ") != std::string::npos,
                    "ctl shows the last error");
        }
    }
    round_trip(*net);
    if (busy) net->disconnect(conn);
    return 0;
}
