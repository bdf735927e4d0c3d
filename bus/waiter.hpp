// Requests that wait in the bus, holding no thread: a receive on an empty
// port (Waiter) and a send on a full lossless network (SendWaiter).  The layer
// above (fs) derives from them to keep its request; the bus completes them
// from whichever thread makes progress possible.
#pragma once

#include <optional>

#include <boost/intrusive/list_hook.hpp>

#include "bus/member.hpp"
#include "bus/message.hpp"
#include "bus/status.hpp"

namespace ipnfs::bus {

struct Port;

enum class Outcome {
    message,      // `message` holds the next message of the port
    would_block,  // nothing queued (or nothing that fits) and the caller may not wait
    parked,       // nothing queued; the waiter will be completed later
    hung_up,      // the network is gone: end of file
    cancelled,    // the waiter was cancelled before it could park
};

struct Received {
    Outcome outcome;
    MessageRef message;
};

// Every transition happens under the owning network's lock (state_ and the
// rest are not marked GUARDED_BY: the lock is the network's, which cannot be
// named from here; only Network's functions that REQUIRES(mu_) touch them):
//   idle -> parked -> done   (completed by the bus)
//   idle -> cancelled        (cancelled before it parked)
//   parked -> done           (cancelled while parked; the canceller completes it)
enum class WaitState { idle, parked, done, cancelled };

class Waiter : public boost::intrusive::list_base_hook<> {
  public:
    Waiter() = default;
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;
    virtual ~Waiter() = default;

    // Called exactly once for a parked waiter, with Outcome::message or
    // Outcome::hung_up, by a thread that holds no bus lock.
    virtual void complete(Received received) = 0;

  private:
    friend class Network;
    WaitState state_ = WaitState::idle;
};

class SendWaiter : public boost::intrusive::list_base_hook<> {
  public:
    SendWaiter() = default;
    SendWaiter(const SendWaiter&) = delete;
    SendWaiter& operator=(const SendWaiter&) = delete;
    virtual ~SendWaiter() = default;

    // Called exactly once for a parked send, by a thread that holds no bus
    // lock: success once the message is queued to every recipient, EPIPE if
    // the network went away first.
    virtual void complete(Status status) = 0;

  private:
    friend class Network;
    WaitState state_ = WaitState::idle;
    MessageRef message_;
    Port* from_ = nullptr;
    // A cluster network's send waiting for credit: the one port its
    // daemon placed it at, if it did (Policy::place).
    std::optional<Origin> target_;
};

}  // namespace ipnfs::bus
