#include "policies/abi_policy.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "policies/addressing.hpp"
#include "policies/verb_flags.hpp"

namespace ipnfs::policies {

static_assert(bus::kElsewhere == IPNFS_PORT_ELSEWHERE, "the C header says what route() gets");

namespace {

// Appends to a std::string on the table's behalf.
struct StringText {
    explicit StringText(std::string& s) : text{&StringText::append, &s} {}
    static void append(ipnfs_text* t, const char* s, std::size_t n) {
        static_cast<std::string*>(t->host)->append(s, n);
    }
    ipnfs_text text;
};

// Larger than any payload the bus carries, yet bounded: a table asking for
// more is broken.
constexpr std::uint32_t kMaxVariant = std::uint32_t{1} << 20;

// The errno a table returned, as the error its caller hands back.  libfuse
// turns anything outside 1..4095 into ERANGE with a "bad error value" line
// that says nothing of the plugin, and a plugin returning -EINVAL (the
// kernel's habit) is an easy mistake: such a value becomes EIO, with a
// reason that names the policy and the value.
bus::Status table_error(std::string_view policy, std::string_view call, int err,
                        std::string reason) {
    constexpr int kMaxErrno = 4095;
    if (err > 0 && err <= kMaxErrno) {
        if (reason.empty()) reason = std::strerror(err);
        return bus::Status::error(static_cast<std::errc>(err), std::move(reason));
    }
    return bus::Status::error(
        std::errc::io_error, fmt::format("policy '{}': {}() returned {}, which is not an errno{}{}",
                                         policy, call, err, reason.empty() ? "" : ": ", reason));
}

}  // namespace

const ipnfs_route_ops AbiPolicy::kRouteOps = {
    .queued = [](const ipnfs_route* r, std::uint32_t port) -> std::uint32_t {
        const bus::Load* load = static_cast<const RouteCall*>(r->host)->load;
        return load != nullptr ? load->queued(port) : 0;
    },
    .capacity = [](const ipnfs_route* r, std::uint32_t port) -> std::uint32_t {
        const auto* call = static_cast<const RouteCall*>(r->host);
        if (call->load != nullptr) return call->load->capacity(port);
        return port < call->policy->attached_.size() && call->policy->attached_[port] ? 1 : 0;
    },
    .variant = [](ipnfs_route* r, std::uint32_t len, std::uint32_t* id) -> void* {
        auto* call = static_cast<RouteCall*>(r->host);
        if (call->out == nullptr || len > kMaxVariant || id == nullptr) return nullptr;
        bus::Route::Variant& v = call->out->add_variant();
        v.payload.resize(len);
        *id = static_cast<std::uint32_t>(call->out->variants().size() - 1);
        // An empty variant still gets an address that is not NULL.
        static unsigned char empty;
        return len == 0 ? static_cast<void*>(&empty) : static_cast<void*>(v.payload.data());
    },
    .variant_add = [](ipnfs_route* r, std::uint32_t id, std::uint32_t port) -> int {
        auto* call = static_cast<RouteCall*>(r->host);
        if (call->out == nullptr) return -1;
        auto variants = call->out->variants();
        if (id >= variants.size() || !call->policy->accept(port, *call->out)) return -1;
        variants[id].to.push_back(port);
        return 0;
    },
};

AbiPolicy::AbiPolicy(const ipnfs_policy& table, void* self, std::shared_ptr<const void> keep)
    : table_(table), self_(self), keep_(std::move(keep)) {
    build_commands();
}

AbiPolicy::~AbiPolicy() {
    table_.destroy(self_);
}

void AbiPolicy::build_commands() {
    std::uint32_t count = 0;
    const ipnfs_verb* verbs = table_.verbs != nullptr ? table_.verbs(self_, &count) : nullptr;
    if (verbs == nullptr) count = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        const ipnfs_verb& v = verbs[i];
        commands_.push_back(bus::Command{
            .verb = v.verb,
            .args = v.args != nullptr ? v.args : "",
            .nargs = v.nargs,
            .help = v.help != nullptr ? v.help : "",
            .run =
                [this, i](bus::Words words) {
                    std::vector<std::string> owned(words.begin(), words.end());
                    std::vector<const char*> argv;
                    argv.reserve(owned.size());
                    for (const std::string& w : owned) argv.push_back(w.c_str());
                    std::string reason;
                    StringText text(reason);
                    int err = table_.command(self_, i, static_cast<std::uint32_t>(argv.size()),
                                             argv.data(), &text.text);
                    if (err == 0) return bus::Status::success();
                    return table_error(table_.name, "command", err, std::move(reason));
                },
            .optional = v.optional,
            .holder = table_.reset_port != nullptr ? holder_of(v.flags) : bus::Holder::none});
    }
}

void AbiPolicy::on_ports(bus::PortId count) {
    attached_.resize(count, false);
    names_.resize(count);
    table_.ports(self_, count);
}

void AbiPolicy::on_attach(bus::PortId port) {
    if (port < attached_.size()) attached_[port] = true;
    table_.attach(self_, port);
}

void AbiPolicy::on_detach(bus::PortId port) {
    if (port < attached_.size()) attached_[port] = false;
    table_.detach(self_, port);
}

void AbiPolicy::reset_port(bus::PortId port) {
    if (table_.reset_port != nullptr) table_.reset_port(self_, port);
}

bool AbiPolicy::accept(std::uint32_t port, bus::Route& out) {
    if (port < attached_.size() && attached_[port] && out.mark(port)) return true;
    if (policy_errors_ + route_errors_++ == 0) {
        bus::log::warn({"policy-error"},
                       "policy {}: named port {}, which is not receiving or named already; "
                       "such names are dropped and counted as policy_errors in stats",
                       table_.name, port);
    }
    return false;
}

void AbiPolicy::route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) {
    route_errors_ = 0;
    routed_ = takes_address(table_.name, table_.addressing, out);
    if (!routed_) return;
    call_.out = &out;
    call_.load = out.load;
    last_ = ipnfs_route{};
    ipnfs_route& r = last_;
    r.from = from;
    r.to = {static_cast<std::uint32_t>(out.address.to), out.address.lower, out.address.upper};
    // Never NULL, even for an empty message: a plugin may hand it to memcmp().
    static const unsigned char kEmpty = 0;
    r.payload = payload.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(payload.data());
    r.len = static_cast<std::uint32_t>(payload.size());
    r.ports = names_.data();
    r.capacity = static_cast<std::uint32_t>(names_.size());
    r.ops = &kRouteOps;
    r.host = &call_;
    table_.route(self_, &r);
    if (r.error != 0) {
        out.to.clear();
        for (bus::Route::Variant& v : out.variants()) v.to.clear();
        out.refused = table_error(table_.name, "route", r.error,
                                  r.reason != nullptr ? r.reason : std::string());
        return;
    }
    std::uint32_t count = std::min(r.count, r.capacity);
    for (std::uint32_t i = 0; i < count; ++i) {
        if (accept(names_[i], out)) out.to.push_back(names_[i]);
    }
}

void AbiPolicy::sent(bus::PortId /*from*/, const bus::Route& route) {
    // Names dropped from a route tried again are counted once, as its
    // messages are.
    policy_errors_ += route_errors_;
    route_errors_ = 0;
    if (!routed_ || table_.sent == nullptr) return;
    call_.out = nullptr;
    call_.load = route.load;
    table_.sent(self_, &last_);
}

bool AbiPolicy::spans_hosts() const {
    // An ABI 4 table ends before `scopes`.
    return table_.abi >= 5 && (table_.scopes & IPNFS_SCOPE_CLUSTER) != 0;
}

void AbiPolicy::place(bus::PortId /*from*/, std::span<const std::byte> /*payload*/,
                      bus::Route& out) {
    // The table has no place(): the sent() that follows this one has
    // nothing of its to count (every host's route() and sent() count).
    routed_ = false;
    route_errors_ = 0;
    if (!takes_address(table_.name, table_.addressing, out)) return;
    // Each host's instance chooses among its own ports, so a message for
    // exactly one port of the whole cluster would reach one on every host.
    if (out.address.to == bus::To::port || out.address.to == bus::To::anycast) {
        out.refused = bus::Status::error(
            std::errc::operation_not_supported,
            fmt::format("on a cluster network the {} policy chooses on each host among its own "
                        "ports, so it takes no address of one port of the whole cluster "
                        "(IPNFS_TO {}); the group policy does (docs/cluster.md)",
                        table_.name, static_cast<std::uint32_t>(out.address.to)));
    }
}

void AbiPolicy::describe(std::string& out) const {
    StringText text(out);
    table_.describe(self_, &text.text);
}

void AbiPolicy::stats(std::string& out) const {
    if (table_.stats != nullptr) {
        StringText text(out);
        table_.stats(self_, &text.text);
    }
    if (policy_errors_ > 0) out += fmt::format("policy_errors {}\n", policy_errors_);
}

}  // namespace ipnfs::policies
