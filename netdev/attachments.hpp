// Everything of one network that lives outside the bus, offered to it as its
// one bus::Extension: kernel interfaces, VDE endpoints, cables.  Each part
// keeps its own verbs, lines and lock; this only puts them side by side.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/extension.hpp"
#include "netdev/cables.hpp"
#include "netdev/engine.hpp"
#include "netdev/vde_dir.hpp"

namespace ipnfs::netdev {

class Attachments final : public bus::Extension {
  public:
    explicit Attachments(std::vector<std::unique_ptr<bus::Extension>> parts);

    [[nodiscard]] const bus::CommandTable& commands() const override { return commands_; }
    void describe(std::string& out) const override;
    void stats(std::string& out) const override;
    void set_access(const bus::Access& access) override;
    void hang_up() override;

  private:
    std::vector<std::unique_ptr<bus::Extension>> parts_;
    bus::CommandTable commands_;  // every part's verbs, in part order
};

// Gives every network its Attachments, served by one engine.
class AttachmentsMaker final : public bus::ExtensionMaker {
  public:
    AttachmentsMaker(Engine& engine, Cables& cables, const VdeDir& vde_dir)
        : engine_(engine), cables_(cables), vde_dir_(vde_dir) {}
    [[nodiscard]] std::unique_ptr<bus::Extension> make(
        bus::Network& network, const bus::Directory& directory) const override;

  private:
    Engine& engine_;
    Cables& cables_;
    const VdeDir& vde_dir_;
};

}  // namespace ipnfs::netdev
