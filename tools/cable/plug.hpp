// The cable's data path: frames between one port of a network and a VDE
// stream on two descriptors (stdin and stdout), until one side ends.
#pragma once

#include <csignal>
#include <cstdint>
#include <string>

namespace ipnfs::cable {

struct Counters {
    std::uint64_t in = 0;   // frames from the stream into the network (the port's msgs_in)
    std::uint64_t out = 0;  // frames from the network onto the stream (the port's msgs_out)
    // frames from the stream the network refused or that were empty, and
    // frames from the network dropped to break a mutual wait (see plug.cpp)
    std::uint64_t dropped = 0;
};

enum class End {
    stream_closed,    // stdin reached end of file, or stdout's reader went away
    network_removed,  // the port reported end of file or EPIPE
    failed,           // anything else; `why` says what
    signalled,        // *stop became non-zero
};

struct Outcome {
    End end = End::failed;
    std::string why;
};

struct Plug {
    int port = -1;         // the port, opened O_RDWR | O_NONBLOCK: read from
    int port_writes = -1;  // the same port opened again O_WRONLY, blocking: written to
    int in = 0;            // the stream from the far side
    int out = 1;           // the stream to the far side
    std::string name;      // the port file, for messages
    bool quiet = false;
    const volatile std::sig_atomic_t* stop = nullptr;  // set by a signal handler
};

// Runs until one side ends.  Frames from stdin go into the network on a
// thread of their own, whose writes wait their turn like any writer's;
// frames from the network go to stdout without ever waiting in a write.
// Uses SIGUSR1 to interrupt that thread; SIGINT, SIGTERM and SIGHUP reach
// only the calling thread.
Outcome run(const Plug& plug, Counters& counters);

}  // namespace ipnfs::cable
