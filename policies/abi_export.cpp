#include "policies/abi_export.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "policies/verb_flags.hpp"

namespace ipnfs::policies::abi_export {

namespace {

// The queue view a C++ policy sees, answered by the table's route ops.
struct RouteLoad final : bus::Load {
    const ipnfs_route* r = nullptr;
    [[nodiscard]] std::uint32_t queued(bus::PortId port) const override {
        return r->ops->queued(r, port);
    }
    [[nodiscard]] std::uint32_t capacity(bus::PortId port) const override {
        return r->ops->capacity(r, port);
    }
};

void append(ipnfs_text* out, const std::string& s) {
    out->append(out, s.data(), s.size());
}

}  // namespace

struct Instance {
    std::unique_ptr<bus::Policy> policy;
    std::vector<ipnfs_verb> verbs;
    // The C strings verbs point at (a command's words are string_views).
    std::vector<std::string> strings;
    bus::Route route;  // reused, so a warm policy allocates nothing per message
    RouteLoad load;
    std::string reason;  // of the last refusal, alive until the next route
};

Instance* adopt(std::unique_ptr<bus::Policy> policy) {
    auto* in = new Instance{std::move(policy), {}, {}, {}, {}, {}};
    const bus::CommandTable& commands = in->policy->commands();
    in->strings.reserve(commands.size() * 3);
    for (const bus::Command& c : commands) {
        in->strings.emplace_back(c.verb);
        in->strings.emplace_back(c.args);
        in->strings.emplace_back(c.help);
    }
    for (std::size_t i = 0; i < commands.size(); ++i) {
        const bus::Command& c = commands[i];
        in->verbs.push_back(ipnfs_verb{in->strings[3 * i].c_str(), in->strings[3 * i + 1].c_str(),
                                       static_cast<std::uint32_t>(c.nargs),
                                       static_cast<std::uint32_t>(c.optional), verb_flags(c.holder),
                                       in->strings[3 * i + 2].c_str()});
    }
    return in;
}

namespace {

Instance& of(void* self) {
    return *static_cast<Instance*>(self);
}

void route(void* self, ipnfs_route* r) {
    Instance& in = of(self);
    bus::Route& out = in.route;
    out.clear();
    out.address = {static_cast<bus::To>(r->to.to), r->to.lower, r->to.upper};
    in.load.r = r;
    out.load = &in.load;
    in.policy->route(r->from, {reinterpret_cast<const std::byte*>(r->payload), r->len}, out);
    r->tally = out.tally;
    if (!out.refused.ok()) {
        in.reason = std::move(out.refused.reason);
        ipnfs_route_refuse(r, static_cast<int>(out.refused.code), in.reason.c_str());
        return;
    }
    for (bus::PortId port : out.to) ipnfs_route_add(r, port);
    for (const bus::Route::Variant& v : out.variants()) {
        if (v.to.empty()) continue;
        std::uint32_t id = 0;
        void* buf = r->ops->variant(r, static_cast<std::uint32_t>(v.payload.size()), &id);
        if (buf == nullptr) continue;
        std::memcpy(buf, v.payload.data(), v.payload.size());
        for (bus::PortId port : v.to) r->ops->variant_add(r, id, port);
    }
}

// The route just made is the one accepted: in.route still holds it (the
// daemon calls nothing in between).
void sent(void* self, const ipnfs_route* r) {
    Instance& in = of(self);
    in.route.tally = r->tally;
    in.policy->sent(r->from, in.route);
}

int command(void* self, std::uint32_t verb, std::uint32_t argc, const char* const* argv,
            ipnfs_text* reason) {
    const bus::CommandTable& commands = of(self).policy->commands();
    if (verb >= commands.size()) return EINVAL;
    std::vector<std::string_view> words(argv, argv + argc);
    bus::Status s = commands[verb].run(words);
    if (s.ok()) return 0;
    append(reason, s.reason);
    return static_cast<int>(s.code);
}

}  // namespace

ipnfs_policy table(const char* name, const char* summary, std::uint32_t addressing,
                   std::uint32_t link_type, void* (*create)()) {
    return ipnfs_policy{
        .abi = IPNFS_POLICY_ABI,
        .addressing = addressing,
        .link_type = link_type,
        .name = name,
        .summary = summary,
        .create = create,
        .destroy = [](void* self) { delete &of(self); },
        .ports = [](void* self, std::uint32_t count) { of(self).policy->on_ports(count); },
        .attach = [](void* self, std::uint32_t port) { of(self).policy->on_attach(port); },
        .detach = [](void* self, std::uint32_t port) { of(self).policy->on_detach(port); },
        .route = &route,
        .verbs =
            [](void* self, std::uint32_t* count) {
                *count = static_cast<std::uint32_t>(of(self).verbs.size());
                return static_cast<const ipnfs_verb*>(of(self).verbs.data());
            },
        .command = &command,
        .describe =
            [](void* self, ipnfs_text* out) {
                std::string s;
                of(self).policy->describe(s);
                append(out, s);
            },
        .stats =
            [](void* self, ipnfs_text* out) {
                std::string s;
                of(self).policy->stats(s);
                append(out, s);
            },
        .reset_port = [](void* self, std::uint32_t port) { of(self).policy->reset_port(port); },
        .sent = &sent,
        // The built-ins' cluster behaviour (place, instances) has no table
        // entries: their exports run in node scope.
        .scopes = 0,
    };
}

}  // namespace ipnfs::policies::abi_export
