#include "fs/ops.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <string_view>

#include "bus/log.hpp"
#include "fs/caller.hpp"
#include "fs/capture.hpp"
#include "fs/framing.hpp"
#include "fs/handle.hpp"
#include "fs/metrics_files.hpp"
#include "fs/parked_read.hpp"
#include "fs/parked_write.hpp"
#include "fs/rest.hpp"
#include "fs/stream_io.hpp"
#include "include/ipnfs.h"

namespace ipnfs::fs {

namespace {

// Names are looked up again at most this often; attributes are never cached,
// so chmod takes effect at once for the kernel's permission checks.
constexpr double kEntryTimeout = 1.0;

Context& context(fuse_req_t req) {
    return *static_cast<Context*>(fuse_req_userdata(req));
}
Tree& tree(fuse_req_t req) {
    return context(req).tree;
}
// fh is a 64-bit integer in libfuse's ABI; ours always holds a Handle*.
Handle& handle(const fuse_file_info* fi) {
    return *reinterpret_cast<Handle*>(fi->fh);  // NOLINT(performance-no-int-to-ptr)
}
int errno_of(const bus::Status& s) {
    return static_cast<int>(s.code);
}

// One adapter for every entry point: an exception escaping a handler becomes
// ENOMEM or EIO and a log line, never a crash of the daemon.  Handlers reply
// last, so a throw always happens before any reply.
template <typename F>
void guarded(fuse_req_t req, const char* op, F&& body) noexcept {
    try {
        body();
    } catch (const std::bad_alloc&) {
        bus::log::error({"internal-error"}, "{}: out of memory", op);
        fuse_reply_err(req, ENOMEM);
    } catch (const std::exception& e) {
        bus::log::error({"internal-error"}, "{}: {}", op, e.what());
        fuse_reply_err(req, EIO);
    }
}

std::uint32_t caller_uid(fuse_req_t req) {
    return fuse_req_ctx(req)->uid;
}

void reply_error(fuse_req_t req, const char* op, const bus::Status& s) {
    bus::log::limited(spdlog::level::debug, bus::log::Fields{"request-error"}.by(caller_uid(req)),
                      "{}: {}", op, s.reason);
    fuse_reply_err(req, errno_of(s));
}

void reply_entry(fuse_req_t req, Ino ino, const Node& node) {
    fuse_entry_param e{};
    e.ino = ino;
    e.attr = tree(req).stat(node);
    e.entry_timeout = kEntryTimeout;
    fuse_reply_entry(req, &e);
}

std::optional<Node> resolve_or_reply(fuse_req_t req, fuse_ino_t ino) {
    auto node = tree(req).resolve(ino);
    if (!node) fuse_reply_err(req, ENOENT);
    return node;
}

// Asynchronous direct I/O (io_submit on an O_DIRECT descriptor, io_uring)
// would make every read a background request, and the kernel sends at most
// max_background (12) of those at a time, FUSE_RELEASE included: a dozen
// reads parked on empty ports would hold back every close on the mount.
// Without FUSE_CAP_ASYNC_DIO the kernel runs such a read as an ordinary
// request in the submitter's context, which waits there, like read().
void op_init(void* /*userdata*/, fuse_conn_info* conn) {
    conn->want &= ~FUSE_CAP_ASYNC_DIO;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "lookup", [&] {
        auto dir = resolve_or_reply(req, parent);
        if (!dir) return;
        Ino ino = 0;
        Node node;
        if (bus::Status s = tree(req).lookup(*dir, name, ino, node); !s.ok()) {
            fuse_reply_err(req, errno_of(s));
            return;
        }
        reply_entry(req, ino, node);
    });
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/) {
    guarded(req, "getattr", [&] {
        auto node = resolve_or_reply(req, ino);
        if (!node) return;
        struct stat st = tree(req).stat(*node);
        fuse_reply_attr(req, &st, 0);
    });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                fuse_file_info* /*fi*/) {
    guarded(req, "setattr", [&] {
        auto node = resolve_or_reply(req, ino);
        if (!node) return;
        // The kernel has checked ownership (default_permissions).  Sizes mean
        // nothing on a bus (O_TRUNC from `echo > port` lands here) and times
        // are not kept: both are accepted and ignored.
        struct stat st = tree(req).stat(*node);
        if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
            Attr a{st.st_mode, st.st_uid, st.st_gid, st.st_ctim};
            if ((to_set & FUSE_SET_ATTR_MODE) != 0) a.mode = attr->st_mode;
            if ((to_set & FUSE_SET_ATTR_UID) != 0) a.uid = attr->st_uid;
            if ((to_set & FUSE_SET_ATTR_GID) != 0) a.gid = attr->st_gid;
            tree(req).set_attr(*node, a);
            st = tree(req).stat(*node);
        }
        fuse_reply_attr(req, &st, 0);
    });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    guarded(req, "mkdir", [&] {
        if (parent != kRootIno) {
            fuse_reply_err(req, EPERM);  // a network's files are fixed
            return;
        }
        const fuse_ctx* caller = fuse_req_ctx(req);
        Attr attr{mode, caller->uid, caller->gid, {}};
        Ino ino = 0;
        Node node;
        if (bus::Status s = tree(req).mkdir(name, attr, ino, node); !s.ok()) {
            bus::log::limited(spdlog::level::info,
                              bus::log::Fields{name, "network-create-error"}.by(caller->uid), "{}",
                              s.reason);
            fuse_reply_err(req, errno_of(s));
            return;
        }
        bus::log::limited(spdlog::level::info,
                          bus::log::Fields{name, "network-create"}.by(caller->uid), "created");
        reply_entry(req, ino, node);
    });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "rmdir", [&] {
        if (parent != kRootIno) {
            fuse_reply_err(req, ENOTDIR);
            return;
        }
        if (bus::Status s = tree(req).rmdir(name); !s.ok()) {
            reply_error(req, "rmdir", s);
            return;
        }
        bus::log::limited(spdlog::level::info,
                          bus::log::Fields{name, "network-remove"}.by(caller_uid(req)), "removed");
        fuse_reply_err(req, 0);
    });
}

// Files cannot be created, removed or renamed: the tree's shape follows the
// networks (mkdir/rmdir) and their port count (ctl).
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
    fuse_reply_err(req, EPERM);
}
void op_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
    fuse_reply_err(req, EPERM);
}
void op_unlink(fuse_req_t req, fuse_ino_t, const char*) {
    fuse_reply_err(req, EPERM);
}
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int) {
    fuse_reply_err(req, EPERM);
}
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
    fuse_reply_err(req, EPERM);
}
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
    fuse_reply_err(req, EPERM);
}

// What opening the file in `node` does on the bus, by its row's `opens`.
bus::Status connect(fuse_req_t req, Handle& h, const Node& node, bool reads, bool writes) {
    bus::Network& net = node.dir->net();
    switch (node.file->opens) {
        case Opens::port:
            return net.connect(node.port, reads, writes, h.conn, false, sender_of(req));
        case Opens::any_port:
            return net.connect_any(reads, writes, h.conn, false, sender_of(req));
        case Opens::observer:
            return net.connect_observer(h.conn);
        case Opens::capture:
            return open_capture(h);
        case Opens::text:
            break;
    }
    return bus::Status::success();
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "open", [&] {
        auto node = resolve_or_reply(req, ino);
        if (!node) return;
        int mode = fi->flags & O_ACCMODE;
        bool reads = mode != O_WRONLY;
        bool writes = mode != O_RDONLY;
        if (node->file == nullptr) {
            fuse_reply_err(req, EISDIR);  // directories are opened with opendir
            return;
        }
        if (node->file->read_only && writes) {
            fuse_reply_err(req, EACCES);  // even for root: these are only ever read
            return;
        }
        auto h = std::make_unique<Handle>();
        h->file = node->file;
        h->dir = node->dir;
        h->opener = opener_of(req);
        if (h->connected()) {
            if (node->file->opens != Opens::capture) h->rest = std::make_shared<Rest>();
            if (bus::Status s = connect(req, *h, *node, reads, writes); !s.ok()) {
                reply_error(req, "open", s);
                return;
            }
            bus::log::limited(spdlog::level::debug,
                              bus::log::Fields{node->dir->net().name(), h->conn.id, "port-open"}.by(
                                  h->opener.uid),
                              "connected ({}{})", reads ? "r" : "", writes ? "w" : "");
        }
        bool stream = h->connected();
        fi->direct_io = 1;
        fi->nonseekable = stream ? 1 : 0;
        fi->noflush = 1;
        fi->fh = reinterpret_cast<std::uint64_t>(context(req).files.add(std::move(h)));
        if (stream) {
            reply_open_stream(req, fi);
        } else {
            fuse_reply_open(req, fi);
        }
    });
}

void op_release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi) {
    guarded(req, "release", [&] {
        std::unique_ptr<Handle> h = context(req).files.remove(&handle(fi));
        close_handle(*h);
        fuse_reply_err(req, 0);
    });
}

// The text a read at offset 0 of `h` renders now, shared with other
// descriptors that read the same (null: ipnfs.prom's budget is spent).
TextSnapshots::Text render_text(fuse_req_t req, Handle& h) {
    using File = TextSnapshots::File;
    switch (h.file->kind) {
        case Kind::ctl:
            return h.dir->texts().share(File::ctl, h.dir->net().describe());
        case Kind::metrics:
            return h.dir->texts().share(File::metrics, network_metrics(*h.dir));
        case Kind::root_metrics: {
            // Who may see which network: the opener's credentials, never
            // the reader's (a descriptor handed on shows the same).
            const Context& c = context(req);
            DaemonCounts daemon;
            daemon.open_files = c.files.size();
            if (c.uring != nullptr) daemon.ring = c.uring->stats();
            std::string fresh = root_metrics(tree(req), h.opener, daemon);
            return tree(req).root_texts().share(File::root_metrics, std::move(fresh), false);
        }
        default:
            return h.dir->texts().share(File::stats, h.dir->net().stats());
    }
}

void read_text(fuse_req_t req, Handle& h, std::size_t size, off_t off) {
    // Replied from a copy, after the handle's lock is released: once the
    // kernel has the reply the reader may close, and the release may free
    // the handle before this thread returns from fuse_reply_buf.
    std::string slice;
    bool spent = false;
    {
        MutexLock lock(h.text_mu);
        // A pread past 0 before any read at 0 renders too: never a false EOF.
        if (off == 0 || !h.text) h.text = render_text(req, h);
        if (h.text) {
            auto text = std::string_view(*h.text);
            auto start = std::min(static_cast<std::size_t>(off), text.size());
            slice = text.substr(start, std::min(size, text.size() - start));
        } else {
            spent = true;
        }
    }
    if (spent) {
        reply_error(req, "read",
                    bus::Status::error(std::errc::resource_unavailable_try_again,
                                       "ipnfs.prom: the texts open descriptors hold reached "
                                       "-o max_text_bytes"));
        return;
    }
    fuse_reply_buf(req, slice.data(), slice.size());
}

void op_read(fuse_req_t req, fuse_ino_t /*ino*/, std::size_t size, off_t off, fuse_file_info* fi) {
    guarded(req, "read", [&] {
        Handle& h = handle(fi);
        if (h.file->opens == Opens::text) {
            read_text(req, h, size, off);
            return;
        }
        if (!h.conn.reads) {
            fuse_reply_err(req, EBADF);
            return;
        }
        if (h.file->opens == Opens::capture) {
            read_capture(req, h, size, (fi->flags & O_NONBLOCK) != 0);
            return;
        }
        ReadRequest read{h.dir, h.conn, size, h.framed.load(), nullptr, h.creds.load(), h.rest};
        if (read.framed && size < framed_min_read(read.creds, h.dir->net().clustered())) {
            // not even one record header (and credentials, and node) fits
            fuse_reply_err(req, EINVAL);
            return;
        }
        // Fast path: a kept rest or a queued message needs no waiter and no
        // interrupt hook.
        bool nonblock = (fi->flags & O_NONBLOCK) != 0;
        if (read.framed) {
            bus::Received got = h.dir->net().receive(h.conn, nullptr);
            if (got.outcome != bus::Outcome::would_block || nonblock) {
                reply_received(req, read, got);
                return;
            }
        } else {
            Piece piece;
            bus::Outcome now = read.rest->read_now(h.dir->net(), h.conn, size, read.creds, piece);
            if (now == bus::Outcome::message) {
                fuse_reply_buf(req, piece.data(), piece.size);
                return;
            }
            if (now != bus::Outcome::would_block || nonblock) {
                reply_received(req, read, {now, nullptr});
                return;
            }
        }
        ParkedRead::start(req, std::move(read));
    });
}

// A framed write sends its records in order.  Only the first may wait (as a
// plain write would); if a later one would wait, or is malformed, the write
// stops there and reports the records sent so far: a short write of whole
// records, which the writer continues from.
void write_framed(fuse_req_t req, Handle& h, std::span<const std::byte> buf, bool nonblock) {
    bus::Network& net = h.dir->net();
    const bus::Credentials sender = sender_of(req);
    std::size_t done = 0;
    while (done < buf.size()) {
        Record record{};
        bus::Status s = parse_record(buf.subspan(done), record);
        if (s.ok()) s = net.send(h.conn, record.payload, record.address, sender);
        if (s.code == std::errc::resource_unavailable_try_again && done == 0 && !nonblock) {
            ParkedWrite::start(req, h.dir, h.conn, record.payload, record.size, sender,
                               record.address);
            return;
        }
        if (!s.ok()) {
            if (done == 0) {
                reply_error(req, "write", s);
            } else {
                bus::log::limited(
                    spdlog::level::debug,
                    bus::log::Fields{h.dir->name(), h.conn.id, "write-short"}.by(h.opener.uid),
                    "stopped after {} bytes: {}", done, s.reason);
                fuse_reply_write(req, done);
            }
            return;
        }
        done += record.size;
    }
    fuse_reply_write(req, done);
}

void op_write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf, std::size_t size, off_t /*off*/,
              fuse_file_info* fi) {
    guarded(req, "write", [&] {
        Handle& h = handle(fi);
        if (!h.dir) {  // ipnfs.prom opens only for reading
            fuse_reply_err(req, EBADF);
            return;
        }
        bus::Network& net = h.dir->net();
        auto bytes = std::as_bytes(std::span(buf, size));
        if (h.file->kind == Kind::ctl) {
            bus::Status s = net.control(std::string_view(buf, size), writer_of(req, h.opener));
            if (!s.ok()) {
                bus::log::limited(spdlog::level::info,
                                  bus::log::Fields{net.name(), "ctl-error"}.by(h.opener.uid), "{}",
                                  s.reason);
                reply_error(req, "write", s);
                return;
            }
            fuse_reply_write(req, size);
        } else if (!h.conn.writes) {
            fuse_reply_err(req, EBADF);
        } else if (h.framed.load()) {
            write_framed(req, h, bytes, (fi->flags & O_NONBLOCK) != 0);
        } else if ((fi->flags & O_NONBLOCK) != 0) {
            bus::Status s = net.send(h.conn, bytes, {}, sender_of(req));
            s.ok() ? (void)fuse_reply_write(req, size) : reply_error(req, "write", s);
        } else {
            ParkedWrite::start(req, h.dir, h.conn, bytes, size, sender_of(req));
        }
    });
}

void op_poll(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* fi, fuse_pollhandle* ph) {
    guarded(req, "poll", [&] {
        Handle& h = handle(fi);
        if (!h.connected()) {
            if (ph != nullptr) fuse_pollhandle_destroy(ph);
            fuse_reply_poll(req, POLLIN | POLLOUT);
            return;
        }
        // Stored before asking the bus, so a change that lands in between
        // still finds the handle to notify.
        if (ph != nullptr) h.dir->polls().store(h.conn.id, &h, ph);
        bus::Network& net = h.dir->net();
        unsigned revents = 0;
        if (h.conn.writes && net.poll_writable(h.conn, h.framed.load())) revents |= POLLOUT;
        if (h.conn.reads && net.poll_readable(h.conn)) revents |= POLLIN;
        if (h.capture && h.capture->has_pending()) revents |= POLLIN;
        if (h.rest && h.rest->next_size() > 0) revents |= POLLIN;
        // As a pipe or socket whose other end is gone: a removed network
        // takes no more writes (EPIPE) and brings no more messages.
        if (h.dir->removed()) revents |= POLLHUP | POLLERR;
        fuse_reply_poll(req, revents);
    });
}

// What an open port file lets its holder set on the port: its own access
// modes, and manage rights if its opener may write ctl now.
bus::PortGrant grant_of(const Handle& h) {
    const Attr dir = h.dir->attr(kDirSlot);
    const Attr ctl = h.dir->attr(fixed_slot(Kind::ctl));
    const bus::Caller& who = h.opener;
    return {h.conn.reads, h.conn.writes,
            who.may(dir.mode, dir.uid, dir.gid, X_OK) && who.may(ctl.mode, ctl.uid, ctl.gid, W_OK)};
}

void op_ioctl(fuse_req_t req, fuse_ino_t /*ino*/, unsigned int cmd, void* /*arg*/,
              fuse_file_info* fi, unsigned flags, const void* in_buf, std::size_t in_bufsz,
              std::size_t /*out_bufsz*/) {
    guarded(req, "ioctl", [&] {
        Handle& h = handle(fi);
        if ((flags & FUSE_IOCTL_COMPAT) != 0 || !h.connected() || h.file->opens == Opens::capture) {
            fuse_reply_err(req, ENOTTY);
            return;
        }
        int on = 0;
        if (in_bufsz >= sizeof on) std::memcpy(&on, in_buf, sizeof on);
        switch (cmd) {
            case IPNFS_IOC_SET_FRAMED:
                // Records start at a message: a rest is read plainly first.
                if (on != 0 && h.rest && h.rest->next_size() > 0) {
                    reply_error(req, "ioctl",
                                bus::Status::error(std::errc::device_or_resource_busy,
                                                   "the rest of a message is still unread"));
                    return;
                }
                h.framed = on != 0;
                fuse_reply_ioctl(req, 0, nullptr, 0);
                return;
            case IPNFS_IOC_SET_CREDS:
                h.creds = on != 0;
                fuse_reply_ioctl(req, 0, nullptr, 0);
                return;
            case IPNFS_IOC_GET_PORT: {
                if (h.conn.observer()) break;  // an events reader has no port
                std::uint32_t port = h.conn.id;
                fuse_reply_ioctl(req, 0, &port, sizeof port);
                return;
            }
            case IPNFS_IOC_PORT_CTL: {
                if (h.conn.observer()) break;
                ipnfs_port_ctl in{};
                if (in_buf != nullptr) std::memcpy(&in, in_buf, std::min(in_bufsz, sizeof in));
                std::string_view line(in.line, strnlen(in.line, sizeof in.line));
                bus::Status s = h.dir->net().control_port(h.conn.id, line, grant_of(h));
                if (!s.ok()) {
                    bus::log::limited(
                        spdlog::level::info,
                        bus::log::Fields{h.dir->name(), h.conn.id, "port-ctl-error"}.by(
                            h.opener.uid),
                        "{}", s.reason);
                }
                s.ok() ? (void)fuse_reply_ioctl(req, 0, nullptr, 0) : reply_error(req, "ioctl", s);
                return;
            }
            case IPNFS_IOC_NEXT_SIZE: {
                if (!h.conn.reads) {
                    fuse_reply_err(req, EBADF);
                    return;
                }
                auto next = static_cast<std::uint32_t>(h.rest ? h.rest->next_size() : 0);
                if (next > 0) {
                    fuse_reply_ioctl(req, 0, &next, sizeof next);
                    return;
                }
                const bool creds = h.creds.load();
                bus::Fits peek = [&next, creds](const bus::Message& m) {
                    next = static_cast<std::uint32_t>(m.is_event() ? event_text(m, creds).size()
                                                                   : m.payload().size());
                    return false;  // it stays queued
                };
                h.dir->net().receive(h.conn, nullptr, &peek);
                fuse_reply_ioctl(req, 0, &next, sizeof next);
                return;
            }
            case IPNFS_IOC_SET_EVENTS: {
                if (h.conn.observer()) break;
                if (!h.conn.reads) {
                    fuse_reply_err(req, EBADF);  // events are for the port's receivers
                    return;
                }
                bus::Status s = h.dir->net().set_events(h.conn.id, on != 0);
                s.ok() ? (void)fuse_reply_ioctl(req, 0, nullptr, 0) : reply_error(req, "ioctl", s);
                return;
            }
            default:
                break;
        }
        fuse_reply_err(req, ENOTTY);
    });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off,
                fuse_file_info* /*fi*/) {
    guarded(req, "readdir", [&] {
        auto node = resolve_or_reply(req, ino);
        if (!node) return;
        if (node->kind != Kind::root && node->kind != Kind::network) {
            fuse_reply_err(req, ENOTDIR);
            return;
        }
        std::vector<Tree::Entry> entries = tree(req).list(*node);
        Ino parent = kRootIno;
        Ino self = node->kind == Kind::root ? kRootIno : Tree::ino_of(*node->dir, kDirSlot);
        entries.insert(entries.begin(), {{".", self, S_IFDIR}, {"..", parent, S_IFDIR}});
        std::string buf(size, '\0');
        std::size_t used = 0;
        for (auto i = static_cast<std::size_t>(off); i < entries.size(); ++i) {
            struct stat st {};
            st.st_ino = entries[i].ino;
            st.st_mode = entries[i].type;
            std::size_t need =
                fuse_add_direntry(req, buf.data() + used, size - used, entries[i].name.c_str(), &st,
                                  static_cast<off_t>(i + 1));
            if (need > size - used) break;
            used += need;
        }
        fuse_reply_buf(req, buf.data(), used);
    });
}

fuse_lowlevel_ops make_operations() {
    fuse_lowlevel_ops ops{};
    ops.init = op_init;
    ops.lookup = op_lookup;
    ops.getattr = op_getattr;
    ops.setattr = op_setattr;
    ops.mknod = op_mknod;
    ops.mkdir = op_mkdir;
    ops.unlink = op_unlink;
    ops.rmdir = op_rmdir;
    ops.symlink = op_symlink;
    ops.rename = op_rename;
    ops.link = op_link;
    ops.open = op_open;
    ops.read = op_read;
    ops.write = op_write;
    ops.release = op_release;
    ops.readdir = op_readdir;
    ops.create = op_create;
    ops.poll = op_poll;
    ops.ioctl = op_ioctl;
    return ops;
}

}  // namespace

Handle* OpenFiles::add(std::unique_ptr<Handle> h) {
    Handle* raw = h.get();
    MutexLock lock(mu_);
    files_.emplace(raw, std::move(h));
    return raw;
}

std::unique_ptr<Handle> OpenFiles::remove(Handle* h) {
    MutexLock lock(mu_);
    auto node = files_.extract(h);
    return std::move(node.mapped());
}

void OpenFiles::close_all() {
    std::unordered_map<Handle*, std::unique_ptr<Handle>> files;
    {
        MutexLock lock(mu_);
        files.swap(files_);
    }
    for (auto& [raw, h] : files) close_handle(*h);
}

std::size_t OpenFiles::size() const {
    MutexLock lock(mu_);
    return files_.size();
}

void close_handle(Handle& h) {
    if (!h.connected()) return;
    h.dir->polls().forget(h.conn.id, &h);
    if (h.capture) log_capture_close(h);  // its counters go with the connection
    h.dir->net().disconnect(h.conn);
    bus::log::limited(spdlog::level::debug,
                      bus::log::Fields{h.dir->name(), h.conn.id, "port-close"}.by(h.opener.uid),
                      "disconnected");
}

const fuse_lowlevel_ops& operations() {
    static const fuse_lowlevel_ops ops = make_operations();
    return ops;
}

}  // namespace ipnfs::fs
