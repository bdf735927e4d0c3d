// A bus waiter shared by a device on the engine thread and whichever thread
// the bus completes it on.  The bus completes a parked waiter after releasing
// its own lock, so a device may be torn down between the bus deciding and the
// completion arriving: the device then orphans the waiter, and the waiter
// frees itself when its completion comes.
#pragma once

#include <utility>

#include "bus/thread_safety.hpp"
#include "netdev/engine.hpp"

namespace ipnfs::netdev {

// Base: bus::Waiter or bus::SendWaiter; Result: what its complete() gets.
template <typename Base, typename Result>
class Handoff final : public Base {
  public:
    Handoff(Engine& engine, Pollable& owner) : engine_(engine), owner_(&owner) {}

    void complete(Result result) override EXCLUDES(mu_) {
        UniqueLock lock(mu_);
        if (owner_ == nullptr) {
            lock.unlock();
            delete this;
            return;
        }
        completed_ = true;
        result_ = std::move(result);
        engine_.wake(*owner_);  // under mu_: release() cannot take owner_ away meanwhile
    }

    // Engine thread: the bus parked it.
    void set_parked() EXCLUDES(mu_) {
        MutexLock lock(mu_);
        parked_ = true;
    }

    enum class Turn {
        idle,       // not with the bus: the engine thread may hand it over again
        waiting,    // parked and not completed yet: the bus holds it
        completed,  // the bus let go of it; the result is taken (and it is idle again)
    };

    // Engine thread: where the waiter is, and the result if a completion has
    // arrived, in one look under mu_.  Two looks (completed? then parked?)
    // would let a completion land between them: the waiter would seem idle
    // while its result was still to be taken, be handed to the bus again,
    // and taking that stale result later would clear parked_ while the bus
    // held it, so that it was parked a second time, still linked.
    Turn take(Result& out) EXCLUDES(mu_) {
        MutexLock lock(mu_);
        if (completed_) {
            parked_ = completed_ = false;
            out = std::move(result_);
            return Turn::completed;
        }
        return parked_ ? Turn::waiting : Turn::idle;
    }

    // Engine thread, after bus cancel() (which said whether it removed the
    // waiter while parked): frees it, or leaves that to a completion still
    // under way.  The device must not use it afterwards.
    void release(bool removed_while_parked) EXCLUDES(mu_) {
        UniqueLock lock(mu_);
        bool coming = parked_ && !completed_ && !removed_while_parked;
        owner_ = nullptr;
        lock.unlock();
        if (!coming) delete this;
    }

  private:
    ~Handoff() override = default;

    Engine& engine_;
    // Taken by the completing thread and by the engine thread; held while
    // the completion wakes the engine (Handoff::mu_ before Engine::mu_).
    Mutex mu_;
    Pollable* owner_ GUARDED_BY(mu_);
    bool parked_ GUARDED_BY(mu_) = false;
    bool completed_ GUARDED_BY(mu_) = false;
    Result result_ GUARDED_BY(mu_){};
};

}  // namespace ipnfs::netdev
