// The contenders by --kind: adding one is a file of its own and a row here.
#include <string_view>

#include "loadgen.hpp"

namespace ipnfs_loadgen {
namespace {

struct Contender {
    std::string_view kind;
    Wiring (*fanout)(const Setup&);
    EndpointPair (*pair)(const Setup&);  // null: no ping-pong of its own
};

constexpr Contender kContenders[] = {
    {.kind = "ipnfs", .fanout = wire_ipnfs_fanout, .pair = wire_ipnfs_pair},
    {.kind = "nullfs", .fanout = wire_null_fuse_fanout, .pair = nullptr},
    {.kind = "pipe", .fanout = wire_pipes_fanout, .pair = wire_pipes_pair},
    {.kind = "unix", .fanout = wire_unix_dgram_fanout, .pair = wire_unix_dgram_pair},
#ifdef IPNFS_BENCH_VDE
    {.kind = "vde", .fanout = wire_vde_fanout, .pair = wire_vde_pair},
#endif
#ifdef IPNFS_BENCH_ZMQ
    {.kind = "zmq", .fanout = wire_zmq_fanout, .pair = nullptr},
#endif
};

const Contender* find(std::string_view kind) {
    for (const Contender& c : kContenders) {
        if (c.kind == kind) return &c;
    }
    return nullptr;
}

}  // namespace

Wiring wire_fanout(const Setup& s) {
    const Contender* c = find(s.kind);
    if (c == nullptr) die("unknown --kind " + s.kind);
    return c->fanout(s);
}

EndpointPair wire_pair(const Setup& s) {
    const Contender* c = find(s.kind);
    if (c == nullptr || c->pair == nullptr) die("pingpong: unknown --kind " + s.kind);
    return c->pair(s);
}

}  // namespace ipnfs_loadgen
