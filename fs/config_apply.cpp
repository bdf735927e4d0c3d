#include "fs/config_apply.hpp"

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bus/log.hpp"

namespace ipnfs::fs {

namespace {

bus::Status set_file(Tree& tree, const Node& dir, const config::FileSetting& setting) {
    Ino ino = 0;
    Node file;
    if (bus::Status s = tree.lookup(dir, setting.file, ino, file); !s.ok()) return s;
    struct stat st = tree.stat(file);
    Attr attr{st.st_mode & 07777, st.st_uid, st.st_gid, st.st_ctim};
    switch (setting.attr) {
        case config::FileAttr::mode:
            attr.mode = setting.value;
            break;
        case config::FileAttr::owner:
            attr.uid = setting.value;
            break;
        case config::FileAttr::group:
            attr.gid = setting.value;
            break;
    }
    tree.set_attr(file, attr);
    return bus::Status::success();
}

// Pass 1 for one network: the directory, its ctl lines, its files.
bus::Status make_network(Tree& tree, const config::Network& net, const bus::Caller& caller,
                         std::size_t& line) {
    line = net.line;
    Attr attr{
        net.mode.value_or(0755), net.owner.value_or(getuid()), net.group.value_or(getgid()), {}};
    Ino ino = 0;
    Node dir;
    if (bus::Status s = tree.mkdir(net.name, attr, ino, dir); !s.ok()) return s;
    for (const config::Command& cmd : net.commands) {
        if (config::is_cable(cmd)) continue;
        line = cmd.line;
        if (bus::Status s = dir.dir->net().control(cmd.text, caller); !s.ok()) return s;
    }
    for (const config::FileSetting& setting : net.files) {
        line = setting.line;
        if (bus::Status s = set_file(tree, dir, setting); !s.ok()) return s;
    }
    return bus::Status::success();
}

}  // namespace

bool apply_config(Tree& tree, const config::Config& config, const bus::Caller& caller,
                  config::Error& error) {
    for (const config::Network& net : config.networks) {
        std::size_t line = 0;
        if (bus::Status s = make_network(tree, net, caller, line); !s.ok()) {
            error = {line, std::move(s.reason)};
            return false;
        }
        bus::log::info({net.name, "config-apply"}, "network made from line {} ({} ctl lines)",
                       net.line, net.commands.size());
    }
    for (const config::Network& net : config.networks) {
        for (const config::Command& cmd : net.commands) {
            if (!config::is_cable(cmd)) continue;
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

bool apply_config_file(Tree& tree, const std::string& path, const bus::Caller& caller,
                       std::string& error) {
    std::ifstream in(path);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
        error = fmt::format("{}: cannot read: {}", path, std::strerror(errno));
        bus::log::warn({"config-error"}, "{}", error);
        return false;
    }
    config::Config parsed;
    config::Error failed;
    if (!config::parse(text.str(), parsed, failed) || !apply_config(tree, parsed, caller, failed)) {
        error = fmt::format("{}:{}: {}", path, failed.line, failed.reason);
        bus::log::warn({"config-error"}, "{}", error);
        return false;
    }
    return true;
}

}  // namespace ipnfs::fs
