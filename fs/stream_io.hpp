// Marks port opens FOPEN_STREAM, which libfuse 3.14 cannot express.  Without
// it the kernel serializes read() and write() on a shared descriptor through
// the file position lock, so a thread blocked reading a port would stall
// another thread writing through the same descriptor.
#pragma once

#include <fuse_lowlevel.h>

namespace ipnfs::fs {

class UringTransport;

// Routes the session's replies through a writev hook; call after
// fuse_session_mount().  Returns false (and logs why) if libfuse refused.
// With `uring`, the hooks also carry the io_uring transport: it sees each
// request read from /dev/fuse and answers ring requests through the ring.
bool install_stream_io(fuse_session* se, UringTransport* uring = nullptr);

// Replies to an open as fuse_reply_open() does, adding FOPEN_STREAM.
void reply_open_stream(fuse_req_t req, const fuse_file_info* fi);

}  // namespace ipnfs::fs
