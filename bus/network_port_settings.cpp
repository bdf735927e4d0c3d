// Who set a port's settings, and how long they last.  A manager's ctl line
// is the port's configuration and stays; a holder's change
// (IPNFS_IOC_PORT_CTL, IPNFS_IOC_SET_EVENTS) lasts until the port's last
// descriptor closes, and then the port goes back to its configuration: the
// settings it had when its holder first changed one, plus what a manager
// wrote to ctl for it since.  ctl shows which is which (describe()).
#include <algorithm>
#include <array>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

namespace {

// A manager writes this many distinct lines for one port at most while its
// holder's settings are in force: the configuration it keeps is bounded.
constexpr std::size_t kMaxConfigurationLines = 1024;

// The line in the form describe() writes: its words, one space apart, no
// trailing comment.
std::string normal_form(std::string_view line) {
    return fmt::format("{}", fmt::join(split_words(line), " "));
}

// The port a setting line is about: its verb is a port's (a holder may run
// it) and its first word names the port.
std::optional<PortId> port_of(std::span<const CommandTable* const> tables, std::string_view line) {
    const Command* cmd = find_command(tables, line);
    auto words = split_words(line);
    std::uint64_t port = 0;
    if (cmd == nullptr || cmd->holder == Holder::none || words.size() < 2 ||
        !parse_uint(words[1], 0, Limits::kMaxPorts - 1, "port", port).ok()) {
        return std::nullopt;
    }
    return static_cast<PortId>(port);
}

}  // namespace

std::vector<std::string> Network::setting_lines() const {
    std::string text;
    for (const auto& port : ports_) {
        if (port->drop_when_full) text += fmt::format("dropwhenfull {} on\n", port->id);
        if (port->events) text += fmt::format("events {} on\n", port->id);
    }
    policy_->describe(text);
    std::vector<std::string> lines;
    for_each_line(text, [&](std::string_view line) {
        if (!split_words(line).empty()) lines.emplace_back(line);
    });
    return lines;
}

std::vector<std::string> Network::port_lines(PortId id) const {
    std::array<const CommandTable*, 2> tables{&commands_, &policy_->commands()};
    std::vector<std::string> lines = setting_lines();
    std::erase_if(lines, [&](const std::string& line) { return port_of(tables, line) != id; });
    return lines;
}

void Network::holder_changes(Port& port) {
    if (port.configuration) return;
    // A port no manager configured is at its defaults: nothing to keep, and
    // no O(ports) describe() while an open-set-close cycle holds mu_.
    port.configuration = std::make_unique<std::vector<std::string>>();
    if (port.configured) *port.configuration = port_lines(port.id);
}

Status Network::manager_wrote(std::string_view line) {
    std::array<const CommandTable*, 2> tables{&commands_, &policy_->commands()};
    std::optional<PortId> id = port_of(tables, line);
    if (!id || *id >= ports_.size()) return Status::success();
    ports_[*id]->configured = true;
    if (!ports_[*id]->configuration) return Status::success();
    std::vector<std::string>& kept = *ports_[*id]->configuration;
    std::string normal = normal_form(line);
    std::erase(kept, normal);  // written again: its place is now the last
    if (kept.size() >= kMaxConfigurationLines) {
        return Status::error(
            std::errc::no_space_on_device,
            fmt::format("port {} already keeps {} lines of configuration while its holder's "
                        "settings are in force; write again after its last close",
                        *id, kept.size()));
    }
    kept.push_back(std::move(normal));
    return Status::success();
}

void Network::reset_port(Port& port, AfterUnlock& after) {
    std::unique_ptr<std::vector<std::string>> configuration = std::move(port.configuration);
    port.events = false;
    port.drop_when_full = false;
    track(port);
    policy_->reset_port(port.id);
    if (configuration->empty()) return;
    // Each line ran once already, under this policy (a policy changes only
    // while no port is connected): it runs again the same way.
    CommandTable own = command_rows(after);
    std::array<const CommandTable*, 2> tables{&own, &policy_->commands()};
    for (const std::string& line : *configuration) (void)dispatch(tables, line, Caller{});
}

void Network::describe_port_settings(std::string& out, std::string& hidden) const {
    std::array<const CommandTable*, 2> tables{&commands_, &policy_->commands()};
    std::vector<std::string> lines = setting_lines();
    for (const std::string& line : lines) {
        std::optional<PortId> id = port_of(tables, line);
        const std::vector<std::string>* kept =
            id && *id < ports_.size() ? ports_[*id]->configuration.get() : nullptr;
        out += line;
        if (kept != nullptr && std::ranges::find(*kept, normal_form(line)) == kept->end())
            out += fmt::format("  {}", kHolderSetNote);
        out += '\n';
    }
    // What a holder's change hides for now and its last close brings back.
    for (const auto& port : ports_) {
        if (!port->configuration) continue;
        for (const std::string& line : *port->configuration) {
            if (std::ranges::find(lines, line) == lines.end())
                hidden += fmt::format("# {}  {}\n", line, kComesBackNote);
        }
    }
}

}  // namespace ipnfs::bus
