#include "config/config_apply.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bus/log.hpp"

namespace ipnfs::config {

namespace {

bus::Status set_file(fs::Tree& tree, const fs::Node& dir, const FileSetting& setting) {
    fs::Ino ino = 0;
    fs::Node file;
    if (bus::Status s = tree.lookup(dir, setting.file, ino, file); !s.ok()) return s;
    struct stat st = tree.stat(file);
    fs::Attr attr{st.st_mode & 07777, st.st_uid, st.st_gid, st.st_ctim};
    switch (setting.attr) {
        case FileAttr::mode:
            attr.mode = setting.value;
            break;
        case FileAttr::owner:
            attr.uid = setting.value;
            break;
        case FileAttr::group:
            attr.gid = setting.value;
            break;
    }
    tree.set_attr(file, attr);
    return bus::Status::success();
}

// Pass 1 for one network: the directory, its ctl lines, its files.
bus::Status make_network(fs::Tree& tree, const Network& net, const bus::Caller& caller,
                         std::size_t& line) {
    line = net.line;
    fs::Attr attr{
        net.mode.value_or(0755), net.owner.value_or(getuid()), net.group.value_or(getgid()), {}};
    fs::Ino ino = 0;
    fs::Node dir;
    if (bus::Status s = tree.mkdir(net.name, attr, ino, dir); !s.ok()) return s;
    for (const Command& cmd : net.commands) {
        if (is_cable(cmd)) continue;
        line = cmd.line;
        if (bus::Status s = dir.dir->net().control(cmd.text, caller); !s.ok()) return s;
    }
    for (const FileSetting& setting : net.files) {
        line = setting.line;
        if (bus::Status s = set_file(tree, dir, setting); !s.ok()) return s;
    }
    return bus::Status::success();
}

}  // namespace

bool apply(fs::Tree& tree, const Config& config, const bus::Caller& caller, Error& error) {
    for (const Network& net : config.networks) {
        std::size_t line = 0;
        if (bus::Status s = make_network(tree, net, caller, line); !s.ok()) {
            error = {line, std::move(s.reason)};
            return false;
        }
        bus::log::info({net.name, "config-apply"}, "network made from line {} ({} ctl lines)",
                       net.line, net.commands.size());
    }
    for (const Network& net : config.networks) {
        for (const Command& cmd : net.commands) {
            if (!is_cable(cmd)) continue;
            std::shared_ptr<bus::Network> here = tree.find(net.name);
            bus::Status s = here ? here->control(cmd.text, caller)
                                 : bus::Status::error(std::errc::no_such_file_or_directory,
                                                      fmt::format("no network {}", net.name));
            if (!s.ok()) {
                error = {cmd.line, std::move(s.reason)};
                return false;
            }
        }
    }
    return true;
}

bool apply_file(fs::Tree& tree, const std::string& path, const bus::Caller& caller,
                std::string& error) {
    std::ifstream in(path);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
        error = fmt::format("{}: cannot read: {}", path, std::strerror(errno));
        bus::log::warn({"config-error"}, "{}", error);
        return false;
    }
    Config parsed;
    Error failed;
    if (!parse(text.str(), parsed, failed) || !apply(tree, parsed, caller, failed)) {
        error = fmt::format("{}:{}: {}", path, failed.line, failed.reason);
        bus::log::warn({"config-error"}, "{}", error);
        return false;
    }
    return true;
}

}  // namespace ipnfs::config
