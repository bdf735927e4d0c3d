#include "netdev/attachments.hpp"

#include "netdev/interfaces.hpp"
#include "netdev/vde_endpoint.hpp"

namespace ipnfs::netdev {

Attachments::Attachments(std::vector<std::unique_ptr<bus::Extension>> parts)
    : parts_(std::move(parts)) {
    for (const auto& part : parts_) {
        const bus::CommandTable& table = part->commands();
        commands_.insert(commands_.end(), table.begin(), table.end());
    }
}

void Attachments::describe(std::string& out) const {
    for (const auto& part : parts_) part->describe(out);
}

void Attachments::stats(std::string& out) const {
    for (const auto& part : parts_) part->stats(out);
}

void Attachments::set_access(const bus::Access& access) {
    for (const auto& part : parts_) part->set_access(access);
}

void Attachments::hang_up() {
    for (const auto& part : parts_) part->hang_up();
}

std::unique_ptr<bus::Extension> AttachmentsMaker::make(bus::Network& network,
                                                       const bus::Directory& directory) const {
    std::vector<std::unique_ptr<bus::Extension>> parts;
    parts.push_back(std::make_unique<Interfaces>(network, engine_));
    parts.push_back(std::make_unique<CablePorts>(network, directory, cables_));
    parts.push_back(std::make_unique<VdeEndpoints>(network, engine_, vde_dir_));
    return std::make_unique<Attachments>(std::move(parts));
}

}  // namespace ipnfs::netdev
