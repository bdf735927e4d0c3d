#include "daemon/options.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "bus/commands.hpp"

namespace ipnfs::daemon {

namespace {

// fuse_opt writes malloc'd char* for %s; these hold them until copied into
// Options, and free whatever an early error return leaves.
struct RawOptions {
    char* log_level = nullptr;
    char* log_file = nullptr;
    char* log = nullptr;
    char* policy = nullptr;
    char* plugins = nullptr;
    char* ports = nullptr;
    char* mtu = nullptr;
    char* queue = nullptr;
    char* root_mode = nullptr;
    char* config = nullptr;
    char* vde_dir = nullptr;
    char* max_event_readers = nullptr;
    char* max_capture_readers = nullptr;
    char* max_text_bytes = nullptr;
    char* holdtime = nullptr;
    char* net_mib = nullptr;
    char* user_mib = nullptr;
    char* uring = nullptr;
    char* uring_entries = nullptr;
    char* uring_user_entries = nullptr;
    int uring_bare = 0;  // -o uring alone: on

    RawOptions() = default;
    RawOptions(const RawOptions&) = delete;
    RawOptions& operator=(const RawOptions&) = delete;
    ~RawOptions() {
        for (char* p : {log_level,
                        log_file,
                        log,
                        policy,
                        plugins,
                        ports,
                        mtu,
                        queue,
                        root_mode,
                        config,
                        vde_dir,
                        max_event_readers,
                        max_capture_readers,
                        max_text_bytes,
                        holdtime,
                        net_mib,
                        user_mib,
                        uring,
                        uring_entries,
                        uring_user_entries}) {
            free(p);
        }
    }
};

// libfuse's own option, seen on its way through: ipnfs picks another
// default when it is not given (libfuse cannot tell given from default).
constexpr int kKeyMaxThreads = 1;

constexpr std::uint32_t kMaxMib = 1U << 20;

#define IPNFS_OPT(spec, field) \
    { spec, offsetof(RawOptions, field), 0 }
const fuse_opt kOptionSpecs[] = {
    IPNFS_OPT("log_level=%s", log_level),
    IPNFS_OPT("log_file=%s", log_file),
    IPNFS_OPT("log=%s", log),
    IPNFS_OPT("policy=%s", policy),
    IPNFS_OPT("plugins=%s", plugins),
    IPNFS_OPT("ports=%s", ports),
    IPNFS_OPT("mtu=%s", mtu),
    IPNFS_OPT("queue=%s", queue),
    IPNFS_OPT("root_mode=%s", root_mode),
    IPNFS_OPT("config=%s", config),
    IPNFS_OPT("vde_dir=%s", vde_dir),
    IPNFS_OPT("max_event_readers=%s", max_event_readers),
    IPNFS_OPT("max_capture_readers=%s", max_capture_readers),
    IPNFS_OPT("max_text_bytes=%s", max_text_bytes),
    IPNFS_OPT("holdtime=%s", holdtime),
    IPNFS_OPT("net_mib=%s", net_mib),
    IPNFS_OPT("user_mib=%s", user_mib),
    IPNFS_OPT("uring=%s", uring),
    IPNFS_OPT("uring_entries=%s", uring_entries),
    IPNFS_OPT("uring_user_entries=%s", uring_user_entries),
    {"uring", offsetof(RawOptions, uring_bare), 1},
    FUSE_OPT_KEY("max_threads=", kKeyMaxThreads),
    FUSE_OPT_END,
};
#undef IPNFS_OPT

// What fuse_opt_parse fills: the option block first, so kOptionSpecs'
// offsets apply, then the positional words.
struct Parsed {
    RawOptions raw;
    std::vector<std::string> positionals;
    bool max_threads = false;
};

int sort_argument(void* data, const char* arg, int key, fuse_args* /*outargs*/) {
    if (key == kKeyMaxThreads) {
        static_cast<Parsed*>(data)->max_threads = true;
        return 1;  // libfuse's to parse
    }
    if (key == FUSE_OPT_KEY_NONOPT) {
        static_cast<Parsed*>(data)->positionals.emplace_back(arg);
        return 0;  // put back below, once we know which one is the mount point
    }
    return 1;
}

bool take(char*& raw, std::string& out) {
    if (raw == nullptr) return false;
    out = raw;
    free(raw);
    raw = nullptr;
    return true;
}

bool take_number(char*& raw, std::uint32_t min, std::uint32_t max, const char* what,
                 std::uint32_t& out, std::string& error) {
    std::string text;
    if (!take(raw, text)) return true;
    std::uint64_t value = 0;
    if (bus::Status s = bus::parse_uint(text, min, max, what, value); !s.ok()) {
        error = s.reason;
        return false;
    }
    out = static_cast<std::uint32_t>(value);
    return true;
}

}  // namespace

bool parse_options(fuse_args& args, Options& opts, std::string& error) {
    Parsed parsed;
    if (fuse_opt_parse(&args, &parsed, kOptionSpecs, sort_argument) != 0) {
        error = "cannot parse the options";
        return false;
    }
    RawOptions& raw = parsed.raw;
    const std::vector<std::string>& words = parsed.positionals;

    opts.max_threads_given = parsed.max_threads;
    take(raw.log_level, opts.log_level);
    take(raw.log_file, opts.log_file);
    if (std::string where; take(raw.log, where) && !parse_log_target(where, opts.log_target)) {
        error = fmt::format("log={}: not auto, journal, syslog or stderr", where);
        return false;
    }
    take(raw.policy, opts.policy);
    if (std::string dir; take(raw.plugins, dir)) {
        // Absolute: the daemon leaves its working directory when it detaches.
        std::error_code ec;
        std::filesystem::path path = std::filesystem::canonical(dir, ec);
        if (ec || !std::filesystem::is_directory(path)) {
            error = fmt::format("plugins={}: not a directory{}", dir,
                                ec ? fmt::format(" ({})", ec.message()) : "");
            return false;
        }
        opts.plugins = path.string();
    }
    if (std::string file; take(raw.config, file)) {
        // Absolute, as plugins=; read now so a missing file fails the mount.
        std::error_code ec;
        std::filesystem::path path = std::filesystem::canonical(file, ec);
        if (ec || !std::filesystem::is_regular_file(path) || access(path.c_str(), R_OK) != 0) {
            error = fmt::format("config={}: not a readable file{}", file,
                                ec ? fmt::format(" ({})", ec.message()) : "");
            return false;
        }
        opts.config = path.string();
    }
    if (std::string dir; take(raw.vde_dir, dir)) {
        // Opened (and made) at start by netdev::VdeDir, which says what is wrong.
        if (dir.empty() || dir.front() != '/') {
            error = fmt::format("vde_dir={}: not an absolute path", dir);
            return false;
        }
        opts.vde_dir = dir;
        opts.vde_dir_given = true;
    }
    std::uint32_t root_mode = opts.root_mode;
    std::string mode_text;
    if (take(raw.root_mode, mode_text)) {
        char* end = nullptr;
        unsigned long v = std::strtoul(mode_text.c_str(), &end, 8);
        if (mode_text.empty() || *end != '\0' || v > 07777) {
            error = fmt::format("root_mode must be octal permission bits, not '{}'", mode_text);
            return false;
        }
        root_mode = static_cast<std::uint32_t>(v);
    }
    opts.root_mode = root_mode;
    if (!take_number(raw.ports, 1, bus::Limits::kMaxPorts, "ports", opts.defaults.ports, error) ||
        !take_number(raw.mtu, 1, bus::Limits::kMaxMtu, "mtu", opts.defaults.mtu, error) ||
        !take_number(raw.queue, 1, bus::Limits::kMaxQueue, "queue", opts.defaults.queue, error) ||
        !take_number(raw.max_event_readers, 0, bus::Bounds::kMax, "max_event_readers",
                     opts.bounds.event_readers, error) ||
        !take_number(raw.max_capture_readers, 0, bus::Bounds::kMax, "max_capture_readers",
                     opts.bounds.capture_readers, error) ||
        !take_number(raw.max_text_bytes, 0, std::numeric_limits<std::uint32_t>::max(),
                     "max_text_bytes", opts.bounds.text_bytes, error) ||
        !take_number(raw.holdtime, 0, bus::Limits::kMaxHoldtime, "holdtime", opts.defaults.holdtime,
                     error)) {
        return false;
    }
    // In MiB, 0 for none; up to 1 TiB.
    std::uint32_t net_mib = opts.byte_limits.network >> 20;
    std::uint32_t user_mib = opts.byte_limits.owner >> 20;
    if (!take_number(raw.net_mib, 0, kMaxMib, "net_mib", net_mib, error) ||
        !take_number(raw.user_mib, 0, kMaxMib, "user_mib", user_mib, error)) {
        return false;
    }
    if (raw.uring_bare != 0) opts.uring.mode = fs::UringMode::on;
    if (std::string mode; take(raw.uring, mode)) {
        if (mode == "on") {
            opts.uring.mode = fs::UringMode::on;
        } else if (mode == "off") {
            opts.uring.mode = fs::UringMode::off;
        } else if (mode == "auto") {
            opts.uring.mode = fs::UringMode::automatic;
        } else {
            error = fmt::format("uring={}: not on, off or auto", mode);
            return false;
        }
    }
    if (!take_number(raw.uring_entries, 16, 1U << 20, "uring_entries", opts.uring.max_entries,
                     error) ||
        !take_number(raw.uring_user_entries, 1, 1U << 20, "uring_user_entries",
                     opts.uring.max_user_entries, error)) {
        return false;
    }
    opts.byte_limits.network = std::uint64_t{net_mib} << 20;
    opts.byte_limits.owner = std::uint64_t{user_mib} << 20;

    if (words.size() > 2) {
        error = fmt::format("too many arguments: '{}'", words[2]);
        return false;
    }
    if (words.size() == 2) opts.source = words[0];
    if (!words.empty()) fuse_opt_add_arg(&args, words.back().c_str());
    return true;
}

void print_usage(const char* prog) {
    std::printf(
        "usage: %s [SOURCE] MOUNTPOINT [options]\n"
        "       mount -t fuse.ipnfs SOURCE MOUNTPOINT [-o options]\n"
        "       %s top [MOUNT] [-d SECONDS] [-n NETWORK] [-s KEY] [-r] [--once]\n"
        "\n"
        "Mounts message buses as files: mkdir a network, open its port files,\n"
        "write() sends one message, read() receives one.\n"
        "\n"
        "ipnfs options:\n"
        "    -o log_level=LEVEL     trace, debug, info (default), warn, error, off\n"
        "    -o log=WHERE           journal (fields of their own), syslog, stderr (with -f)\n"
        "                           or auto (default: the journal when stderr is systemd's\n"
        "                           journal stream, else stderr with -f, else syslog)\n"
        "    -o log_file=PATH       log to this file instead\n"
        "    -o policy=NAME         policy of new networks (default hub)\n"
        "    -o plugins=DIR         load policy plugins (NAME.so) from DIR\n"
        "    -o ports=N             ports of new networks (default 32)\n"
        "    -o mtu=N               MTU of new networks in bytes (default 1514)\n"
        "    -o queue=N             per-port queue length of new networks (default 64)\n"
        "    -o holdtime=MS         lossless networks: how long one port may hold\n"
        "                           senders back (default 5000; 0: for ever)\n"
        "    -o net_mib=N           MiB of queued messages one network may hold\n"
        "                           (default 64; 0: no limit)\n"
        "    -o user_mib=N          MiB of queued messages all networks of one non-root\n"
        "                           owner may hold together (default 256; 0: no limit)\n"
        "    -o uring[=on|off|auto] FUSE over io_uring where the kernel allows it\n"
        "                           (default off; see ipnfs(8))\n"
        "    -o uring_entries=N     ring entries of the mount, split between CPUs\n"
        "                           (default 32768)\n"
        "    -o uring_user_entries=N  parked requests one non-root user may hold on\n"
        "                           the ring (default uring_entries/8)\n"
        "    -o root_mode=OCTAL     permissions of the mount root (default 0755)\n"
        "    -o config=FILE         make the networks FILE declares at mount\n"
        "    -o vde_dir=DIR         root's directory of VDE endpoints (default /run/ipnfs)\n"
        "    -o max_event_readers=N   events readers per network (default 16)\n"
        "    -o max_capture_readers=N capture readers per network (default 8)\n"
        "    -o max_text_bytes=N    ctl/stats/metrics text held per network, and ipnfs.prom's\n"
        "                           (default 16777216)\n"
        "    --dump MOUNTPOINT      print the mounted networks in that file's format\n"
        "    top [MOUNT] [ARGS]     a live view of the networks' message and byte rates,\n"
        "                           drops and queues (ipnfs top --help); so a SOURCE\n"
        "                           cannot be the word top\n"
        "\n",
        prog, prog);
}

}  // namespace ipnfs::daemon
