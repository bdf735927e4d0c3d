#include "config/config_dump.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "bus/commands.hpp"
#include "fs/tree.hpp"

namespace ipnfs::config {

namespace {

// The mount point's line in /proc/self/mountinfo says fuse.ipnfs.
bool is_ipnfs_mount(const std::string& dir) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    bool found = false;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::vector<std::string> w;
        for (std::string word; fields >> word;) w.push_back(word);
        if (w.size() < 7 || w[4] != dir) continue;
        auto dash = std::find(w.begin() + 5, w.end(), "-");
        // The last mount on a directory is the one seen.
        found = dash != w.end() && dash + 1 != w.end() && dash[1] == "fuse.ipnfs";
    }
    return found;
}

// The names in directory `dir`.
bool list_names(const std::string& dir, std::vector<std::string>& names, std::string& error) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        names.push_back(entry.path().filename().string());
    }
    if (ec) {
        error = fmt::format("{}: {}", dir, ec.message());
        return false;
    }
    return true;
}

bool stat_path(const std::string& path, struct stat& st, std::string& error) {
    if (::stat(path.c_str(), &st) == 0) return true;
    error = fmt::format("{}: {}", path, std::strerror(errno));
    return false;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
    std::ifstream in(path);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
        error = fmt::format("{}: cannot read: {}", path, std::strerror(errno));
        return false;
    }
    out = text.str();
    return true;
}

// The files whose attributes differ from what the directory gives them.
bool read_file_settings(const std::string& dir, const fs::Attr& dir_attr, Network& net,
                        std::string& error) {
    std::vector<std::string> names;
    if (!list_names(dir, names, error)) return false;
    // ctl, stats, ... in a fixed order, then the ports by number.
    struct File {
        std::uint32_t slot;
        std::string name;
        struct stat st;
    };
    std::vector<File> files;
    for (const std::string& name : names) {
        File file{0, name, {}};
        if (!stat_path(fmt::format("{}/{}", dir, name), file.st, error)) return false;
        file.slot = fs::Tree::slot_of(file.st.st_ino);
        files.push_back(std::move(file));
    }
    std::sort(files.begin(), files.end(),
              [](const File& a, const File& b) { return a.slot < b.slot; });
    for (const auto& [slot, name, st] : files) {
        fs::Attr derived = fs::NetDir::derive(dir_attr, slot);
        if ((st.st_mode & 07777) != derived.mode) {
            net.files.push_back({0, name, FileAttr::mode, st.st_mode & 07777});
        }
        if (st.st_uid != derived.uid) {
            net.files.push_back({0, name, FileAttr::owner, st.st_uid});
        }
        if (st.st_gid != derived.gid) {
            net.files.push_back({0, name, FileAttr::group, st.st_gid});
        }
    }
    return true;
}

bool read_network(const std::string& dir, const std::string& name, Network& net,
                  std::string& error) {
    struct stat st {};
    if (!stat_path(dir, st, error)) return false;
    net.name = name;
    net.mode = st.st_mode & 07777;
    net.owner = st.st_uid;
    net.group = st.st_gid;
    std::string ctl;
    if (!read_file(dir + "/ctl", ctl, error)) return false;
    std::istringstream lines(ctl);
    for (std::string line; std::getline(lines, line);) {
        // A holder's setting is not the network's configuration: it goes
        // with the port's last close, which brings back the configuration
        // lines ctl shows as comments meanwhile.
        if (line.find(bus::kHolderSetNote) != std::string::npos) continue;
        if (std::size_t note = line.find(bus::kComesBackNote);
            line.starts_with("# ") && note != std::string::npos) {
            line = line.substr(2, note - 2);
        }
        if (bus::split_words(line).empty()) continue;
        net.commands.push_back({0, line});
    }
    return read_file_settings(dir, fs::Attr{st.st_mode & 07777, st.st_uid, st.st_gid, {}}, net,
                              error);
}

}  // namespace

bool read_mounted(const std::string& mountpoint, Config& out, std::string& error) {
    std::error_code ec;
    std::filesystem::path root = std::filesystem::canonical(mountpoint, ec);
    if (ec) {
        error = fmt::format("{}: {}", mountpoint, ec.message());
        return false;
    }
    if (!is_ipnfs_mount(root.string())) {
        error = fmt::format("{}: not an ipnfs mount (no fuse.ipnfs on it in /proc/self/mountinfo)",
                            mountpoint);
        return false;
    }
    std::vector<std::string> names;
    if (!list_names(root.string(), names, error)) return false;
    std::sort(names.begin(), names.end());
    out = {};
    for (const std::string& name : names) {
        if (name == fs::kRootMetricsFile.name) continue;  // a file, not a network
        Network net;
        if (!read_network((root / name).string(), name, net, error)) return false;
        out.networks.push_back(std::move(net));
    }
    return true;
}

int dump_main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s --dump MOUNTPOINT\n", argv[0]);
        return 2;
    }
    Config config;
    std::string error;
    std::string text;
    if (!read_mounted(argv[2], config, error)) {
        std::fprintf(stderr, "ipnfs: %s\n", error.c_str());
        return 1;
    }
    if (bus::Status s = render(config, text); !s.ok()) {
        std::fprintf(stderr, "ipnfs: %s\n", s.reason.c_str());
        return 1;
    }
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() ||
        std::fflush(stdout) != 0) {
        std::fprintf(stderr, "ipnfs: writing the dump: %s\n", std::strerror(errno));
        return 1;
    }
    return 0;
}

}  // namespace ipnfs::config
