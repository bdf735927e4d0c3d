#include "fs/metrics_files.hpp"

#include <unistd.h>

#include "fs/metrics.hpp"

namespace ipnfs::fs {

namespace {

bool may_read_stats(const bus::Caller& who, const Attr& root, const NetDir& dir) {
    const Attr d = dir.attr(kDirSlot);
    const Attr s = dir.attr(fixed_slot(Kind::stats));
    return who.may(root.mode, root.uid, root.gid, X_OK) && who.may(d.mode, d.uid, d.gid, X_OK) &&
           who.may(s.mode, s.uid, s.gid, R_OK);
}

// The io_uring transport's gauges (docs/usage.md, "FUSE over io_uring"):
// how near the mount is to uring_entries, and what the bound refused.
void add_ring(Exposition& out, const UringStats& ring) {
    using Type = Exposition::Type;
    out.add("ipnfs_daemon_ring_active", Type::gauge,
            "1 if requests come through FUSE over io_uring, 0 if through /dev/fuse.", {},
            ring.active ? 1 : 0);
    out.add("ipnfs_daemon_ring_queues", Type::gauge, "Ring queues, one per possible CPU.", {},
            ring.queues);
    out.add("ipnfs_daemon_ring_entries_limit", Type::gauge,
            "Ring entries the mount may register, all queues (uring_entries).", {}, ring.limit);
    out.add("ipnfs_daemon_ring_user_entries_limit", Type::gauge,
            "Parked requests one non-root uid may hold on the ring (uring_user_entries).", {},
            ring.user_limit);
    out.add("ipnfs_daemon_ring_entries", Type::gauge, "Ring entries registered, all queues.", {},
            ring.entries);
    out.add("ipnfs_daemon_ring_entries_held", Type::gauge,
            "Ring entries whose request the daemon holds: in flight or parked.", {}, ring.held);
    out.add("ipnfs_daemon_ring_requests", Type::counter, "Requests that came through the ring.", {},
            ring.requests);
    out.add("ipnfs_daemon_ring_bound_waits", Type::counter,
            "Times a queue had every entry it may register held.", {}, ring.waits);
    out.add("ipnfs_daemon_ring_refusals", Type::counter,
            "Reads and writes that would have waited, failed ENOBUFS for want of a ring entry.", {},
            ring.refused);
}

}  // namespace

std::string network_metrics(const NetDir& dir) {
    Exposition out;
    out.add_stats(dir.name(), dir.net().stats());
    return out.text();
}

std::string root_metrics(Tree& tree, const bus::Caller& opener, const DaemonCounts& daemon) {
    using Type = Exposition::Type;
    Exposition out;
    const Attr root = tree.root_attr();
    std::uint64_t parked_reads = 0;
    std::uint64_t parked_writes = 0;
    std::uint64_t held = 0;
    std::uint64_t text = tree.root_texts().held();
    std::vector<std::shared_ptr<NetDir>> all = tree.networks();
    for (const auto& dir : all) {
        if (may_read_stats(opener, root, *dir)) out.add_stats(dir->name(), dir->net().stats());
        bus::Network::Gauges load = dir->net().gauges();
        parked_reads += load.parked_readers;
        parked_writes += load.parked_senders;
        held += load.held_bytes;
        text += dir->texts().held();
    }
    out.add("ipnfs_daemon_networks", Type::gauge, "Networks of the mount.", {}, all.size());
    out.add("ipnfs_daemon_open_files", Type::gauge, "Open files of the mount.", {},
            daemon.open_files);
    out.add("ipnfs_daemon_parked_reads", Type::gauge,
            "Reads waiting for a message, in every network.", {}, parked_reads);
    out.add("ipnfs_daemon_parked_writes", Type::gauge,
            "Writes waiting for room (lossless networks), in every network.", {}, parked_writes);
    out.add("ipnfs_daemon_held_bytes", Type::gauge,
            "Bytes of messages queued in every network (each message once).", {}, held);
    out.add("ipnfs_daemon_text_bytes", Type::gauge,
            "Bytes of ctl, stats and metrics text held for open descriptors.", {}, text);
    if (daemon.ring) add_ring(out, *daemon.ring);
    return out.text();
}

}  // namespace ipnfs::fs
