// ipnfs-loadgen: one load, one contender, one line of JSON.  bench/run.sh
// runs it for every contender and load and makes the tables.
//
//   ipnfs-loadgen SCENARIO --kind KIND [options]
//
// Scenarios:
//   throughput  one sender to N receivers as fast as it can for --seconds
//   latency     one sender to N receivers, paced at --rate messages/s; each
//               receiver takes now - (send time carried in the message)
//   pingpong    two endpoints bounce one message; round-trip times
//   stall       throughput with the last --stalled receivers never reading,
//               the daemon's resident memory sampled all along
//
// Kinds (contenders):
//   ipnfs   --net DIR: sender on port --from (0), receivers on ports 1..N
//           (or --to P,P,..., or --recv PATH,PATH,...: those port files,
//           e.g. of the same cluster network on other hosts' mounts);
//           --framed sends --batch records per write and
//           reads 64 KiB of records per read; --learn makes it a learned
//           unicast on a switch network (receivers announce their MACs first,
//           the sender addresses the first receiver)
//   nullfs  --file PATH on bench/nullfs: writes answered "done", reads with
//           zeros; receivers read until the sender stops (nothing is carried)
//   pipe    one pipe per receiver; the sender writes each message to each
//   unix    one AF_UNIX SOCK_DGRAM socket pair per receiver; the sender
//           sends each message to each
//   vde     --sock DIR of a running vde_switch; every endpoint is a
//           libvdeplug connection (only if built with libvdeplug)
//
//   zmq     ZeroMQ over ipc (--ipc PATH, made fresh): the sender an XPUB
//           (lossless: ZMQ_XPUB_NODROP, a full queue makes it wait; lossy:
//           a PUB's drops), each receiver a SUB (only if built with libzmq)
//
// Receivers (--receiver, throughput and latency): blocking (read(), the
// default), epoll-lt (a non-blocking descriptor, one read per epoll_wait),
// epoll-et (edge-triggered, reads until EAGAIN before waiting), uring (one
// io_uring read at a time on the blocking descriptor; not zmq).
//
// Common options: --n N receivers (1), --size BYTES per message (64),
// --lossy (pipes and sockets then send without blocking and drop on a full
// buffer; ipnfs and vde keep whatever mode the network has), --seconds S (1),
// --pid PID of the daemon to measure (CPU from /proc/PID/stat, peak RSS from
// VmHWM after resetting it through clear_refs).
//
// Every message looks like an Ethernet frame (broadcast destination, a
// locally administered source, ethertype 0x88b5) so that switches forward it;
#include <csignal>
#include <cstdio>
#include <string>

#include "loadgen.hpp"

using namespace ipnfs_loadgen;

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::fprintf(stderr,
                     "usage: %s throughput|latency|pingpong|stall --kind KIND [options]\n"
                     "(see the comment at the top of bench/loadgen/main.cpp)\n",
                     argv[0]);
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a receiver that left is not an error
    std::string scenario = argv[1];
    Setup s;
    s.opt = parse(argc, argv);
    s.kind = s.opt.str("kind");
    s.n = static_cast<int>(s.opt.num("n", 1));
    s.size = static_cast<std::size_t>(s.opt.num("size", 64));
    s.lossy = s.opt.has("lossy");
    s.framed = s.opt.has("framed");
    s.learn = s.opt.has("learn");
    wait_of(s.opt.str("receiver"));  // refuses an unknown one before anything runs
    if (s.size < kMinSize || s.size > 65535) die("--size must be 38..65535");
    if (scenario == "throughput") return throughput(s, false, 0);
    if (scenario == "latency") {
        return s.kind == "nullfs" ? null_pairs(s, false) : throughput(s, true, 0);
    }
    if (scenario == "pingpong") return pingpong(s);
    if (scenario == "stall") {
        int stalled = static_cast<int>(s.opt.num("stalled", 0));
        if (stalled < 0 || stalled >= s.n) die("--stalled must be below --n");
        return throughput(s, false, stalled);
    }
    die("unknown scenario " + scenario);
}
