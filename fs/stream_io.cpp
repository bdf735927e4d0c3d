#include "fs/stream_io.hpp"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bus/log.hpp"
#include "fs/uring_transport.hpp"

namespace ipnfs::fs {

namespace {

// fuse_reply_open() writes its reply on the calling thread, so a flag on that
// thread names the one reply to patch.
thread_local bool t_stream_reply = false;

// The io_uring transport, if the mount asked for one: set before the session
// reads its first request, kept until the session is gone.
UringTransport* g_uring = nullptr;

ssize_t hooked_writev(int fd, struct iovec* iov, int count, void* /*userdata*/) {
    if (t_stream_reply && count == 2 && iov[0].iov_len == sizeof(fuse_out_header) &&
        iov[1].iov_len == sizeof(fuse_open_out)) {
        const auto* header = static_cast<const fuse_out_header*>(iov[0].iov_base);
        if (header->error == 0) {
            static_cast<fuse_open_out*>(iov[1].iov_base)->open_flags |=
                FOPEN_STREAM | FOPEN_PARALLEL_DIRECT_WRITES;
        }
    }
    ssize_t written = 0;
    if (g_uring != nullptr && g_uring->reply(fd, iov, count, written)) return written;
    return ::writev(fd, iov, count);
}

ssize_t plain_read(int fd, void* buf, size_t len, void* /*userdata*/) {
    ssize_t n = ::read(fd, buf, len);
    if (g_uring != nullptr && n > 0) g_uring->saw_request(buf, static_cast<size_t>(n));
    return n;
}

}  // namespace

bool install_stream_io(fuse_session* se, UringTransport* uring) {
    g_uring = uring;
    static const fuse_custom_io io{hooked_writev, plain_read, nullptr, nullptr};
    // fuse_session_mount() opened the channel; handing the same descriptor
    // back keeps libfuse's unmount path while the hooks carry the traffic.
    int rc = fuse_session_custom_io(se, &io, fuse_session_fd(se));
    if (rc != 0) {
        bus::log::error({"mount-error"}, "cannot install the stream I/O hook: {}",
                        std::strerror(-rc));
        return false;
    }
    return true;
}

void reply_open_stream(fuse_req_t req, const fuse_file_info* fi) {
    t_stream_reply = true;
    fuse_reply_open(req, fi);
    t_stream_reply = false;
}

}  // namespace ipnfs::fs
