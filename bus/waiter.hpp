// A receive that found its port empty and waits there, holding no thread.
// The layer above (fs) derives from Waiter to keep its request; the bus
// completes it from whichever thread delivers the next message.
#pragma once

#include <boost/intrusive/list_hook.hpp>

#include "bus/message.hpp"

namespace ipnfs::bus {

enum class Outcome {
    message,      // `message` holds the next message of the port
    would_block,  // nothing queued and the caller may not wait
    parked,       // nothing queued; the waiter will be completed later
    hung_up,      // the network is gone: end of file
    cancelled,    // the waiter was cancelled before it could park
};

struct Received {
    Outcome outcome;
    MessageRef message;
};

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
    // Every transition happens under the owning network's lock:
    //   idle -> parked -> done   (a message or hang-up was handed over)
    //   idle -> cancelled        (cancelled before it parked)
    //   parked -> done           (cancelled while parked; the canceller completes it)
    enum class State { idle, parked, done, cancelled };
    State state_ = State::idle;
};

}  // namespace ipnfs::bus
