// The engine on the local corosync: one libcpg connection per joined group,
// messages multicast with CPG_TYPE_AGREED (one total order for every member,
// membership changes delivered in it), dispatched from the connection's
// descriptor by whoever polls it.
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bus/thread_safety.hpp"
#include "cluster/engine.hpp"

namespace ipnfs::cluster {
namespace {

// What send() takes: 1 MiB less 4 KiB, under what libcpg sends whole
// (cpg_max_atomic_msgsize_get: 1047552 bytes on corosync 3.1.7, its IPC
// buffer less its headers).  A larger message libcpg would cut into
// fragments, each a round trip to corosync that sleeps 10 ms whenever
// corosync is busy: send() could then wait.  join() checks the bound.
constexpr std::size_t kMaxMessage = (std::size_t{1} << 20) - 4096;
// libcpg copies the parts behind its own header into 64 iovecs on its stack:
// a message of more parts is copied into one buffer first.
constexpr std::size_t kMaxParts = 63;

// How long join() retries while corosync says "try again" (it does while the
// cluster's membership is being agreed on).
constexpr auto kJoinRetry = std::chrono::seconds(2);
constexpr auto kJoinRetryStep = std::chrono::milliseconds(20);

// Serializes libcpg's connecting and disconnecting (cpg_model_initialize,
// cpg_finalize) across the process: with three threads joining and leaving
// groups on three corosyncs at once, one cpg_model_initialize failed with
// CS_ERR_BAD_HANDLE about one CpgEngineTest run in ten; serialized, none of
// 24 runs did.  It guards no data and is held only for that local IPC call.
Mutex connect_mutex;

const char* cs_name(cs_error_t err) {
    switch (err) {
        case CS_OK:
            return "CS_OK";
        case CS_ERR_LIBRARY:
            return "CS_ERR_LIBRARY";
        case CS_ERR_VERSION:
            return "CS_ERR_VERSION";
        case CS_ERR_INIT:
            return "CS_ERR_INIT";
        case CS_ERR_TIMEOUT:
            return "CS_ERR_TIMEOUT";
        case CS_ERR_TRY_AGAIN:
            return "CS_ERR_TRY_AGAIN";
        case CS_ERR_INVALID_PARAM:
            return "CS_ERR_INVALID_PARAM";
        case CS_ERR_NO_MEMORY:
            return "CS_ERR_NO_MEMORY";
        case CS_ERR_BAD_HANDLE:
            return "CS_ERR_BAD_HANDLE";
        case CS_ERR_BUSY:
            return "CS_ERR_BUSY";
        case CS_ERR_ACCESS:
            return "CS_ERR_ACCESS";
        case CS_ERR_NOT_EXIST:
            return "CS_ERR_NOT_EXIST";
        case CS_ERR_NAME_TOO_LONG:
            return "CS_ERR_NAME_TOO_LONG";
        case CS_ERR_EXIST:
            return "CS_ERR_EXIST";
        case CS_ERR_NO_SPACE:
            return "CS_ERR_NO_SPACE";
        case CS_ERR_INTERRUPT:
            return "CS_ERR_INTERRUPT";
        case CS_ERR_NAME_NOT_FOUND:
            return "CS_ERR_NAME_NOT_FOUND";
        case CS_ERR_NO_RESOURCES:
            return "CS_ERR_NO_RESOURCES";
        case CS_ERR_NOT_SUPPORTED:
            return "CS_ERR_NOT_SUPPORTED";
        case CS_ERR_BAD_OPERATION:
            return "CS_ERR_BAD_OPERATION";
        case CS_ERR_FAILED_OPERATION:
            return "CS_ERR_FAILED_OPERATION";
        case CS_ERR_MESSAGE_ERROR:
            return "CS_ERR_MESSAGE_ERROR";
        case CS_ERR_QUEUE_FULL:
            return "CS_ERR_QUEUE_FULL";
        case CS_ERR_QUEUE_NOT_AVAILABLE:
            return "CS_ERR_QUEUE_NOT_AVAILABLE";
        case CS_ERR_BAD_FLAGS:
            return "CS_ERR_BAD_FLAGS";
        case CS_ERR_TOO_BIG:
            return "CS_ERR_TOO_BIG";
        case CS_ERR_NO_SECTIONS:
            return "CS_ERR_NO_SECTIONS";
        case CS_ERR_CONTEXT_NOT_FOUND:
            return "CS_ERR_CONTEXT_NOT_FOUND";
        case CS_ERR_TOO_MANY_GROUPS:
            return "CS_ERR_TOO_MANY_GROUPS";
        case CS_ERR_SECURITY:
            return "CS_ERR_SECURITY";
    }
    return "an unknown corosync error";
}

// A corosync error as the errno a caller hands back and a sentence saying
// what to do about it; `call` and the error's name close the sentence, for
// whoever reads corosync's own log.
bus::Status cs_status(cs_error_t err, const std::string& call, const std::string& group) {
    std::string why = " (" + call + ": " + cs_name(err) + ")";
    switch (err) {
        case CS_ERR_LIBRARY:
        case CS_ERR_BAD_HANDLE:
            return bus::Status::error(std::errc::connection_refused,
                                      "corosync is not running on this host, or it stopped" + why);
        case CS_ERR_ACCESS:
        case CS_ERR_SECURITY:
            return bus::Status::error(
                std::errc::permission_denied,
                "corosync refuses this process: it lets in root and the users and groups "
                "its uidgid.d names" +
                    why);
        case CS_ERR_EXIST:
            return bus::Status::error(std::errc::file_exists,
                                      "this process is in the group '" + group + "' already" + why);
        case CS_ERR_NAME_TOO_LONG:
            return bus::Status::error(std::errc::filename_too_long,
                                      "the group name '" + group + "' is longer than " +
                                          std::to_string(Engine::kMaxGroupName) + " bytes" + why);
        case CS_ERR_TRY_AGAIN:
            return bus::Status::error(
                std::errc::resource_unavailable_try_again,
                "corosync is busy (agreeing on the membership, or its queue is full): try again" +
                    why);
        case CS_ERR_TIMEOUT:
            return bus::Status::error(std::errc::timed_out,
                                      "corosync did not answer in time" + why);
        case CS_ERR_NO_MEMORY:
        case CS_ERR_NO_RESOURCES:
            return bus::Status::error(std::errc::not_enough_memory,
                                      "corosync is out of memory or of connections" + why);
        case CS_ERR_TOO_MANY_GROUPS:
            return bus::Status::error(std::errc::too_many_files_open,
                                      "corosync has too many groups open" + why);
        default:
            return bus::Status::error(std::errc::io_error, "corosync failed" + why);
    }
}

Left left_why(std::uint32_t reason) {
    switch (reason) {
        case CPG_REASON_NODEDOWN:
            return Left::down;
        case CPG_REASON_PROCDOWN:
            return Left::process;
        default:
            return Left::left;
    }
}

class CpgGroup final : public Group {
  public:
    CpgGroup(std::string_view name, GroupListener& listener) : listener_(listener) {
        name_.length = static_cast<std::uint32_t>(name.size());
        std::memcpy(name_.value, name.data(), name.size());
    }
    ~CpgGroup() override {
        if (!connected_) return;
        if (joined_) cpg_leave(handle_, &name_);
        MutexLock lock(connect_mutex);
        cpg_finalize(handle_);
    }
    CpgGroup(const CpgGroup&) = delete;
    CpgGroup& operator=(const CpgGroup&) = delete;

    bus::Status open() {
        cpg_model_v1_data_t model{};
        model.model = CPG_MODEL_V1;
        model.cpg_deliver_fn = &CpgGroup::on_deliver;
        model.cpg_confchg_fn = &CpgGroup::on_confchg;
        cs_error_t err = CS_OK;
        {
            MutexLock lock(connect_mutex);
            err = cpg_model_initialize(&handle_, CPG_MODEL_V1,
                                       reinterpret_cast<cpg_model_data_t*>(&model), this);
        }
        if (err != CS_OK) return cs_status(err, "cpg_model_initialize", group());
        connected_ = true;
        if (err = cpg_fd_get(handle_, &fd_); err != CS_OK) {
            return cs_status(err, "cpg_fd_get", group());
        }
        unsigned int nodeid = 0;
        if (err = cpg_local_get(handle_, &nodeid); err != CS_OK) {
            return cs_status(err, "cpg_local_get", group());
        }
        self_ = Member{nodeid, static_cast<std::uint32_t>(getpid())};
        std::uint32_t atomic = 0;
        if (err = cpg_max_atomic_msgsize_get(handle_, &atomic); err != CS_OK) {
            return cs_status(err, "cpg_max_atomic_msgsize_get", group());
        }
        if (atomic < kMaxMessage) {
            return bus::Status::error(
                std::errc::message_size,
                "this corosync sends messages of up to " + std::to_string(atomic) +
                    " bytes whole, and cluster networks need " + std::to_string(kMaxMessage));
        }
        auto give_up = std::chrono::steady_clock::now() + kJoinRetry;
        while ((err = cpg_join(handle_, &name_)) == CS_ERR_TRY_AGAIN &&
               std::chrono::steady_clock::now() < give_up) {
            std::this_thread::sleep_for(kJoinRetryStep);
        }
        if (err != CS_OK) return cs_status(err, "cpg_join", group());
        joined_ = true;
        return bus::Status::success();
    }

    [[nodiscard]] int fd() const override { return fd_; }

    bus::Status dispatch() override {
        cs_error_t err = cpg_dispatch(handle_, CS_DISPATCH_ALL);
        // TRY_AGAIN: nothing was waiting after all.
        if (err == CS_OK || err == CS_ERR_TRY_AGAIN) return bus::Status::success();
        return cs_status(err, "cpg_dispatch", group());
    }

    SendResult send(std::span<const std::span<const std::byte>> parts) override {
        std::size_t total = 0;
        for (const auto& part : parts) total += part.size();
        // More than max_message() is the caller's bug; libcpg would fragment it.
        if (total > kMaxMessage) return SendResult::failed;
        iov_.clear();
        if (parts.size() > kMaxParts) {
            flat_.clear();
            for (const auto& part : parts) flat_.insert(flat_.end(), part.begin(), part.end());
            iov_.push_back(iovec{flat_.data(), flat_.size()});
        } else {
            for (const auto& part : parts) {
                // libcpg only reads through iov_base; the cast drops a const
                // it does not need.
                iov_.push_back(iovec{const_cast<std::byte*>(part.data()), part.size()});
            }
        }
        cs_error_t err = cpg_mcast_joined(handle_, CPG_TYPE_AGREED, iov_.data(), iov_.size());
        if (err == CS_OK) return SendResult::sent;
        if (err == CS_ERR_TRY_AGAIN) return SendResult::try_again;
        return SendResult::failed;
    }

    [[nodiscard]] Member self() const override { return self_; }

  private:
    [[nodiscard]] std::string group() const { return {name_.value, name_.length}; }

    static CpgGroup* of(cpg_handle_t handle) {
        void* context = nullptr;
        if (cpg_context_get(handle, &context) != CS_OK) return nullptr;
        return static_cast<CpgGroup*>(context);
    }

    static void on_deliver(cpg_handle_t handle, const cpg_name* /*group*/, uint32_t nodeid,
                           uint32_t pid, void* msg, size_t msg_len) {
        CpgGroup* self = of(handle);
        if (self == nullptr) return;
        self->listener_.delivered(Member{nodeid, pid},
                                  {static_cast<const std::byte*>(msg), msg_len});
    }

    static void on_confchg(cpg_handle_t handle, const cpg_name* /*group*/,
                           const cpg_address* members, size_t n_members, const cpg_address* left,
                           size_t n_left, const cpg_address* joined, size_t n_joined) {
        CpgGroup* self = of(handle);
        if (self == nullptr) return;
        self->members_.clear();
        for (size_t i = 0; i < n_members; ++i) {
            self->members_.push_back(Member{members[i].nodeid, members[i].pid});
        }
        self->left_.clear();
        for (size_t i = 0; i < n_left; ++i) {
            self->left_.push_back(
                Departure{Member{left[i].nodeid, left[i].pid}, left_why(left[i].reason)});
        }
        self->joined_list_.clear();
        for (size_t i = 0; i < n_joined; ++i) {
            self->joined_list_.push_back(Member{joined[i].nodeid, joined[i].pid});
        }
        self->listener_.membership(self->members_, self->left_, self->joined_list_);
    }

    GroupListener& listener_;
    cpg_name name_{};
    cpg_handle_t handle_ = 0;
    bool connected_ = false;
    bool joined_ = false;
    int fd_ = -1;
    Member self_;
    // send()'s, kept so that sends do not allocate once they have grown.
    std::vector<iovec> iov_;
    std::vector<std::byte> flat_;  // a message of more than kMaxParts parts
    // on_confchg's, kept for the same reason.
    std::vector<Member> members_;
    std::vector<Departure> left_;
    std::vector<Member> joined_list_;
};

// Quorum through votequorum: its own connection to corosync, tracking changes.
class VotequorumWatch final : public QuorumWatch {
  public:
    explicit VotequorumWatch(QuorumListener& listener) : listener_(listener) {}
    ~VotequorumWatch() override {
        if (!connected_) return;
        votequorum_trackstop(handle_);
        MutexLock lock(connect_mutex);
        votequorum_finalize(handle_);
    }
    VotequorumWatch(const VotequorumWatch&) = delete;
    VotequorumWatch& operator=(const VotequorumWatch&) = delete;

    // The quorum this host has now, or why it cannot be watched.
    bus::Status open(bool& quorate) {
        votequorum_callbacks_t callbacks{};
        callbacks.votequorum_quorum_notify_fn = &VotequorumWatch::on_quorum;
        cs_error_t err = CS_OK;
        {
            MutexLock lock(connect_mutex);
            err = votequorum_initialize(&handle_, &callbacks);
        }
        if (err != CS_OK) return no_service(err, "votequorum_initialize");
        connected_ = true;
        if (err = votequorum_context_set(handle_, this); err != CS_OK) {
            return cs_status(err, "votequorum_context_set", "");
        }
        if (err = votequorum_fd_get(handle_, &fd_); err != CS_OK) {
            return cs_status(err, "votequorum_fd_get", "");
        }
        // Node id 0 is this node.
        votequorum_info info{};
        if (err = votequorum_getinfo(handle_, 0, &info); err != CS_OK) {
            return no_service(err, "votequorum_getinfo");
        }
        quorate = (info.flags & VOTEQUORUM_INFO_QUORATE) != 0;
        // CS_TRACK_CURRENT too: a change between getinfo and trackstart is
        // told by the first dispatch.
        if (err = votequorum_trackstart(handle_, 0, CS_TRACK_CURRENT | CS_TRACK_CHANGES);
            err != CS_OK) {
            return cs_status(err, "votequorum_trackstart", "");
        }
        return bus::Status::success();
    }

    [[nodiscard]] int fd() const override { return fd_; }

    bus::Status dispatch() override {
        cs_error_t err = votequorum_dispatch(handle_, CS_DISPATCH_ALL);
        if (err == CS_OK || err == CS_ERR_TRY_AGAIN) return bus::Status::success();
        return cs_status(err, "votequorum_dispatch", "");
    }

  private:
    // corosync runs (a group was joined first) but answers no votequorum:
    // its quorum provider is another one, or none.
    static bus::Status no_service(cs_error_t err, const std::string& call) {
        return bus::Status::error(std::errc::not_supported,
                                  "corosync on this host has no votequorum service: its "
                                  "corosync.conf needs 'quorum { provider: corosync_votequorum }' "
                                  "(" +
                                      call + ": " + cs_name(err) + ")");
    }

    static void on_quorum(votequorum_handle_t handle, uint64_t /*context*/, uint32_t quorate,
                          uint32_t /*node_list_entries*/, votequorum_node_t /*node_list*/[]) {
        void* context = nullptr;
        if (votequorum_context_get(handle, &context) != CS_OK || context == nullptr) return;
        static_cast<VotequorumWatch*>(context)->listener_.quorum(quorate != 0);
    }

    QuorumListener& listener_;
    votequorum_handle_t handle_ = 0;
    bool connected_ = false;
    int fd_ = -1;
};

class CpgEngine final : public Engine {
  public:
    Joined join(std::string_view name, GroupListener& listener) override {
        if (name.empty() || name.size() > kMaxGroupName) {
            return {bus::Status::error(std::errc::invalid_argument,
                                       "a group name has 1 to " + std::to_string(kMaxGroupName) +
                                           " bytes, not " + std::to_string(name.size())),
                    nullptr};
        }
        auto group = std::make_unique<CpgGroup>(name, listener);
        if (bus::Status status = group->open(); !status.ok()) return {std::move(status), nullptr};
        return {bus::Status::success(), std::move(group)};
    }

    Watching watch_quorum(QuorumListener& listener) override {
        auto watch = std::make_unique<VotequorumWatch>(listener);
        bool quorate = false;
        if (bus::Status status = watch->open(quorate); !status.ok()) {
            return {std::move(status), nullptr, false};
        }
        return {bus::Status::success(), std::move(watch), quorate};
    }

    [[nodiscard]] std::size_t max_message() const override { return kMaxMessage; }
};

}  // namespace

std::unique_ptr<Engine> make_cpg_engine() {
    return std::make_unique<CpgEngine>();
}

}  // namespace ipnfs::cluster
