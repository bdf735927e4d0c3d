// The group-communication engine a cluster network runs on: one closed
// process group per network, messages multicast in one agreed total order,
// membership changes delivered in that same order (virtual synchrony).
// Corosync's CPG is the real one (cluster/cpg_engine.cpp); unit tests use an
// in-process fake.  Nothing here knows the bus's networks or FUSE.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "bus/status.hpp"

namespace ipnfs::cluster {

// One daemon in a group: the engine's node id (corosync's `nodeid`) and the
// process that joined.  Users see the node; the pid tells two joins of one
// node apart (a daemon that restarted, or a second daemon on that host).
struct Member {
    std::uint32_t node = 0;
    std::uint32_t pid = 0;
    auto operator<=>(const Member&) const = default;
};

// Why a member left the group.
enum class Left : std::uint8_t {
    left,     // it left (its daemon let go of the network)
    down,     // its node failed or was cut off (CPG_REASON_NODEDOWN)
    process,  // its process died, the node still runs (CPG_REASON_PROCDOWN)
};

struct Departure {
    Member member;
    Left why = Left::left;
};

// What a joined group tells its owner.  Called only from Group::dispatch(),
// on the thread that calls it, in the group's agreed order: every member's
// listener sees the same messages and membership changes in the same order.
class GroupListener {
  public:
    virtual ~GroupListener() = default;
    // A message `from` multicast (this member's own included).  The bytes
    // are valid only during the call.
    virtual void delivered(Member from, std::span<const std::byte> bytes) = 0;
    // The membership changed: who is in the group now (in the engine's
    // order, the same at every member), who left, who joined.  The first
    // call after join() has this member among `joined`.
    virtual void membership(std::span<const Member> members, std::span<const Departure> left,
                            std::span<const Member> joined) = 0;
};

enum class SendResult : std::uint8_t {
    sent,       // multicast; it will be delivered in order to every member
    try_again,  // the engine is busy (its queue is full): nothing was sent
    failed,     // the connection to the engine is gone (dispatch() says why)
};

// One joined group.  Destroying it leaves the group.
class Group {
  public:
    virtual ~Group() = default;
    // Readable when dispatch() has something to deliver.
    [[nodiscard]] virtual int fd() const = 0;
    // Runs the listener for everything that arrived, without waiting.  An
    // error means the engine is gone (corosync stopped): the group is dead.
    virtual bus::Status dispatch() = 0;
    // Multicasts the concatenation of `parts` as one message, in agreed order.
    // Never waits.
    virtual SendResult send(std::span<const std::span<const std::byte>> parts) = 0;
    // This member, as the others see it.
    [[nodiscard]] virtual Member self() const = 0;
};

struct Joined {
    bus::Status status;
    std::unique_ptr<Group> group;  // set exactly when status is ok
};

// Whether this host's part of the cluster has quorum, as the engine's
// quorum service (Corosync's votequorum) says.  Called only from
// QuorumWatch::dispatch(), on the thread that calls it.
class QuorumListener {
  public:
    virtual ~QuorumListener() = default;
    virtual void quorum(bool quorate) = 0;
};

// A connection that tracks quorum.  Destroying it stops the tracking.
class QuorumWatch {
  public:
    virtual ~QuorumWatch() = default;
    // Readable when dispatch() has news.
    [[nodiscard]] virtual int fd() const = 0;
    // Runs the listener for every change that arrived, without waiting.  An
    // error means the engine is gone: the watch is dead.
    virtual bus::Status dispatch() = 0;
};

struct Watching {
    bus::Status status;
    std::unique_ptr<QuorumWatch> watch;  // set exactly when status is ok
    bool quorate = false;                // quorum when the watch began
};

class Engine {
  public:
    virtual ~Engine() = default;
    // Joins the group called `name` (at most kMaxGroupName bytes); `listener`
    // must outlive the group.  Fails with ECONNREFUSED and a reason a user
    // can act on when the engine does not run, EEXIST when this process is
    // already in that group.  A local call that may block briefly: never
    // call it holding a lock others wait on.
    virtual Joined join(std::string_view name, GroupListener& listener) = 0;
    // Starts tracking quorum; `listener` must outlive the watch.  Fails with
    // a reason a user can act on when the engine does not run or has no
    // quorum service (ENOTSUP).  A local call that may block briefly.
    virtual Watching watch_quorum(QuorumListener& listener) = 0;
    // The largest message send() takes.
    [[nodiscard]] virtual std::size_t max_message() const = 0;

    static constexpr std::size_t kMaxGroupName = 127;
};

// The engine on the local corosync (libcpg).
std::unique_ptr<Engine> make_cpg_engine();

}  // namespace ipnfs::cluster
