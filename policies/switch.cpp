#include "policies/switch.hpp"

#include <algorithm>
#include <utility>

#include "policies/addressing.hpp"

namespace ipnfs::policies {

Switch::Switch(std::function<Clock::time_point()> now) : now_(std::move(now)) {
    build_commands();
}

void Switch::on_ports(bus::PortId count) {
    // The network detaches ports before removing them; a port that is still
    // attached here would stay in members_ and be named after it is gone.
    for (bus::PortId port = count; port < ports_.size(); ++port) on_detach(port);
    ports_.resize(count);
    table_.forget_ports_from(count);
    stp_.set_ports(count);
}

void Switch::on_attach(bus::PortId port) {
    if (port >= ports_.size() || ports_[port].attached) return;
    ports_[port].attached = true;
    join_vlans(port);
    if (ports_[port].mirror) mirrors_.push_back(port);
    stp_.port_up(port, now_());
}

void Switch::on_detach(bus::PortId port) {
    if (port >= ports_.size() || !ports_[port].attached) return;
    leave_vlans(port);
    ports_[port].attached = false;
    stp_.port_down(port, now_());
    if (auto it = std::ranges::find(mirrors_, port); it != mirrors_.end()) {
        *it = mirrors_.back();
        mirrors_.pop_back();
    }
}

bool Switch::carries(const SwitchPort& p, Vid vlan) {
    return vlan != kNoVlan && (p.untagged == vlan || std::ranges::binary_search(p.trunk, vlan));
}

void Switch::join_vlans(bus::PortId port) {
    const SwitchPort& p = ports_[port];
    if (!p.attached) return;
    if (p.untagged != kNoVlan) members_.add(p.untagged, port);
    for (Vid vlan : p.trunk) members_.add(vlan, port);
}

void Switch::leave_vlans(bus::PortId port) {
    const SwitchPort& p = ports_[port];
    if (!p.attached) return;
    if (p.untagged != kNoVlan) members_.remove(p.untagged, port);
    for (Vid vlan : p.trunk) members_.remove(vlan, port);
}

Switch::Vid Switch::ingress_vlan(const SwitchPort& p, const ethernet::Frame& f) {
    // A priority tag (VID 0) carries only a priority: the frame is the
    // port's own, as if untagged.
    if (!f.tagged || f.vid() == 0) return p.untagged;
    return std::ranges::binary_search(p.trunk, f.vid()) ? f.vid() : kNoVlan;
}

void Switch::sent(bus::PortId from, const bus::Route& route) {
    if (route.tally == 0) return;
    if ((route.tally & kTableFull) != 0) ++table_full_;
    if (from >= ports_.size()) return;  // another host's port (scope cluster)
    SwitchPort& sender = ports_[from];
    if ((route.tally & kMalformed) != 0) {
        ++malformed_;
        ++sender.malformed;
    }
    if ((route.tally & kVlanDrop) != 0) {
        ++vlan_drops_;
        ++sender.vlan_drops;
    }
    if ((route.tally & kFromMirror) != 0) ++sender.mirror_drops;
    if ((route.tally & kBpdu) != 0) {
        if (pending_bpdu_) {
            ++sender.bpdus_in;
            stp_.received(from, *pending_bpdu_, now_());
        } else {
            ++bad_bpdus_;
        }
        pending_bpdu_.reset();
    }
    if ((route.tally & kStpDiscard) != 0) {
        ++stp_discards_;
        ++sender.stp_discards;
    }
}

std::optional<MacTable::Where> Switch::learned_port(Vid vlan, ethernet::Mac dst,
                                                    Clock::time_point now) {
    std::optional<MacTable::Where> where = table_.find(vlan, dst, now);
    if (!where) return std::nullopt;
    // Another host's port: its daemon delivers the frame, while the group
    // says it receives (else every daemon floods, as for a port of ours).
    if (where->node != 0) return remote_receives(*where) ? where : std::nullopt;
    // An entry outlives the port's reader and its VLAN settings: it is used
    // only while the port can take the frame, else the frame floods.
    if (where->port >= ports_.size()) return std::nullopt;
    const SwitchPort& p = ports_[where->port];
    if (!p.attached || !carries(p, vlan) || !stp_forwards(where->port)) return std::nullopt;
    return where;
}

bool Switch::remote_receives(const MacTable::Where& where) const {
    auto it = remote_receivers_.lower_bound({where.node, where.port, 0});
    return it != remote_receivers_.end() && std::get<0>(*it) == where.node &&
           std::get<1>(*it) == where.port;
}

void Switch::name_port(bus::PortId port, Vid vlan, std::optional<Form> sent, bus::Route& out) {
    if (!stp_forwards(port) || !out.mark(port)) return;
    Form form = egress_form(port, vlan);
    if (form == sent) {
        out.to.push_back(port);
    } else {
        rewritten(form).push_back(port);
    }
}

void Switch::route(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) {
    if (!takes_address(name(), 0, out)) return;
    // On a cluster network a frame from another host's port comes with
    // `from` no port of ours has, and that port in out.origin.
    bool remote = from >= ports_.size();
    if (remote && (!cluster_ || out.origin.node == 0)) return;
    // A monitor port listens only, as a SPAN destination port on a hardware
    // switch: what it sends is neither learned nor forwarded, but counted
    // (on a cluster network by place(), where it never left its host).
    if (!remote && ports_[from].mirror) {
        if (!cluster_) out.tally |= kFromMirror;
        return;
    }
    std::optional<ethernet::Frame> frame = ethernet::parse(payload);
    if (!frame) {
        if (!cluster_) out.tally |= kMalformed;  // else place() kept it home
        return;
    }
    if (stp_on()) {
        // BPDUs are the bridge's own; a port that is not learning or
        // forwarding carries nothing else (802.1D 7.5, 7.8).  Never on a
        // cluster network (spans_hosts_now), so `from` is a port of ours.
        if (frame->dst == stp::kGroupAddress) {
            pending_bpdu_ = stp::parse(payload);
            out.tally |= kBpdu;
            out.tick = true;
            return;
        }
        if (!stp_.learning(from)) {
            out.tally |= kStpDiscard;
            return;
        }
    }
    // On a cluster network the sender's daemon classified the frame and put
    // it in the form a trunk between hosts carries it (place()).
    Vid vlan = cluster_ ? trunk_vlan(*frame) : ingress_vlan(ports_[from], *frame);
    if (vlan == kNoVlan) {
        out.tally |= kVlanDrop;
        return;
    }

    Clock::time_point now = now_();
    // Group source addresses are bogus (no station sends from one): learning
    // them would only fill the table.  Every daemon learns in the group's
    // order, so all agree on where an address is.
    MacTable::Where where =
        remote ? MacTable::Where{out.origin.node, out.origin.port} : MacTable::Where{0, from};
    if (!ethernet::is_group(frame->src) &&
        table_.learn(vlan, frame->src, where, now) == MacTable::Learned::full) {
        out.tally |= kTableFull;
    }
    if (!remote && !stp_forwards(from)) {
        out.tally |= kStpDiscard;  // learning: the address is kept, the frame is not
        return;
    }

    // A priority-tagged frame leaves in neither form as sent: both are
    // rewritten (its tag dropped, or its VID filled in).
    std::optional<Form> sent;
    if (!frame->tagged) {
        sent = Form::untagged;
    } else if (frame->vid() != 0) {
        sent = Form::tagged;
    }

    if (!remote) out.mark(from);  // the sender never gets its own frame
    std::optional<MacTable::Where> known;
    if (!ethernet::is_group(frame->dst)) known = learned_port(vlan, frame->dst, now);
    if (known) {
        // Another host's port: its daemon delivers it, no port here does.
        if (known->node == 0) name_port(known->port, vlan, sent, out);
    } else {
        for (bus::PortId port : members_.ports(vlan)) name_port(port, vlan, sent, out);
    }
    for (bus::PortId port : mirrors_) name_port(port, vlan, sent, out);

    if (!rewritten(Form::untagged).empty()) {
        bus::Route::Variant& v = out.add_variant();
        ethernet::strip_tag(payload, v.payload);
        std::swap(v.to, rewritten(Form::untagged));
    }
    if (!rewritten(Form::tagged).empty()) {
        bus::Route::Variant& v = out.add_variant();
        ethernet::tag_with(payload, *frame, vlan, v.payload);
        std::swap(v.to, rewritten(Form::tagged));
    }
}

// ---- cluster scope ----

bus::Status Switch::spans_hosts_now() const {
    if (!stp_on()) return bus::Status::success();
    return bus::Status::error(std::errc::not_supported,
                              "the switch's spanning tree is one host's and cannot span hosts: "
                              "write 'stp off' first (docs/cluster.md, the switch across hosts)");
}

void Switch::on_scope(bool cluster) {
    cluster_ = cluster;
    if (cluster) return;
    // What the group told of other hosts means nothing on one host.
    remote_receivers_.clear();
    table_.forget_remote();
}

void Switch::on_remote(const bus::Origin& port, const bus::Presence* presence) {
    auto key = std::tuple{port.node, port.port, port.daemon};
    if (presence != nullptr && presence->receives) {
        remote_receivers_.insert(key);
    } else {
        remote_receivers_.erase(key);
    }
}

void Switch::place(bus::PortId from, std::span<const std::byte> payload, bus::Route& out) {
    // Only this daemon knows its ports' VLANs: it classifies the frame and
    // sends it as a trunk carrying every VLAN would (VLAN 1 untagged, the
    // others tagged), so every daemon's route() reads the same VLAN from
    // it.  What this port's VLANs do not take never leaves the host.
    if (!takes_address(name(), 0, out) || from >= ports_.size()) return;
    const SwitchPort& sender = ports_[from];
    if (sender.mirror) {
        out.tally |= kFromMirror;
        out.nowhere = true;
        return;
    }
    std::optional<ethernet::Frame> frame = ethernet::parse(payload);
    if (!frame) {
        out.tally |= kMalformed;
        out.nowhere = true;
        return;
    }
    Vid vlan = ingress_vlan(sender, *frame);
    if (vlan == kNoVlan) {
        out.tally |= kVlanDrop;
        out.nowhere = true;
        return;
    }
    if (trunk_vlan(*frame) == vlan) return;  // as it was written
    // Untagged or priority-tagged, on a port whose untagged VLAN is not 1:
    // tagged with it (a priority tag keeps its PCP and DEI).
    ethernet::tag_with(payload, *frame, vlan, out.rewrite);
    out.rewritten = true;
}

}  // namespace ipnfs::policies
