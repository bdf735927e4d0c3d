// nullfs: the per-request floor of a FUSE filesystem, for bench/run.sh.
//
// One file, /null, opened exactly as ipnfs opens a port file (direct_io,
// nonseekable, stream, parallel direct writes), on the same multithreaded
// libfuse loop.  A write is answered "all written" and a read with as many
// zero bytes as it asked for: no state, no lock, no copy.  Whatever a
// write+read pair costs here, every FUSE message bus pays at least that.
//
// Usage: ipnfs-nullfs MOUNTPOINT [-f] [-o clone_fd] [... libfuse options]
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

constexpr fuse_ino_t kFileIno = 2;
constexpr const char* kFileName = "null";
// Larger than any read the kernel sends (max_read is at most 1 MiB).
constexpr std::size_t kZeros = 1U << 20;
char g_zeros[kZeros];

struct stat attr_of(fuse_ino_t ino) {
    struct stat st {};
    st.st_ino = ino;
    st.st_uid = getuid();
    st.st_gid = getgid();
    if (ino == FUSE_ROOT_ID) {
        st.st_mode = S_IFDIR | 0755;
        st.st_nlink = 2;
    } else {
        st.st_mode = S_IFREG | 0666;
        st.st_nlink = 1;
    }
    return st;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != FUSE_ROOT_ID || std::strcmp(name, kFileName) != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fuse_entry_param e{};
    e.ino = kFileIno;
    e.attr = attr_of(kFileIno);
    e.entry_timeout = 1.0;  // as ipnfs: names cached, attributes not
    fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
    if (ino != FUSE_ROOT_ID && ino != kFileIno) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st = attr_of(ino);
    fuse_reply_attr(req, &st, 0);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* /*attr*/, int /*to_set*/,
                fuse_file_info* fi) {
    op_getattr(req, ino, fi);  // O_TRUNC lands here: sizes mean nothing
}

// The open reply is patched on its way out (as ipnfs's fs/stream_io.cpp
// does): libfuse 3.14 cannot set FOPEN_STREAM, and without it the kernel
// would treat the two files differently.
thread_local bool t_open_reply = false;

ssize_t hooked_writev(int fd, struct iovec* iov, int count, void* /*userdata*/) {
    if (t_open_reply && count == 2 && iov[1].iov_len == sizeof(fuse_open_out)) {
        static_cast<fuse_open_out*>(iov[1].iov_base)->open_flags |=
            FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES;
    }
    return ::writev(fd, iov, count);
}

ssize_t plain_read(int fd, void* buf, size_t len, void* /*userdata*/) {
    return ::read(fd, buf, len);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (ino != kFileIno) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fi->noflush = 1;
    t_open_reply = true;
    fuse_reply_open(req, fi);
    t_open_reply = false;
}

void op_read(fuse_req_t req, fuse_ino_t /*ino*/, std::size_t size, off_t /*off*/,
             fuse_file_info* /*fi*/) {
    fuse_reply_buf(req, g_zeros, size < kZeros ? size : kZeros);
}

void op_write(fuse_req_t req, fuse_ino_t /*ino*/, const char* /*buf*/, std::size_t size,
              off_t /*off*/, fuse_file_info* /*fi*/) {
    fuse_reply_write(req, size);
}

void op_release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
    fuse_reply_err(req, 0);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off,
                fuse_file_info* /*fi*/) {
    if (ino != FUSE_ROOT_ID) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    char buf[512];
    std::size_t used = 0;
    const char* names[] = {".", "..", kFileName};
    const fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, kFileIno};
    for (off_t i = off; i < 3; ++i) {
        struct stat st = attr_of(inos[i]);
        std::size_t room = size < sizeof buf ? size : sizeof buf;
        std::size_t need = fuse_add_direntry(req, buf + used, room - used, names[i], &st, i + 1);
        if (need > room - used) break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
}

fuse_lowlevel_ops make_ops() {
    fuse_lowlevel_ops ops{};
    ops.lookup = op_lookup;
    ops.getattr = op_getattr;
    ops.setattr = op_setattr;
    ops.open = op_open;
    ops.read = op_read;
    ops.write = op_write;
    ops.release = op_release;
    ops.readdir = op_readdir;
    return ops;
}

}  // namespace

int main(int argc, char** argv) {
    // libfuse cannot tell a given max_threads from its default of 10.
    bool max_threads_given = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strstr(argv[i], "max_threads=") != nullptr) max_threads_given = true;
    }
    fuse_args args = FUSE_ARGS_INIT(argc, argv);
    fuse_cmdline_opts cmd{};
    if (fuse_parse_cmdline(&args, &cmd) != 0) return 2;
    if (cmd.show_help || cmd.mountpoint == nullptr) {
        std::printf("usage: %s MOUNTPOINT [-f] [-o clone_fd] [libfuse options]\n", argv[0]);
        return cmd.show_help ? 0 : 2;
    }
    static const fuse_lowlevel_ops ops = make_ops();
    fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
    if (se == nullptr) return 2;
    int rc = 1;
    if (fuse_set_signal_handlers(se) == 0) {
        if (fuse_session_mount(se, cmd.mountpoint) == 0) {
            static const fuse_custom_io io{hooked_writev, plain_read, nullptr, nullptr};
            if (fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0) {
                fuse_daemonize(cmd.foreground);
                // The same loop configuration as ipnfs's daemon/main.cpp: a worker
                // per CPU (at least 2) unless -o max_threads says otherwise.
                fuse_loop_config* loop = fuse_loop_cfg_create();
                fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
                if (cmd.max_idle_threads != UINT_MAX) {
                    fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
                }
                fuse_loop_cfg_set_max_threads(
                    loop, max_threads_given ? cmd.max_threads
                                            : std::max(2U, std::thread::hardware_concurrency()));
                rc = fuse_session_loop_mt(se, loop);
                fuse_loop_cfg_destroy(loop);
            }
            fuse_session_unmount(se);
        }
        fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
    std::free(cmd.mountpoint);
    fuse_opt_free_args(&args);
    return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}
