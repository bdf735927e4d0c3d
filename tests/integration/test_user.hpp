// A second ordinary user for the security tests: made with useradd(8) for the
// test's lifetime and removed with userdel(8) after, so an attack runs as a
// real account (a name, a passwd entry, a group) the way an attacker's would.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace ipnfs_it {

// The unprivileged user every Debian system has.
constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

class TestUser {
  public:
    TestUser();  // "ipnfs-t<pid>-<n>", no home, no login shell
    ~TestUser();
    TestUser(const TestUser&) = delete;
    TestUser& operator=(const TestUser&) = delete;

    [[nodiscard]] bool ok() const { return error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] const std::string& name() const { return name_; }
    [[nodiscard]] uid_t uid() const { return uid_; }
    [[nodiscard]] gid_t gid() const { return gid_; }

  private:
    std::string name_;
    std::string error_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
};

// Runs `body` in a forked child as uid:gid with no supplementary groups and
// no capabilities; its return value is the exit code (200 if the child could
// not become that user).  Keep the body to syscalls: the parent has threads.
int as_user(uid_t uid, gid_t gid, const std::function<int()>& body);

}  // namespace ipnfs_it
