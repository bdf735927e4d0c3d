// ipnfs: mount message buses as files.
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "cluster/service.hpp"
#include "config/config_apply.hpp"
#include "config/config_dump.hpp"
#include "daemon/background.hpp"
#include "daemon/crash_report.hpp"
#include "daemon/help.hpp"
#include "daemon/log.hpp"
#include "daemon/options.hpp"
#include "daemon/ring_guard.hpp"
#include "daemon/unmount_watch.hpp"
#include "fs/caller.hpp"
#include "fs/ops.hpp"
#include "fs/stream_io.hpp"
#include "fs/tree.hpp"
#include "fs/uring_transport.hpp"
#include "netdev/attachments.hpp"
#include "netdev/engine.hpp"
#include "netdev/vde_dir.hpp"
#include "policies/catalog.hpp"

namespace {

// mount options are comma-separated: a comma in the source must be escaped.
std::string escape_option(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == ',' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// libfuse's auto_unmount, among the options passed through to it.
bool wants_auto_unmount(const fuse_args& args) {
    for (int i = 0; i < args.argc; ++i)
        if (std::strstr(args.argv[i], "auto_unmount") != nullptr) return true;
    return false;
}

int run(int argc, char** argv) {
    using namespace ipnfs;
    fuse_args args = FUSE_ARGS_INIT(argc, argv);
    fuse_cmdline_opts cmd{};
    struct Cleanup {
        fuse_args& args;
        fuse_cmdline_opts& cmd;
        ~Cleanup() {
            free(cmd.mountpoint);
            fuse_opt_free_args(&args);
        }
    } cleanup{args, cmd};
    daemon::Options opts;
    std::string error;
    if (!daemon::parse_options(args, opts, error)) {
        std::fprintf(stderr, "ipnfs: %s\n", error.c_str());
        return 2;
    }
    if (fuse_parse_cmdline(&args, &cmd) != 0) return 2;
    if (cmd.show_help) {
        daemon::print_usage(argv[0]);
        daemon::print_ctl_help(opts.plugins);
        fuse_cmdline_help();
        fuse_lowlevel_help();
        return 0;
    }
    if (cmd.show_version) {
        std::printf("ipnfs version %s\n", IPNFS_VERSION);
        fuse_lowlevel_version();
        return 0;
    }
    if (cmd.mountpoint == nullptr) {
        std::fprintf(stderr, "ipnfs: no mount point given (see --help)\n");
        return 2;
    }
    if (cmd.debug) opts.log_level = "debug";
    if (!daemon::setup_logging(opts.log_level, opts.log_target, opts.log_file, cmd.foreground != 0,
                               error)) {
        std::fprintf(stderr, "ipnfs: %s\n", error.c_str());
        return 2;
    }
    daemon::install_crash_report(opts.log_file);
    policies::Catalog catalog(opts.plugins);
    // A policy that cannot be made stops the mount, not the first mkdir.
    if (bus::Status s = catalog.make(opts.policy).status; !s.ok()) {
        std::fprintf(stderr, "ipnfs: policy=%s: %s\n", opts.policy.c_str(), s.reason.c_str());
        return 2;
    }
    // Before the mount: opening it after could look into the mount itself.
    // The default may be out of reach (no /run in a chroot, a daemon that is
    // not root): VDE is off then, and `vde` says why.
    netdev::VdeDir vde_dir;
    if (bus::Status s = netdev::VdeDir::open(opts.vde_dir, vde_dir); !s.ok()) {
        if (opts.vde_dir_given) {
            std::fprintf(stderr, "ipnfs: vde_dir=%s: %s\n", opts.vde_dir.c_str(), s.reason.c_str());
            return 2;
        }
        bus::log::warn({"vde-off"}, "VDE endpoints are off: {}", s.reason);
        vde_dir.set_off(s.reason);
    }
    // The kernel checks every access against the mode bits with the caller's
    // credentials; the daemon only adds what it cannot check.
    fuse_opt_add_arg(&args, "-odefault_permissions");
    fuse_opt_add_arg(&args, fmt::format("-ofsname={}", escape_option(opts.source)).c_str());
    if (!cmd.nodefault_subtype) fuse_opt_add_arg(&args, "-osubtype=ipnfs");

    // From here on, what is made must live in the daemon's own process.
    daemon::Background background(cmd.foreground != 0);
    // Declared before the tree: networks end their attachments through it.
    netdev::Engine engine;
    netdev::Cables cables(engine);
    netdev::AttachmentsMaker attachments(engine, cables, vde_dir);
    // Declared before the tree too: a network leaves its group through it.
    // It reaches the local corosync only when a network asks for cluster scope.
    cluster::Service cluster_service(cluster::make_cpg_engine());
    fs::Tree tree(catalog, opts.defaults, opts.policy,
                  fs::Attr{static_cast<mode_t>(opts.root_mode), getuid(), getgid(), {}},
                  &attachments, opts.bounds, opts.byte_limits);
    tree.set_replicas(&cluster_service);
    if (!opts.config.empty() &&
        !config::apply_file(tree, opts.config, fs::daemon_caller(), error)) {
        std::fprintf(stderr, "ipnfs: %s\n", error.c_str());
        tree.hang_up_all();  // TAPs, VDE sockets and cables made so far go now
        return 2;
    }
    fs::Context context{tree, {}};
    // FUSE over io_uring: what the kernel allows is known now; whether the
    // kernel offers it to this mount is known at INIT (fs/uring_transport.cpp).
    std::unique_ptr<fs::UringTransport> uring;
    if (opts.uring.mode != fs::UringMode::off) {
        if (std::string problem = fs::uring_problem(); !problem.empty()) {
            if (opts.uring.mode == fs::UringMode::on) {
                std::fprintf(stderr, "ipnfs: uring=on: %s\n", problem.c_str());
                tree.hang_up_all();
                return 2;
            }
            bus::log::info({"uring-fallback"}, "requests go through /dev/fuse: {}", problem);
        }
    }
    const bool auto_unmount = wants_auto_unmount(args);  // before libfuse takes it out
    fuse_session* se =
        fuse_session_new(&args, &fs::operations(), sizeof(fuse_lowlevel_ops), &context);
    if (se == nullptr) return 2;  // libfuse said why
    if (opts.uring.mode != fs::UringMode::off && fs::uring_problem().empty())
        uring = std::make_unique<fs::UringTransport>(se, opts.uring);
    context.uring = uring.get();
    int rc = 1;
    if (fuse_set_signal_handlers(se) == 0) {
        if (fuse_session_mount(se, cmd.mountpoint) == 0) {
            bool unmounted = false;  // elsewhere: the mount point is not ours any more
            // auto_unmount after a SIGKILL needs help on the ring
            // (daemon/ring_guard.hpp).
            daemon::RingGuard guard;
            if (uring && auto_unmount) {
                if (std::string why; !guard.start(cmd.mountpoint, why))
                    bus::log::warn({"uring-guard"},
                                   "auto_unmount may not follow a SIGKILL on the ring: {}", why);
            }
            if (fs::install_stream_io(se, uring.get())) {
                bus::log::info({"mount"}, "mounted {} on {}", opts.source, cmd.mountpoint);
                background.detach();
                std::optional<daemon::UnmountWatch> watch(std::in_place, cmd.mountpoint,
                                                          pthread_self());
                if (cmd.singlethread) {
                    rc = fuse_session_loop(se);
                } else {
                    fuse_loop_config* loop = fuse_loop_cfg_create();
                    fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
                    // libfuse marks "not given" as UINT_MAX; keep its default then.
                    if (cmd.max_idle_threads != UINT_MAX) {
                        fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
                    }
                    // No request ever holds a worker while it waits (reads
                    // and lossless writes park in the bus), so a worker per
                    // CPU keeps them all busy; libfuse's 10 only add wakeups
                    // (docs/benchmark.md: framed 1->16 twice as fast).
                    fuse_loop_cfg_set_max_threads(
                        loop, opts.max_threads_given
                                  ? cmd.max_threads
                                  : std::max(2U, std::thread::hardware_concurrency()));
                    rc = fuse_session_loop_mt(se, loop);
                    fuse_loop_cfg_destroy(loop);
                }
                unmounted = watch->gone();
                watch.reset();  // while libfuse's signal handlers are still there
                // Requests through the ring stop reaching the tree, as the
                // loop's end stopped those through /dev/fuse.
                if (uring) uring->quiesce();
                // Parked readers get end of file before the mount goes away.
                tree.hang_up_all();
                context.files.close_all();
                // Their answers went through the ring; now its threads end.
                if (uring) uring->stop();
                bus::log::info({"unmount"}, "unmounting {}", cmd.mountpoint);
            }
            guard.dismiss();
            if (!unmounted) fuse_session_unmount(se);
        }
        fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
    // libfuse's loop returns the number of the signal that stopped it: a
    // requested stop, not a failure.
    bool stopped = rc == SIGTERM || rc == SIGINT || rc == SIGHUP;
    return rc == 0 || stopped ? 0 : 1;
}

// `ipnfs top ARGS`: the live view (tools/ipnfs-top), a Python program
// installed next to this binary, in this process's place.  Next to the
// running binary first, so a build tree or a package installed under another
// prefix runs its own copy; then where this build installs it.
int exec_top(int argc, char** argv) {
    std::vector<std::string> candidates;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        std::string path(exe, static_cast<std::size_t>(n));
        candidates.push_back(path.substr(0, path.rfind('/') + 1) + "ipnfs-top");
    }
    if (candidates.empty() || candidates[0] != IPNFS_TOP) candidates.emplace_back(IPNFS_TOP);
    std::vector<char*> args{const_cast<char*>("ipnfs-top")};
    for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    for (const std::string& path : candidates) {
        if (access(path.c_str(), F_OK) != 0) continue;
        execv(path.c_str(), args.data());
        int err = errno;
        // The program is there: ENOENT is its interpreter's absence.
        std::fprintf(stderr, "ipnfs: top: %s: %s%s\n", path.c_str(), std::strerror(err),
                     err == ENOENT ? " (it needs /usr/bin/python3: install python3)" : "");
        return 126;
    }
    std::string looked = candidates[0];
    for (std::size_t i = 1; i < candidates.size(); ++i) looked += " and " + candidates[i];
    std::fprintf(stderr, "ipnfs: top: ipnfs-top is not installed (looked for %s)\n",
                 looked.c_str());
    return 127;
}

}  // namespace

int main(int argc, char** argv) {
    // Clients of a mounted tree, not mounts: before libfuse sees the words.
    if (argc >= 2 && std::string_view(argv[1]) == "--dump")
        return ipnfs::config::dump_main(argc, argv);
    if (argc >= 2 && std::string_view(argv[1]) == "top") return exec_top(argc, argv);
    return run(argc, argv);
}
