#include "daemon/help.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bus/commands.hpp"
#include "bus/network.hpp"
#include "netdev/attachments.hpp"
#include "netdev/cables.hpp"
#include "netdev/engine.hpp"
#include "policies/catalog.hpp"

namespace ipnfs::daemon {

namespace {

// A throwaway network's cables look up peers here; there are none.
class NoNetworks final : public bus::Directory {
  public:
    [[nodiscard]] std::shared_ptr<bus::Network> find(std::string_view /*name*/) const override {
        return nullptr;
    }
    [[nodiscard]] bus::Status may_open(std::string_view /*name*/,
                                       std::optional<bus::PortId> /*port*/,
                                       const bus::Caller& /*caller*/) const override {
        return bus::Status::error(std::errc::no_such_file_or_directory, "no networks");
    }
};

// Loading a plugin logs, and logging is not set up yet when --help runs:
// spdlog's default logger would print into the help text.
class QuietLogs {
  public:
    QuietLogs() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::off); }
    ~QuietLogs() { spdlog::set_level(level_); }
    QuietLogs(const QuietLogs&) = delete;
    QuietLogs& operator=(const QuietLogs&) = delete;

  private:
    spdlog::level::level_enum level_;
};

std::vector<std::string> split(std::string_view text, std::string_view sep) {
    std::vector<std::string> out;
    while (!text.empty()) {
        std::size_t end = text.find(sep);
        out.emplace_back(text.substr(0, end));
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + sep.size());
    }
    return out;
}

// ctl's help lines ("#   VERB ARGS   HELP") of a table.
std::vector<std::string> help_lines(const bus::CommandTable& table) {
    std::string text;
    bus::append_help(table, text);
    return split(text, "\n");
}

bool contains(const std::vector<std::string>& lines, const std::string& line) {
    return std::ranges::find(lines, line) != lines.end();
}

// A help line as --help indents it: ctl's comment mark becomes a space.
void append_line(const std::string& line, std::string& out) {
    if (line.empty()) return;
    out += ' ';
    out.append(line, 1);
    out += '\n';
}

}  // namespace

std::string ctl_help(const bus::PolicyCatalog& catalog, const bus::PolicyCatalog& builtin,
                     const bus::ExtensionMaker& extensions) {
    QuietLogs quiet;
    std::string out =
        "ctl commands (write them to NETWORK/ctl, one per line; reading ctl lists a network's):\n";

    std::shared_ptr<bus::Network> net;
    if (bus::Status s = bus::Network::create("help", bus::Settings{}, builtin, "hub", net);
        !s.ok()) {
        return out + fmt::format("  (cannot list them: {})\n", s.reason);
    }
    out += "  every network:\n";
    for (const std::string& line : help_lines(net->commands())) append_line(line, out);

    std::vector<std::string> builtins = split(builtin.names(), ", ");
    for (const std::string& name : split(catalog.names(), ", ")) {
        std::string kind = contains(builtins, name) ? "" : " (plugin)";
        auto [status, policy] = catalog.make(name);
        if (!status.ok()) {
            out += fmt::format("  {} networks{}: cannot be used: {}\n", name, kind, status.reason);
            continue;
        }
        if (policy->commands().empty()) {
            out += fmt::format("  {} networks{} take no more commands\n", name, kind);
            continue;
        }
        out += fmt::format("  {} networks{} also take:\n", name, kind);
        for (const std::string& line : help_lines(policy->commands())) append_line(line, out);
    }

    NoNetworks directory;
    std::unique_ptr<bus::Extension> extension = extensions.make(*net, directory);
    out += "  every network, for kernel interfaces, cables and VDE endpoints:\n";
    for (const std::string& line : help_lines(extension->commands())) append_line(line, out);
    out += '\n';
    return out;
}

void print_ctl_help(const std::string& plugin_dir) {
    policies::Catalog catalog(plugin_dir);
    policies::Catalog builtin;
    netdev::Engine engine;
    netdev::Cables cables(engine);
    netdev::VdeDir no_vde_dir;
    netdev::AttachmentsMaker attachments(engine, cables, no_vde_dir);
    std::fputs(ctl_help(catalog, builtin, attachments).c_str(), stdout);
}

}  // namespace ipnfs::daemon
