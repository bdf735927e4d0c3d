// ctl commands, settings, and the text of ctl and stats.
#include <array>
#include <chrono>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "bus/after_unlock.hpp"
#include "bus/network.hpp"

namespace ipnfs::bus {

namespace {

Status busy_unless_idle(std::uint32_t connected, std::string_view what) {
    if (connected == 0) return Status::success();
    return Status::error(std::errc::device_or_resource_busy,
                         fmt::format("{} can change only while no port is connected ({} connected)",
                                     what, connected));
}

}  // namespace

// Rows run under mu_ (control_line() dispatches them holding it); the
// analysis does not follow std::function, so each row says so.
CommandTable Network::command_rows(AfterUnlock& after) {
    return {
        {.verb = "policy",
         .args = "NAME",
         .nargs = 1,
         .help = "choose who receives each message; only while no port is connected",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_policy(w[0]);
             }},
        {.verb = "mtu",
         .args = "BYTES",
         .nargs = 1,
         .help = "largest message a write may send (1-65535)",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_number(w, Limits::kMaxMtu, "mtu", false, settings_.mtu);
             }},
        {.verb = "queue",
         .args = "MESSAGES",
         .nargs = 1,
         .help = "messages a port holds (1-65536); only while no port is connected",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_number(w, Limits::kMaxQueue, "queue", true, settings_.queue);
             }},
        {.verb = "ports",
         .args = "COUNT",
         .nargs = 1,
         .help = "number of port files (1-65536); never below a connected port",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_ports(w);
             }},
        {.verb = "lossless",
         .args = "on|off",
         .nargs = 1,
         .help = "on: full queues make senders wait, nothing is lost; only while no port is "
                 "connected",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_lossless(w);
             }},
        {.verb = "quorum",
         .args = "on|off",
         .nargs = 1,
         .help = "cluster networks: on: sends fail (ENETDOWN) while this host's part of the "
                 "cluster has no quorum; set before 'scope cluster'",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_quorum(w);
             }},
        {.verb = "pool",
         .args = "MESSAGES",
         .nargs = 1,
         .help = "lossless: messages pending in the whole network (1-1048576)",
         .run =
             [this, &after](Words w) {
                 mu_.assert_held();
                 Status s = set_number(w, Limits::kMaxPool, "pool", false, settings_.pool);
                 if (s.ok()) room_freed(after);  // a larger pool may let them go
                 return s;
             }},
        {.verb = "holdtime",
         .args = "MS",
         .nargs = 1,
         .help = "lossless: a port holding senders back this long loses copies until it reads "
                 "(0-3600000; 0: never)",
         .run =
             [this](Words w) {
                 mu_.assert_held();
                 return set_holdtime(w);
             }},
        {.verb = "dropwhenfull",
         .args = "PORT on|off",
         .nargs = 2,
         .help = "lossless: the port loses its own copies when full instead of holding senders",
         .run =
             [this, &after](Words w) {
                 mu_.assert_held();
                 return set_port_flag(w, "dropwhenfull", &Port::drop_when_full, after);
             },
         .holder = Holder::manager},
        {.verb = "events",
         .args = "PORT on|off",
         .nargs = 2,
         .help = "the port also receives join, leave and counts events",
         .run =
             [this, &after](Words w) {
                 mu_.assert_held();
                 return set_port_flag(w, "events", &Port::events, after);
             },
         .holder = Holder::reader},
    };
}

std::uint32_t Network::connected_ports() const {
    return static_cast<std::uint32_t>(connected_.size());
}

Status Network::set_policy(std::string_view name) {
    if (name == policy_->name()) return Status::success();
    if (Status s = cluster_allows("policy"); !s.ok()) return s;
    MadePolicy made = catalog_.make(name);
    if (!made.status.ok()) return made.status;
    if (Status s = busy_unless_idle(connected_ports(), "policy"); !s.ok()) return s;
    made.policy->on_ports(static_cast<PortId>(ports_.size()));
    made.policy->on_network(name_);
    policy_ = std::move(made.policy);
    return Status::success();
}

Status Network::set_number(Words w, std::uint32_t max, const char* what, bool idle_only,
                           std::uint32_t& field) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 1, max, what, v); !s.ok()) return s;
    if (v == field) return Status::success();
    if (idle_only) {
        if (Status s = busy_unless_idle(connected_ports(), what); !s.ok()) return s;
    }
    field = static_cast<std::uint32_t>(v);
    return Status::success();
}

Status Network::set_holdtime(Words w) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 0, Limits::kMaxHoldtime, "holdtime", v); !s.ok()) return s;
    settings_.holdtime = static_cast<std::uint32_t>(v);
    // Sends already waiting are held to the new bound, counted from when
    // the head began to wait.
    if (!senders_.empty() && settings_.holdtime > 0) {
        Timer::shared().arm(hold_timer_,
                            head_since_ + std::chrono::milliseconds(settings_.holdtime));
    }
    return Status::success();
}

Status Network::set_lossless(Words w) {
    bool on = false;
    if (Status s = parse_on_off(w[0], "lossless", on); !s.ok()) return s;
    if (on == settings_.lossless) return Status::success();
    if (Status s = cluster_allows("lossless"); !s.ok()) return s;
    if (Status s = busy_unless_idle(connected_ports(), "lossless"); !s.ok()) return s;
    settings_.lossless = on;
    return Status::success();
}

// Shared by the group like lossless: it changes only while the network is
// this host's alone.  Any port may be open meanwhile: it refuses nothing there.
Status Network::set_quorum(Words w) {
    bool on = false;
    if (Status s = parse_on_off(w[0], "quorum", on); !s.ok()) return s;
    if (on == settings_.quorum) return Status::success();
    if (Status s = cluster_allows("quorum"); !s.ok()) return s;
    settings_.quorum = on;
    return Status::success();
}

Status Network::set_port_flag(Words w, const char* what, bool Port::*flag, AfterUnlock& after) {
    std::uint64_t id = 0;
    if (Status s = parse_uint(w[0], 0, ports_.size() - 1, "port", id); !s.ok()) return s;
    bool on = false;
    if (Status s = parse_on_off(w[1], what, on); !s.ok()) return s;
    apply_port_flag(static_cast<PortId>(id), flag, on, after);
    return Status::success();
}

void Network::apply_port_flag(PortId id, bool Port::*flag, bool on, AfterUnlock& after) {
    Port& port = *ports_[id];
    bool was = port.*flag;
    port.*flag = on;
    track(port);
    if (flag == &Port::events && on && !was && port.ring) send_snapshot(port, id, after);
    if (flag == &Port::drop_when_full && on) room_freed(after);
}

Status Network::set_events(PortId id, bool on) {
    AfterUnlock after;
    Listener* listener = nullptr;
    {
        MutexLock lock(mu_);
        if (id >= ports_.size()) {
            return Status::error(std::errc::no_such_file_or_directory,
                                 fmt::format("no port {}", id));
        }
        if (ports_[id]->connected()) holder_changes(*ports_[id]);
        apply_port_flag(id, &Port::events, on, after);
        listener = listener_;
    }
    after.run(listener);
    return Status::success();
}

Status Network::set_ports(Words w) {
    std::uint64_t v = 0;
    if (Status s = parse_uint(w[0], 1, Limits::kMaxPorts, "ports", v); !s.ok()) return s;
    auto count = static_cast<PortId>(v);
    for (PortId id = count; id < ports_.size(); ++id) {
        if (ports_[id]->connected()) {
            return Status::error(
                std::errc::device_or_resource_busy,
                fmt::format("cannot shrink to {} ports: port {} is connected", count, id));
        }
    }
    free_.resize(count);
    if (count < ports_.size()) {
        ports_.resize(count);
    } else {
        while (ports_.size() < count)
            ports_.push_back(std::make_unique<Port>(static_cast<PortId>(ports_.size())));
    }
    settings_.ports = count;
    policy_->on_ports(count);
    return Status::success();
}

Status Network::control(std::string_view text, const Caller& caller) {
    Status result;
    for_each_line(text, [&](std::string_view line) {
        auto words = split_words(line);
        if (words.empty() || words[0].starts_with('#')) return true;
        result = control_line(line, caller, Writer::manager);
        if (result.ok()) return true;
        result.reason = fmt::format("{}: {}", fmt::join(words, " "), result.reason);
        return false;
    });
    MutexLock lock(mu_);
    last_error_ = result.ok() ? std::string() : result.reason;
    return result;
}

Status Network::control_line(std::string_view line, const Caller& caller, Writer writer) {
    // Joining or leaving the group may wait for the engine: without mu_.
    if (std::array<const CommandTable*, 1> unlocked{&unlocked_commands_};
        find_command(unlocked, line) != nullptr) {
        return dispatch(unlocked, line, caller);
    }
    // The extension's verbs connect and disconnect, which take mu_: they run
    // without it.
    if (extension_) {
        std::array<const CommandTable*, 1> outside{&extension_->commands()};
        if (find_command(outside, line) != nullptr) {
            if (extension_hung_up_.load()) {
                return Status::error(std::errc::no_such_file_or_directory, "network is removed");
            }
            return dispatch(outside, line, caller);
        }
    }
    AfterUnlock after;
    Listener* listener = nullptr;
    Status result;
    {
        MutexLock lock(mu_);
        listener = listener_;
        CommandTable own = command_rows(after);
        std::array<const CommandTable*, 2> tables{&own, &policy_->commands()};
        std::array<const CommandTable*, 1> policy{&policy_->commands()};
        // A policy setting may change what the group knows of a port (its
        // instance), which takes credit as a message does.
        if (replica_ && find_command(policy, line) != nullptr &&
            replica_->credit(0) != Replica::Credit::now) {
            return Status::error(std::errc::resource_unavailable_try_again,
                                 "the cluster is not taking changes now (its engine or a slow "
                                 "host is behind): try again");
        }
        result = dispatch(tables, line, caller);
        if (result.ok() && writer == Writer::manager) result = manager_wrote(line);
        if (replica_) {
            for (PortId id : connected_) sync_presence(*ports_[id]);
        }
        lossless_.store(settings_.lossless, std::memory_order_relaxed);
        // A setting may change where sends go (member, dest): parked ones
        // may now fit, and pollers' destinations may now have room.
        if (result.ok()) {
            room_freed(after);
            policy_tick(after);  // a policy setting may change what it sends
        }
    }
    after.run(listener);
    return result;
}

namespace {

// Why a descriptor that grants `grant` may not run `cmd`, or empty if it may.
std::string_view refusal(const Command& cmd, const PortGrant& grant) {
    switch (cmd.holder) {
        case Holder::none:
            return "is not a setting of a port itself: write it to ctl";
        case Holder::reader:
            return grant.reads || grant.manage
                       ? ""
                       : "changes what the port receives: it needs a descriptor open for reading";
        case Holder::writer:
            return grant.writes || grant.manage
                       ? ""
                       : "changes what the port sends: it needs a descriptor open for writing";
        case Holder::manager:
            return grant.manage ? ""
                                : "can make the port's reader lose messages: it needs write "
                                  "access to ctl";
    }
    return "";
}

}  // namespace

Status Network::control_port(PortId port, std::string_view line, const PortGrant& grant) {
    auto words = split_words(line);
    if (words.empty() || line.find('\n') != std::string_view::npos) {
        return Status::error(std::errc::invalid_argument, "one setting, on one line, is expected");
    }
    {
        MutexLock lock(mu_);
        std::array<const CommandTable*, 2> tables{&commands_, &policy_->commands()};
        const Command* cmd = find_command(tables, line);
        if (cmd == nullptr) {
            return Status::error(
                std::errc::invalid_argument,
                fmt::format("unknown command '{}' (read ctl for the list)", words[0]));
        }
        if (std::string_view why = refusal(*cmd, grant); !why.empty()) {
            return Status::error(std::errc::operation_not_permitted,
                                 fmt::format("'{}' {}", words[0], why));
        }
        if (port < ports_.size()) holder_changes(*ports_[port]);
    }
    // A policy changes only while no port is connected, and the caller's is:
    // the command found above is the one that runs.
    std::string full = fmt::format("{} {}", words[0], port);
    for (std::string_view w : std::span(words).subspan(1))
        fmt::format_to(std::back_inserter(full), " {}", w);
    Status s = control_line(full, Caller{}, Writer::holder);
    if (!s.ok()) {
        s.reason = fmt::format("{}: {}", full, s.reason);
        return s;
    }
    return s;
}

std::string Network::describe() const {
    UniqueLock lock(mu_);
    std::string out =
        fmt::format("policy {}\nports {}\nmtu {}\nqueue {}\nlossless {}\npool {}\nholdtime {}\n",
                    policy_->name(), ports_.size(), settings_.mtu, settings_.queue,
                    settings_.lossless ? "on" : "off", settings_.pool, settings_.holdtime);
    // Before scope: replayed, quorum can no longer change once it is cluster.
    if (settings_.quorum) out += "quorum on\n";
    if (replica_) out += "scope cluster\n";
    std::string hidden;
    describe_port_settings(out, hidden);
    std::string last_error = last_error_;
    std::string help;
    append_help(commands_, help);
    append_help(policy_->commands(), help);
    lock.unlock();  // the extension has its own lock, never taken under mu_
    if (extension_) {
        extension_->describe(out);
        append_help(extension_->commands(), help);
    }
    out += hidden;
    if (!last_error.empty()) out += fmt::format("# last error: {}\n", last_error);
    out += fmt::format("#\n# Write commands here, one per line. Policies: {}.\n", catalog_.names());
    return out + help;
}

std::string Network::stats() const {
    UniqueLock lock(mu_);
    std::uint64_t in = 0;
    std::uint64_t bin = 0;
    std::uint64_t out = 0;
    std::uint64_t bout = 0;
    std::uint64_t drops = 0;
    std::string rows;
    std::uint32_t connected = 0;
    for (const auto& port : ports_) {
        const Port& p = *port;
        const PortCounters& c = p.counters;
        auto pin = c.msgs_in.load(std::memory_order_relaxed);
        auto pbin = c.bytes_in.load(std::memory_order_relaxed);
        auto pout = c.msgs_out.load(std::memory_order_relaxed);
        auto pbout = c.bytes_out.load(std::memory_order_relaxed);
        auto pdrops = c.drops.load(std::memory_order_relaxed);
        in += pin;
        bin += pbin;
        out += pout;
        bout += pbout;
        drops += pdrops;
        connected += p.connected() ? 1 : 0;
        if (!p.connected() && pin + pout + pdrops == 0) continue;
        rows += fmt::format("{:<6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6}\n", p.id,
                            p.readers, p.writers, pin, pbin, pout, pbout, pdrops, p.queued());
    }
    std::string text = fmt::format(
        "network {}\npolicy {}\nports {}\nconnected {}\nmsgs_in {}\nbytes_in {}\n"
        "msgs_out {}\nbytes_out {}\ndrops {}\nlossless {}\npool_used {}\npool {}\n"
        "parked_readers {}\nparked_senders {}\nevent_readers {}\ncapture_readers {}\n"
        "captured {}\ncapture_drops {}\nheld_bytes {}\nheld_limit {}\nowner_held {}\n"
        "owner_limit {}\nover_limit_drops {}\nstalls {}\n\n",
        name_, policy_->name(), ports_.size(), connected, in, bin, out, bout, drops,
        settings_.lossless ? "on" : "off", pool_used_, settings_.pool, parked_readers_,
        senders_.size(), observers_.size() - capture_readers_, capture_readers_, captured_,
        capture_drops_, held_.held(), held_.limit(),
        owner_budget_ != nullptr ? owner_budget_->held() : 0,
        owner_budget_ != nullptr ? owner_budget_->limit() : 0, over_limit_drops_, stalls_);
    text += fmt::format("{:<6} {:>7} {:>7} {:>10} {:>12} {:>10} {:>12} {:>8} {:>6}\n", "port",
                        "readers", "writers", "msgs_in", "bytes_in", "msgs_out", "bytes_out",
                        "drops", "queued");
    text += rows;
    std::string sections;
    policy_->stats(sections);
    if (replica_) {
        const PortCounters& c = cluster_origin_.counters;
        sections += fmt::format(
            "cluster_msgs_in {}\ncluster_bytes_in {}\ncluster_drops {}\ncluster_unreachable {}\n"
            "cluster_inbound {}\ncluster_window_waits {}\ncluster_quorum {}\n"
            "cluster_quorum_refusals {}\n",
            c.msgs_in.load(std::memory_order_relaxed), c.bytes_in.load(std::memory_order_relaxed),
            cluster_drops_, cluster_unreachable_, inbound_.size(), window_waits_,
            settings_.quorum ? "on" : "off", quorum_refusals_);
        replica_->stats(sections);
    }
    lock.unlock();  // the extension has its own lock, never taken under mu_
    if (extension_) extension_->stats(sections);
    if (!sections.empty()) text += "\n" + sections;
    return text;
}

Network::Gauges Network::gauges() const {
    MutexLock lock(mu_);
    return {parked_readers_, senders_.size(), held_.held()};
}

}  // namespace ipnfs::bus
