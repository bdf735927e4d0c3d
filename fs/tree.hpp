// The file tree: the root, one directory per network, and the fixed files in
// it.  Inode numbers are computed, not stored: a network's id (never reused)
// in the high bits and the file's slot in the low bits, so a network with
// thousands of ports costs no per-file node.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/network.hpp"
#include "bus/status.hpp"
#include "bus/thread_safety.hpp"
#include "fs/file_table.hpp"
#include "fs/poll_set.hpp"
#include "fs/text_snapshots.hpp"

namespace ipnfs::fs {

using Ino = std::uint64_t;
constexpr Ino kRootIno = 1;
// ipnfs.prom: network 0's slot 2 (networks' ids start at 1).
constexpr Ino kRootMetricsIno = 2;

struct Attr {
    mode_t mode = 0;  // permission bits only
    uid_t uid = 0;
    gid_t gid = 0;
    timespec ctime{};
};

// One network as the file system shows it.  Also the network's listener:
// readiness reaches the poll handles of its ports from here.
class NetDir final : public bus::Listener {
  public:
    NetDir(std::uint64_t id, std::string name, std::shared_ptr<bus::Network> net, Attr dir,
           std::size_t text_bytes);

    [[nodiscard]] std::uint64_t id() const { return id_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] bus::Network& net() const { return *net_; }
    [[nodiscard]] const std::shared_ptr<bus::Network>& shared_net() const { return net_; }
    PollSet& polls() { return polls_; }
    TextSnapshots& texts() { return texts_; }

    // Attributes of the file in `slot`: chmod/chown overrides, else derived
    // from the directory (files take its r and w bits, read-only rows of
    // the file table only r).
    [[nodiscard]] Attr attr(std::uint32_t slot) const EXCLUDES(mu_);
    // The rule attr() applies: what the file in `slot` gets from the
    // directory's attributes `dir` (ipnfs --dump lists only files that differ).
    [[nodiscard]] static Attr derive(const Attr& dir, std::uint32_t slot);
    void set_attr(std::uint32_t slot, const Attr& attr) EXCLUDES(mu_);
    [[nodiscard]] bool removed() const EXCLUDES(mu_);
    void mark_removed() EXCLUDES(mu_);

    void ready(bus::PortId port) override { polls_.notify(port); }

  private:
    const std::uint64_t id_;
    const std::string name_;
    const std::shared_ptr<bus::Network> net_;
    PollSet polls_;
    TextSnapshots texts_;

    mutable Mutex mu_;  // a leaf
    // slot -> attributes set by chmod/chown
    std::unordered_map<std::uint32_t, Attr> attrs_ GUARDED_BY(mu_);
    bool removed_ GUARDED_BY(mu_) = false;
};

// What an inode number names.
struct Node {
    Kind kind = Kind::root;
    std::shared_ptr<NetDir> dir;  // null for the root
    std::uint32_t slot = 0;
    bus::PortId port = 0;           // for Kind::port
    const FileRow* file = nullptr;  // its row of the file table; null for directories
};

class Tree final : public bus::Directory {
  public:
    // An inode number's low bits: the file's slot (fs/file_table.hpp).
    static constexpr std::uint32_t kSlotBits = 24;

    // Every new network gets an extension from `extensions`, if given, and
    // the daemon's byte limits (shared per owner).
    Tree(const bus::PolicyCatalog& catalog, bus::Settings defaults, std::string default_policy,
         Attr root, const bus::ExtensionMaker* extensions = nullptr, bus::Bounds bounds = {},
         const bus::ByteLimits& limits = {});

    // How new networks join their group when asked (`scope cluster`): the
    // daemon's cluster service.  Set before any network is made.
    void set_replicas(bus::ReplicaMaker* replicas) { replicas_ = replicas; }

    [[nodiscard]] std::optional<Node> resolve(Ino ino) const EXCLUDES(mu_);
    // A child of `parent` by name: the ino and node, or ENOENT.
    bus::Status lookup(const Node& parent, std::string_view name, Ino& ino, Node& out) const
        EXCLUDES(mu_);

    bus::Status mkdir(std::string_view name, const Attr& attr, Ino& ino, Node& out) EXCLUDES(mu_);
    bus::Status rmdir(std::string_view name) EXCLUDES(mu_);

    [[nodiscard]] struct stat stat(const Node& node) const EXCLUDES(mu_);
    void set_attr(const Node& node, const Attr& attr) EXCLUDES(mu_);

    // (name, ino, mode type) of the children, in a stable order.
    struct Entry {
        std::string name;
        Ino ino;
        mode_t type;
    };
    [[nodiscard]] std::vector<Entry> list(const Node& dir) const EXCLUDES(mu_);

    // Every network, in name order (ipnfs.prom's content).
    [[nodiscard]] std::vector<std::shared_ptr<NetDir>> networks() const EXCLUDES(mu_);
    [[nodiscard]] Attr root_attr() const EXCLUDES(mu_);
    // ipnfs.prom's texts (its readers' differ by what each may see).
    TextSnapshots& root_texts() { return root_texts_; }

    // Shutdown: every network hangs up, so parked readers see end of file.
    void hang_up_all() EXCLUDES(mu_);

    [[nodiscard]] std::shared_ptr<bus::Network> find(std::string_view name) const override
        EXCLUDES(mu_);
    [[nodiscard]] bus::Status may_open(std::string_view name, std::optional<bus::PortId> port,
                                       const bus::Caller& caller) const override EXCLUDES(mu_);

    static Ino ino_of(const NetDir& dir, std::uint32_t slot) {
        return (dir.id() << kSlotBits) | slot;
    }
    static std::uint32_t port_slot(bus::PortId port) { return kPortFiles.slot + port; }
    // The slot of a file from its inode number (st_ino of a stat on the mount).
    static std::uint32_t slot_of(Ino ino) {
        return static_cast<std::uint32_t>(ino & ((Ino{1} << kSlotBits) - 1));
    }

  private:
    [[nodiscard]] static Node node_for(const std::shared_ptr<NetDir>& dir, std::uint32_t slot);

    const bus::PolicyCatalog& catalog_;
    const bus::ExtensionMaker* extensions_;
    bus::ReplicaMaker* replicas_ = nullptr;  // set before any network
    const bus::Settings defaults_;
    const bus::Bounds bounds_;  // root's, for every network (mount options)
    const std::shared_ptr<bus::Budgets> budgets_;
    const std::string default_policy_;

    mutable Mutex mu_;  // never held across a bus or libfuse call
    Attr root_ GUARDED_BY(mu_);
    // ipnfs.prom's attributes once chmod/chown set them; else the root's r bits.
    std::optional<Attr> root_metrics_ GUARDED_BY(mu_);
    TextSnapshots root_texts_;
    std::map<std::string, std::shared_ptr<NetDir>, std::less<>> by_name_ GUARDED_BY(mu_);
    // Networks still referenced by open files after rmdir stay reachable by ino.
    std::unordered_map<std::uint64_t, std::weak_ptr<NetDir>> by_id_ GUARDED_BY(mu_);
    std::uint64_t next_id_ GUARDED_BY(mu_) = 1;
};

}  // namespace ipnfs::fs
