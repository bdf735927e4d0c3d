#include "policies/plugin.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace ipnfs::policies {

namespace {

constexpr std::string_view kSuffix = ".so";

// A shared object that is not a usable policy (ELIBBAD has no std::errc name).
bus::Status refused(std::string reason) {
    return {static_cast<std::errc>(ELIBBAD), std::move(reason)};
}

}  // namespace

bus::Status check_table(const ipnfs_policy* table, std::string_view name) {
    auto refuse = [&](const std::string& why) {
        return refused(fmt::format("policy '{}' refused: {}", name, why));
    };
    if (table == nullptr) return refuse("its table is NULL");
    // ABI 5 only added `scopes` at the end: an ABI 4 table runs as it is,
    // in node scope (AbiPolicy::spans_hosts never reads it there).
    if (table->abi != IPNFS_POLICY_ABI && table->abi != 4) {
        return refuse(fmt::format("built for policy ABI {}, this ipnfs speaks ABI {}", table->abi,
                                  IPNFS_POLICY_ABI));
    }
    if (table->name == nullptr || name != table->name) {
        return refuse(fmt::format("its table calls it '{}'",
                                  table->name != nullptr ? table->name : "(null)"));
    }
    struct Required {
        const char* what;
        bool present;
    };
    for (Required r :
         {Required{"create", table->create != nullptr},
          Required{"destroy", table->destroy != nullptr},
          Required{"ports", table->ports != nullptr}, Required{"attach", table->attach != nullptr},
          Required{"detach", table->detach != nullptr}, Required{"route", table->route != nullptr},
          Required{"describe", table->describe != nullptr}}) {
        if (!r.present) return refuse(fmt::format("its table has no {}()", r.what));
    }
    if ((table->verbs == nullptr) != (table->command == nullptr)) {
        return refuse("its table has verbs() without command() or the other way round");
    }
    if ((table->addressing & 1U) != 0 || table->addressing >= (1U << (IPNFS_TO_BROADCAST + 1))) {
        return refuse(fmt::format("unknown addressing bits {:#x}", table->addressing));
    }
    if (table->link_type != IPNFS_LINK_OPAQUE && table->link_type != IPNFS_LINK_ETHERNET) {
        return refuse(fmt::format("unknown link type {}", table->link_type));
    }
    if (table->abi >= 5 && (table->scopes & ~IPNFS_SCOPE_CLUSTER) != 0) {
        return refuse(fmt::format("unknown scope bits {:#x}", table->scopes));
    }
    return bus::Status::success();
}

bus::Status check_verbs(const ipnfs_policy& table, void* self, std::string_view name) {
    std::uint32_t count = 0;
    const ipnfs_verb* verbs = table.verbs != nullptr ? table.verbs(self, &count) : nullptr;
    if (verbs == nullptr) return bus::Status::success();
    for (std::uint32_t i = 0; i < count; ++i) {
        const char* verb = verbs[i].verb;
        std::string_view word = verb != nullptr ? verb : "";
        if (word.empty() || word.starts_with('#') ||
            word.find_first_of(" \t\r\n") != std::string_view::npos) {
            return refused(fmt::format("policy '{}' refused: its verb {} is {}", name, i,
                                       verb == nullptr ? "NULL" : fmt::format("'{}'", word)));
        }
    }
    return bus::Status::success();
}

bool valid_plugin_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::ranges::all_of(name, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
    });
}

bus::Status load_plugin(const std::string& dir, std::string_view name, Plugin& out) {
    std::string path = fmt::format("{}/{}{}", dir, name, kSuffix);
    struct stat st {};
    if (!valid_plugin_name(name) || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return bus::Status::error(std::errc::no_such_file_or_directory,
                                  fmt::format("no plugin {}", path));
    }
    // The daemon runs the plugin's code with its own privileges.
    if ((st.st_uid != 0 && st.st_uid != ::geteuid()) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return bus::Status::error(
            std::errc::permission_denied,
            fmt::format("plugin {} refused: it must belong to root or the daemon's user and be "
                        "writable by its owner only",
                        path));
    }
    ::dlerror();
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* why = ::dlerror();
        return refused(fmt::format("plugin {} refused: {}", path, why != nullptr ? why : ""));
    }
    std::shared_ptr<const void> library(handle,
                                        [](const void* h) { ::dlclose(const_cast<void*>(h)); });
    auto entry = reinterpret_cast<ipnfs_policy_entry>(::dlsym(handle, IPNFS_POLICY_SYMBOL));
    if (entry == nullptr) {
        return refused(
            fmt::format("plugin {} refused: it exports no {}() (not an ipnfs policy "
                        "plugin?)",
                        path, IPNFS_POLICY_SYMBOL));
    }
    const ipnfs_policy* table = entry();
    if (bus::Status s = check_table(table, name); !s.ok()) {
        s.reason = fmt::format("{} ({})", s.reason, path);
        return s;
    }
    out = {std::move(library), table};
    return bus::Status::success();
}

std::vector<std::string> plugin_names(const std::string& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        std::string file = entry.path().filename().string();
        if (!file.ends_with(kSuffix)) continue;
        file.resize(file.size() - kSuffix.size());
        if (valid_plugin_name(file)) names.push_back(std::move(file));
    }
    std::ranges::sort(names);
    return names;
}

}  // namespace ipnfs::policies
