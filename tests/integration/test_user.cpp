#include "test_user.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "netns.hpp"

namespace ipnfs_it {

TestUser::TestUser() {
    static std::atomic<int> next{0};
    name_ = "ipnfs-t" + std::to_string(getpid()) + "-" + std::to_string(next++);
    Shell sh = run_shell(
        "useradd --system --no-create-home --user-group --shell /usr/sbin/nologin " + name_, 20);
    if (sh.exit_code() != 0) {
        error_ = "useradd " + name_ + ": " + describe(sh);
        name_.clear();
        return;
    }
    const passwd* pw = getpwnam(name_.c_str());
    if (pw == nullptr) {
        error_ = "useradd made no passwd entry for " + name_;
        return;
    }
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
}

TestUser::~TestUser() {
    if (name_.empty()) return;
    // userdel refuses while a process runs as the user (exit 8): a child the
    // test made as this user may still be ending (a read parked until its
    // mount went).  Every such process is the test's own: end them and retry.
    for (int attempt = 0; attempt < 20; ++attempt) {
        Shell sh = run_shell("userdel " + name_, 20);
        if (sh.exit_code() != 8) return;
        if (uid_ != 0) run_shell("pkill -KILL -U " + std::to_string(uid_), 5);
        std::this_thread::sleep_for(100ms);
    }
}

int as_user(uid_t uid, gid_t gid, const std::function<int()>& body) {
    pid_t pid = fork_child([&] {
        if (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0) {
            return 200;
        }
        return body();
    });
    return exit_code_of(wait_child(pid, 10s));
}

}  // namespace ipnfs_it
