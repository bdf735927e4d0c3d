#include "cluster/service.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <system_error>

#include <fmt/format.h>

#include "bus/log.hpp"
#include "bus/network.hpp"
#include "cluster/replica.hpp"

namespace ipnfs::cluster {

namespace {

// How soon a send the engine refused (busy) is tried again.
constexpr int kRetryMs = 1;
// How long `scope cluster` waits for the other daemons to say their
// settings: a round of the group's token, normally milliseconds.
constexpr std::chrono::milliseconds kSettleLimit{2000};

}  // namespace

Service::Service(std::unique_ptr<Engine> engine)
    : engine_(std::move(engine)), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Service::~Service() {
    std::thread thread;
    {
        MutexLock lock(mu_);
        stop_ = true;
        thread = std::move(thread_);
    }
    wake();
    if (thread.joinable()) thread.join();
    close(wake_fd_);
}

bus::MadeReplica Service::make(bus::Network& network) {
    std::string name = "ipnfs:" + network.name();
    if (name.size() > Engine::kMaxGroupName) {
        return {bus::Status::error(std::errc::filename_too_long,
                                   fmt::format("a cluster network's name has at most {} bytes",
                                               Engine::kMaxGroupName - 6)),
                nullptr};
    }
    auto replica = std::make_unique<Replica>(*this, network, engine_->max_message());
    if (bus::Status s = replica->join(*engine_, name); !s.ok()) return {s, nullptr};
    // After the join, which says whether corosync runs at all.
    if (bus::Status s = watch_quorum(); !s.ok() && network.quorum_required()) {
        return {s, nullptr};
    }
    add(*replica);
    // A name another daemon uses with other settings is refused here, where
    // ctl can say so, rather than only in stats later.
    if (bus::Status s = replica->settle(kSettleLimit); !s.ok()) return {s, nullptr};
    bus::Origin self = replica->self();
    bus::log::info({network.name(), "cluster-scope"}, "joined the cluster group {} as node {}",
                   name, self.node);
    return {bus::Status::success(), std::move(replica)};
}

void Service::add(Replica& replica) {
    // In turn with the watch's news: the replica starts from the last word.
    MutexLock turn(turn_mu_);
    bool known = false;
    bool quorate = false;
    {
        MutexLock lock(mu_);
        replicas_.push_back(&replica);
        known = watch_ != nullptr;
        quorate = quorate_;
        // The thread starts with the first group: after the daemon forked
        // into the background, which threads would not survive.
        if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    }
    replica.set_quorum(known, quorate);
    wake();  // the thread polls the new group's descriptor from its next turn
}

bus::Status Service::watch_quorum() {
    {
        MutexLock lock(mu_);
        if (watch_) return bus::Status::success();
    }
    // A local call that may block briefly: under no lock.
    Watching watching = engine_->watch_quorum(*this);
    if (!watching.status.ok()) {
        bus::log::limited(spdlog::level::warn, {"cluster-quorum-watch"},
                          "cluster service: cannot watch quorum: {}", watching.status.reason);
        return watching.status;
    }
    std::unique_ptr<QuorumWatch> spare;  // another make() started one meanwhile
    {
        MutexLock turn(turn_mu_);
        {
            MutexLock lock(mu_);
            if (watch_) {
                spare = std::move(watching.watch);
            } else {
                watch_ = std::move(watching.watch);
                quorate_ = watching.quorate;
            }
        }
        if (!spare) tell_quorum(true, watching.quorate);
    }
    wake();  // the thread polls the watch from its next turn
    return bus::Status::success();
}

void Service::quorum(bool quorate) {
    {
        MutexLock lock(mu_);
        quorate_ = quorate;
    }
    tell_quorum(true, quorate);
}

void Service::tell_quorum(bool known, bool quorate) {
    std::vector<Replica*> live;
    {
        MutexLock lock(mu_);
        live = replicas_;
    }
    for (Replica* r : live) r->set_quorum(known, quorate);
}

void Service::remove(Replica& replica) {
    {
        MutexLock lock(mu_);
        std::erase(replicas_, &replica);
    }
    wake();
    // A turn that began before the erase may still use it: wait it out.
    MutexLock turn(turn_mu_);
}

void Service::wake() {
    std::uint64_t one = 1;
    // A full counter already wakes the thread: nothing is lost.
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void Service::loop() {
    std::vector<pollfd> fds;
    std::vector<Replica*> polled;
    bool retry = false;
    for (;;) {
        fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
        // Only this thread ends the watch: it stays valid for the turn.
        QuorumWatch* watch = nullptr;
        {
            // Under mu_: once remove() let go of it, a replica may be gone.
            MutexLock lock(mu_);
            if (stop_) return;
            polled = replicas_;
            for (Replica* r : polled) fds.push_back(pollfd{r->fd(), POLLIN, 0});
            watch = watch_.get();
            if (watch != nullptr) fds.push_back(pollfd{watch->fd(), POLLIN, 0});
        }
        if (poll(fds.data(), fds.size(), retry ? kRetryMs : -1) < 0 && errno != EINTR) {
            bus::log::limited(spdlog::level::err, {"cluster-poll"}, "cluster service: poll: {}",
                              std::generic_category().message(errno));
        }
        if ((fds[0].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof count);
        }
        MutexLock turn(turn_mu_);
        std::vector<Replica*> live;
        {
            MutexLock lock(mu_);
            if (stop_) return;
            live = replicas_;
        }
        retry = false;
        // Quorum first: what the turn then sends is judged by the latest word.
        if (watch != nullptr && (fds.back().revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
            if (bus::Status s = watch->dispatch(); !s.ok()) end_watch(s);
        }
        for (std::size_t i = 0; i < polled.size(); ++i) {
            // Only replicas still registered: remove() waits for this turn.
            if ((fds[i + 1].revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
            if (std::ranges::find(live, polled[i]) != live.end()) polled[i]->dispatch();
        }
        for (Replica* r : live) retry = r->flush() || retry;
    }
}

void Service::end_watch(const bus::Status& why) {
    std::unique_ptr<QuorumWatch> gone;
    {
        MutexLock lock(mu_);
        gone = std::move(watch_);
        quorate_ = false;
    }
    bus::log::limited(spdlog::level::err, {"cluster-quorum-watch"},
                      "cluster service: the quorum watch ended ({}): no quorum until a network "
                      "joins its group again",
                      why.reason);
    tell_quorum(false, false);
}

}  // namespace ipnfs::cluster
