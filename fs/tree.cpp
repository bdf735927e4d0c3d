#include "fs/tree.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "fs/network_name.hpp"

namespace ipnfs::fs {

namespace {

constexpr mode_t kPermBits = 07777;
constexpr blksize_t kBlockSize = 4096;
// Above bus::Limits::kMaxMtu, a power of two: see Tree::stat.
constexpr blksize_t kMessageBlockSize = 65536;
static_assert(kMessageBlockSize > bus::Limits::kMaxMtu);

timespec now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

bus::Status not_found(std::string_view name) {
    return bus::Status::error(std::errc::no_such_file_or_directory,
                              fmt::format("no such file: {}", name));
}

}  // namespace

NetDir::NetDir(std::uint64_t id, std::string name, std::shared_ptr<bus::Network> net, Attr dir,
               std::size_t text_bytes)
    : id_(id), name_(std::move(name)), net_(std::move(net)), texts_(text_bytes) {
    attrs_[kDirSlot] = dir;
}

Attr NetDir::attr(std::uint32_t slot) const {
    MutexLock lock(mu_);
    if (auto it = attrs_.find(slot); it != attrs_.end()) return it->second;
    return derive(attrs_.at(kDirSlot), slot);
}

Attr NetDir::derive(const Attr& dir, std::uint32_t slot) {
    Attr derived = dir;
    const FileRow* row = file_row(slot);
    derived.mode &= row != nullptr && row->read_only ? 0444 : 0666;
    return derived;
}

void NetDir::set_attr(std::uint32_t slot, const Attr& attr) {
    MutexLock lock(mu_);
    attrs_[slot] = attr;
}

bool NetDir::removed() const {
    MutexLock lock(mu_);
    return removed_;
}

void NetDir::mark_removed() {
    MutexLock lock(mu_);
    removed_ = true;
}

Tree::Tree(const bus::PolicyCatalog& catalog, bus::Settings defaults, std::string default_policy,
           Attr root, const bus::ExtensionMaker* extensions, bus::Bounds bounds,
           const bus::ByteLimits& limits)
    : catalog_(catalog),
      extensions_(extensions),
      defaults_(defaults),
      bounds_(bounds),
      budgets_(std::make_shared<bus::Budgets>(limits)),
      default_policy_(std::move(default_policy)),
      root_(root),
      root_texts_(bounds.text_bytes) {
    root_.ctime = now();
}

Node Tree::node_for(const std::shared_ptr<NetDir>& dir, std::uint32_t slot) {
    const FileRow* row = file_row(slot);
    if (row == nullptr) return Node{Kind::network, dir, kDirSlot, 0, nullptr};
    Node node{row->kind, dir, slot, 0, row};
    if (row->kind == Kind::port) node.port = slot - kPortFiles.slot;
    return node;
}

std::optional<Node> Tree::resolve(Ino ino) const {
    if (ino == kRootIno) return Node{};
    if (ino == kRootMetricsIno) return Node{Kind::root_metrics, nullptr, 0, 0, &kRootMetricsFile};
    std::uint64_t id = ino >> kSlotBits;
    auto slot = static_cast<std::uint32_t>(ino & ((Ino{1} << kSlotBits) - 1));
    std::shared_ptr<NetDir> dir;
    {
        MutexLock lock(mu_);
        auto it = by_id_.find(id);
        if (it == by_id_.end()) return std::nullopt;
        dir = it->second.lock();
    }
    if (!dir) return std::nullopt;
    const FileRow* row = file_row(slot);
    bool known = slot == kDirSlot ||
                 (row != nullptr &&
                  (row->kind != Kind::port || slot - kPortFiles.slot < dir->net().port_count()));
    if (!known) return std::nullopt;
    return node_for(dir, slot);
}

bus::Status Tree::lookup(const Node& parent, std::string_view name, Ino& ino, Node& out) const {
    if (parent.kind == Kind::root) {
        if (name == kRootMetricsFile.name) {
            ino = kRootMetricsIno;
            out = Node{Kind::root_metrics, nullptr, 0, 0, &kRootMetricsFile};
            return bus::Status::success();
        }
        MutexLock lock(mu_);
        auto it = by_name_.find(name);
        if (it == by_name_.end()) return not_found(name);
        ino = ino_of(*it->second, kDirSlot);
        out = node_for(it->second, kDirSlot);
        return bus::Status::success();
    }
    if (parent.kind != Kind::network) {
        return bus::Status::error(std::errc::not_a_directory, "not a directory");
    }
    std::uint32_t slot = 0;
    if (const FileRow* row = fixed_file(name)) {
        slot = row->slot;
    } else if (auto port = parse_port_name(name); port && *port < parent.dir->net().port_count()) {
        slot = port_slot(*port);
    } else {
        return not_found(name);
    }
    ino = ino_of(*parent.dir, slot);
    out = node_for(parent.dir, slot);
    return bus::Status::success();
}

bus::Status Tree::mkdir(std::string_view name, const Attr& attr, Ino& ino, Node& out) {
    if (bus::Status s = check_network_name(name); !s.ok()) return s;
    if (name == kRootMetricsFile.name) {
        return bus::Status::error(std::errc::file_exists,
                                  fmt::format("{} is the daemon's metrics file", name));
    }
    std::shared_ptr<bus::Network> net;
    if (bus::Status s =
            bus::Network::create(std::string(name), defaults_, catalog_, default_policy_, net);
        !s.ok()) {
        return s;
    }
    net->set_bounds(bounds_);
    net->set_budgets(budgets_);
    if (extensions_ != nullptr) net->set_extension(extensions_->make(*net, *this));
    net->set_replicas(replicas_);
    Attr dir_attr = attr;
    dir_attr.mode &= kPermBits;
    dir_attr.ctime = now();
    {
        MutexLock lock(mu_);
        if (by_name_.contains(name)) {
            return bus::Status::error(std::errc::file_exists,
                                      fmt::format("network {} exists", name));
        }
        auto dir = std::make_shared<NetDir>(next_id_++, std::string(name), net, dir_attr,
                                            bounds_.text_bytes);
        net->set_listener(dir.get());
        by_name_.emplace(std::string(name), dir);
        by_id_.emplace(dir->id(), dir);
        ino = ino_of(*dir, kDirSlot);
        out = node_for(dir, kDirSlot);
    }
    net->set_access({dir_attr.mode, dir_attr.uid, dir_attr.gid});
    return bus::Status::success();
}

std::shared_ptr<bus::Network> Tree::find(std::string_view name) const {
    MutexLock lock(mu_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second->shared_net();
}

bus::Status Tree::may_open(std::string_view name, std::optional<bus::PortId> port,
                           const bus::Caller& caller) const {
    std::shared_ptr<NetDir> dir;
    Attr root;
    {
        MutexLock lock(mu_);
        auto it = by_name_.find(name);
        if (it == by_name_.end()) return not_found(name);
        dir = it->second;
        root = root_;
    }
    const std::uint32_t slot = port ? port_slot(*port) : fixed_slot(Kind::clone);
    const Attr d = dir->attr(kDirSlot);
    const Attr f = dir->attr(slot);
    if (caller.may(root.mode, root.uid, root.gid, X_OK) && caller.may(d.mode, d.uid, d.gid, X_OK) &&
        caller.may(f.mode, f.uid, f.gid, R_OK | W_OK)) {
        return bus::Status::success();
    }
    return bus::Status::error(
        std::errc::permission_denied,
        fmt::format("{}/{} may not be opened for reading and writing by uid {}", name,
                    port ? fmt::format("port{}", *port) : std::string("clone"), caller.uid));
}

bus::Status Tree::rmdir(std::string_view name) {
    std::shared_ptr<NetDir> dir;
    {
        MutexLock lock(mu_);
        auto it = by_name_.find(name);
        if (it == by_name_.end()) return not_found(name);
        dir = std::move(it->second);
        by_name_.erase(it);
        std::erase_if(by_id_, [](const auto& entry) { return entry.second.expired(); });
    }
    dir->mark_removed();
    dir->net().hang_up();
    return bus::Status::success();
}

struct stat Tree::stat(const Node& node) const {
    struct stat st {};
    st.st_blksize = kBlockSize;
    Attr attr;
    if (node.kind == Kind::root) {
        MutexLock lock(mu_);
        attr = root_;
        st.st_ino = kRootIno;
        st.st_mode = S_IFDIR | attr.mode;
        st.st_nlink = 2;
    } else if (node.kind == Kind::root_metrics) {
        MutexLock lock(mu_);
        if (root_metrics_) {
            attr = *root_metrics_;
        } else {
            attr = root_;
            attr.mode &= 0444;
        }
        st.st_ino = kRootMetricsIno;
        st.st_mode = S_IFREG | attr.mode;
        st.st_nlink = 1;
    } else {
        attr = node.dir->attr(node.slot);
        st.st_ino = ino_of(*node.dir, node.slot);
        bool dir = node.kind == Kind::network;
        st.st_mode = (dir ? S_IFDIR : S_IFREG) | attr.mode;
        st.st_nlink = node.dir->removed() ? 0 : (dir ? 2 : 1);
        // The largest message a port file can carry.  The kernel lets
        // writes that end inside the file size run in parallel (with
        // FOPEN_PARALLEL_DIRECT_WRITES); at size 0 every write would take the
        // inode lock, and a writer waiting on a lossless network would leave
        // every other writer of the same file (all of clone's) stuck in the
        // kernel, where no signal reaches them.
        bool messages = node.file != nullptr && node.file->carries_messages();
        st.st_size = messages ? bus::Limits::kMaxMtu : 0;
        // stdio, Python and the shell's builtins size their buffers from
        // st_blksize and write a full buffer as one write(): at 4096 a
        // longer `echo` or line went out as several messages.  The next
        // power of two above the largest message (the kernel rounds down to
        // one) lets one buffer hold any message.
        if (messages) st.st_blksize = kMessageBlockSize;
    }
    st.st_uid = attr.uid;
    st.st_gid = attr.gid;
    st.st_atim = st.st_mtim = st.st_ctim = attr.ctime;
    return st;
}

void Tree::set_attr(const Node& node, const Attr& attr) {
    Attr stored = attr;
    stored.mode &= kPermBits;
    stored.ctime = now();
    if (node.kind == Kind::root) {
        MutexLock lock(mu_);
        root_ = stored;
    } else if (node.kind == Kind::root_metrics) {
        MutexLock lock(mu_);
        root_metrics_ = stored;
    } else {
        node.dir->set_attr(node.slot, stored);
        if (node.kind == Kind::network) {
            node.dir->net().set_access({stored.mode, stored.uid, stored.gid});
        }
    }
}

std::vector<Tree::Entry> Tree::list(const Node& dir) const {
    std::vector<Entry> entries;
    if (dir.kind == Kind::root) {
        MutexLock lock(mu_);
        entries.reserve(by_name_.size() + 1);
        entries.push_back({std::string(kRootMetricsFile.name), kRootMetricsIno, S_IFREG});
        for (const auto& [name, net] : by_name_) {
            entries.push_back({name, ino_of(*net, kDirSlot), S_IFDIR});
        }
        return entries;
    }
    const NetDir& net = *dir.dir;
    bus::PortId ports = net.net().port_count();
    entries.reserve(kFixedFiles.size() + ports);
    for (const FileRow& row : kFixedFiles) {
        entries.push_back({std::string(row.name), ino_of(net, row.slot), S_IFREG});
    }
    for (bus::PortId p = 0; p < ports; ++p) {
        entries.push_back(
            {fmt::format("{}{}", kPortFiles.name, p), ino_of(net, port_slot(p)), S_IFREG});
    }
    return entries;
}

std::vector<std::shared_ptr<NetDir>> Tree::networks() const {
    std::vector<std::shared_ptr<NetDir>> all;
    MutexLock lock(mu_);
    all.reserve(by_name_.size());
    for (const auto& [name, dir] : by_name_) all.push_back(dir);
    return all;
}

Attr Tree::root_attr() const {
    MutexLock lock(mu_);
    return root_;
}

void Tree::hang_up_all() {
    std::vector<std::shared_ptr<NetDir>> all;
    {
        MutexLock lock(mu_);
        for (auto& [id, weak] : by_id_) {
            if (auto dir = weak.lock()) all.push_back(std::move(dir));
        }
    }
    for (auto& dir : all) dir->net().hang_up();
}

}  // namespace ipnfs::fs
