#include "netdev/interface_counters.hpp"

#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>

namespace ipnfs::netdev {

namespace {

// A request: its header, its family header and a few small attributes.
class Request {
  public:
    template <typename Head>
    Request(std::uint16_t type, std::uint32_t seq, const Head& head) {
        auto* h = header();
        h->nlmsg_type = type;
        h->nlmsg_flags = NLM_F_REQUEST;
        h->nlmsg_seq = seq;
        h->nlmsg_len = NLMSG_LENGTH(sizeof head);
        std::memcpy(NLMSG_DATA(h), &head, sizeof head);
    }

    void add(std::uint16_t type, const void* data, std::size_t len) {
        auto* h = header();
        auto* a = reinterpret_cast<rtattr*>(buf_.data() + NLMSG_ALIGN(h->nlmsg_len));
        a->rta_type = type;
        a->rta_len = static_cast<std::uint16_t>(RTA_LENGTH(len));
        std::memcpy(RTA_DATA(a), data, len);
        h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
    }

    [[nodiscard]] std::span<const std::byte> bytes() { return {buf_.data(), header()->nlmsg_len}; }

  private:
    nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
    // Header, ifinfomsg, an interface name and a namespace id fit easily.
    alignas(nlmsghdr) std::array<std::byte, 256> buf_{};
};

class Rtnetlink {
  public:
    Rtnetlink()
        : fd_(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE)) {}
    [[nodiscard]] bool ok() const { return fd_.ok(); }

    // Sends one request and finds its reply: the kernel answers within the
    // send, so the reply is queued by the time send() returns and the
    // non-blocking receive never waits.  The reply's payload (after the
    // nlmsghdr), or an empty span for an error or no answer.
    std::span<const std::byte> ask(Request& req, std::uint32_t seq) {
        auto out = req.bytes();
        sockaddr_nl kernel{};
        kernel.nl_family = AF_NETLINK;
        if (::sendto(fd_.get(), out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
                     sizeof kernel) != static_cast<ssize_t>(out.size())) {
            return {};
        }
        for (;;) {
            ssize_t n = ::recv(fd_.get(), reply_.data(), reply_.size(), MSG_TRUNC);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0 || static_cast<std::size_t>(n) > reply_.size()) return {};
            auto len = static_cast<std::size_t>(n);
            for (auto* h = reinterpret_cast<nlmsghdr*>(reply_.data()); NLMSG_OK(h, len);
                 h = NLMSG_NEXT(h, len)) {
                if (h->nlmsg_seq != seq) continue;  // an answer to an earlier, abandoned ask
                if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) return {};
                return {static_cast<const std::byte*>(NLMSG_DATA(h)), h->nlmsg_len - NLMSG_HDRLEN};
            }
        }
    }

  private:
    UniqueFd fd_;
    // A link's answer is a few KiB (its attributes without VF details).
    alignas(nlmsghdr) std::array<std::byte, 32768> reply_{};
};

// Calls f(type, payload) for each attribute after the family header.
template <typename F>
void for_each_attr(std::span<const std::byte> msg, std::size_t head, F f) {
    if (msg.size() < NLMSG_ALIGN(head)) return;
    auto len = static_cast<int>(msg.size() - NLMSG_ALIGN(head));
    const auto* a = reinterpret_cast<const rtattr*>(msg.data() + NLMSG_ALIGN(head));
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        f(a->rta_type,
          std::span<const std::byte>(static_cast<const std::byte*>(RTA_DATA(a)), RTA_PAYLOAD(a)));
    }
}

bool same_namespace(int netns, const struct stat& own) {
    struct stat st {};
    return ::fstat(netns, &st) == 0 && st.st_ino == own.st_ino && st.st_dev == own.st_dev;
}

// The id the daemon's namespace gives `netns`, if it has one.  The kernel
// gives one when an interface moves there, so a TAP moved away has it;
// none is made here (that would change the namespace's table).
std::optional<std::int32_t> namespace_id(Rtnetlink& nl, int netns, std::uint32_t seq) {
    rtgenmsg head{};
    head.rtgen_family = AF_UNSPEC;
    Request req(RTM_GETNSID, seq, head);
    auto fd = static_cast<std::uint32_t>(netns);
    req.add(NETNSA_FD, &fd, sizeof fd);
    std::optional<std::int32_t> id;
    for_each_attr(nl.ask(req, seq), sizeof(rtgenmsg), [&](unsigned type, auto data) {
        std::int32_t v = 0;
        if (type != NETNSA_NSID || data.size() < sizeof v) return;
        std::memcpy(&v, data.data(), sizeof v);
        if (v != NETNSA_NSID_NOT_ASSIGNED) id = v;
    });
    return id;
}

std::optional<InterfaceDrops> link_drops(Rtnetlink& nl, const InterfaceRef& where,
                                         std::optional<std::int32_t> nsid, std::uint32_t seq) {
    ifinfomsg head{};
    head.ifi_family = AF_UNSPEC;
    head.ifi_index = static_cast<int>(where.ifindex);
    Request req(RTM_GETLINK, seq, head);
    if (where.ifindex == 0) {
        if (where.name.empty() || where.name.size() >= IFNAMSIZ) return std::nullopt;
        req.add(IFLA_IFNAME, where.name.c_str(), where.name.size() + 1);
    }
    if (nsid) req.add(IFLA_TARGET_NETNSID, &*nsid, sizeof *nsid);
    std::optional<InterfaceDrops> drops;
    for_each_attr(nl.ask(req, seq), sizeof(ifinfomsg), [&](unsigned type, auto data) {
        rtnl_link_stats64 st{};
        if (type != IFLA_STATS64 || data.size() < sizeof st) return;
        std::memcpy(&st, data.data(), sizeof st);
        drops = InterfaceDrops{.rx_dropped = st.rx_dropped,
                               .rx_missed = st.rx_missed_errors,
                               .tx_dropped = st.tx_dropped};
    });
    return drops;
}

}  // namespace

std::vector<std::optional<InterfaceDrops>> read_interface_drops(
    const std::vector<InterfaceRef>& where) {
    std::vector<std::optional<InterfaceDrops>> out(where.size());
    Rtnetlink nl;
    struct stat own {};
    if (where.empty() || !nl.ok() || ::stat("/proc/self/ns/net", &own) != 0) return out;
    std::uint32_t seq = 0;
    for (std::size_t i = 0; i < where.size(); ++i) {
        const InterfaceRef& ref = where[i];
        std::optional<std::int32_t> nsid;
        if (ref.netns.ok() && !same_namespace(ref.netns.get(), own)) {
            nsid = namespace_id(nl, ref.netns.get(), ++seq);
            if (!nsid) continue;
        }
        out[i] = link_drops(nl, ref, nsid, ++seq);
    }
    return out;
}

}  // namespace ipnfs::netdev
