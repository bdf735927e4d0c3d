// ipnfs-cable: plugs one port of an ipnfs network into stdin and stdout as a
// VDE stream, so dpipe, ssh or vde_plug can join it to another network.
#include <fcntl.h>
#include <getopt.h>
#include <ipnfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "plug.hpp"

namespace {

using ipnfs::cable::Counters;
using ipnfs::cable::End;

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

volatile std::sig_atomic_t g_stop = 0;

void on_signal(int sig) {
    g_stop = sig;
}

void usage(std::FILE* to) {
    std::fputs(
        "Usage: ipnfs-cable [-q] [-p PIDFILE] PATH\n"
        "Plugs one port of an ipnfs network into stdin and stdout as a VDE stream\n"
        "(each frame preceded by its length, 2 bytes big endian), e.g.\n"
        "  dpipe ipnfs-cable /mnt/ipn/lan = ssh hostB ipnfs-cable /mnt/ipn/lan\n"
        "  dpipe ipnfs-cable /mnt/ipn/lan = vde_plug /run/vde.ctl\n"
        "\n"
        "PATH is a port file (NET/port3) or a network directory (NET: the lowest\n"
        "free port, through NET/clone).\n"
        "\n"
        "  -q, --quiet           report only errors (not the port, drops, counters)\n"
        "  -p, --pidfile PIDFILE write the process id to PIDFILE (removed on exit)\n"
        "  -h, --help            show this help\n"
        "  -V, --version         show the version\n"
        "\n"
        "Exit status: 0 when stdin or stdout's reader closes, 1 on errors (the\n"
        "network removed included), 2 on a bad command line.\n",
        to);
}

int usage_error(const std::string& what) {
    std::fprintf(stderr, "ipnfs-cable: %s\nTry 'ipnfs-cable --help'.\n", what.c_str());
    return kExitUsage;
}

int fail(const std::string& what) {
    std::fprintf(stderr, "ipnfs-cable: %s\n", what.c_str());
    return kExitError;
}

std::string without_trailing_slashes(std::string path) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path;
}

// Opens PATH (a port file, or a network's clone) for the cable; sets `name`
// to the port file it is connected to.  -1 after reporting why.
int open_port(const std::string& path, std::string& name) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        fail(path + ": " + std::strerror(errno));
        return -1;
    }
    bool network = S_ISDIR(st.st_mode);
    std::string file = network ? without_trailing_slashes(path) + "/clone" : path;
    int fd = ::open(file.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        std::string why = file + ": " + std::strerror(errno);
        if (network && errno == ENOSPC) why += " (every port of the network is in use)";
        fail(why);
        return -1;
    }
    std::uint32_t port = 0;
    if (::ioctl(fd, IPNFS_IOC_GET_PORT, &port) != 0) {
        ::close(fd);
        fail(file + ": not an ipnfs port file or network");
        return -1;
    }
    name = network ? without_trailing_slashes(path) + "/port" + std::to_string(port) : path;
    return fd;
}

// The port opened a second time, for writes that wait (see plug.cpp): a
// descriptor's O_NONBLOCK is shared by all its users, and reads must not wait.
int open_for_writes(const std::string& name) {
    int fd = ::open(name.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(name + ": " + std::strerror(errno));
    return fd;
}

// Written whole under a temporary name, then renamed: whoever reads PIDFILE
// sees either nothing or the whole pid.
bool write_pidfile(const std::string& pidfile) {
    std::string tmp = pidfile + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "we");
    if (f == nullptr) {
        fail(pidfile + ": " + std::strerror(errno));
        return false;
    }
    std::fprintf(f, "%d\n", static_cast<int>(::getpid()));
    bool ok = std::fclose(f) == 0 && std::rename(tmp.c_str(), pidfile.c_str()) == 0;
    if (!ok) {
        fail(pidfile + ": " + std::strerror(errno));
        ::unlink(tmp.c_str());
    }
    return ok;
}

void install_handlers() {
    // EPIPE on stdout is how we learn the far side is gone.
    std::signal(SIGPIPE, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // poll() then fails with EINTR and the loop sees the flag
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    static const option longopts[] = {{"quiet", no_argument, nullptr, 'q'},
                                      {"pidfile", required_argument, nullptr, 'p'},
                                      {"help", no_argument, nullptr, 'h'},
                                      {"version", no_argument, nullptr, 'V'},
                                      {nullptr, 0, nullptr, 0}};
    bool quiet = false;
    std::string pidfile;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "+qp:hV", longopts, nullptr)) != -1;) {
        switch (c) {
            case 'q':
                quiet = true;
                break;
            case 'p':
                pidfile = optarg;
                break;
            case 'h':
                usage(stdout);
                return 0;
            case 'V':
                std::printf("ipnfs-cable %s\n", IPNFS_VERSION);
                return 0;
            default:
                if (optopt == 'p') return usage_error("option -p needs a PIDFILE");
                return usage_error(std::string("unknown option '") + argv[optind - 1] + "'");
        }
    }
    if (optind == argc) return usage_error("which network or port? PATH is missing");
    if (argc - optind > 1)
        return usage_error(std::string("one PATH only: '") + argv[optind + 1] + "'");

    std::string path = argv[optind];
    ipnfs::cable::Plug plug;
    plug.quiet = quiet;
    plug.stop = &g_stop;
    plug.port = open_port(path, plug.name);
    if (plug.port < 0) return kExitError;
    plug.port_writes = open_for_writes(plug.name);
    if (plug.port_writes < 0) return kExitError;
    if (!pidfile.empty() && !write_pidfile(pidfile)) return kExitError;
    install_handlers();
    if (!quiet) std::fprintf(stderr, "ipnfs-cable: plugged into %s\n", plug.name.c_str());

    Counters counters;
    auto outcome = ipnfs::cable::run(plug, counters);
    ::close(plug.port_writes);
    ::close(plug.port);
    if (!pidfile.empty()) ::unlink(pidfile.c_str());
    if (!quiet) {
        std::fprintf(stderr, "ipnfs-cable: %s: frames in %llu out %llu dropped %llu\n",
                     plug.name.c_str(), static_cast<unsigned long long>(counters.in),
                     static_cast<unsigned long long>(counters.out),
                     static_cast<unsigned long long>(counters.dropped));
    }
    switch (outcome.end) {
        case End::stream_closed:
            return 0;
        case End::network_removed:
            return fail(plug.name + ": the network was removed");
        case End::failed:
            return fail(outcome.why);
        case End::signalled:
            // Die of the signal, as the shell and dpipe expect of an interrupted command.
            std::signal(g_stop, SIG_DFL);
            std::raise(g_stop);
            return kExitError;
    }
    return kExitError;
}
