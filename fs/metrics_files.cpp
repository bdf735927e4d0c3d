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
    return out.text();
}

}  // namespace ipnfs::fs
