#include "cluster_hosts.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "netns.hpp"

#ifndef IPNFS_SOURCE_DIR
#error "IPNFS_SOURCE_DIR must name the source tree"
#endif

namespace ipnfs_it {
namespace {

const std::string kScript = IPNFS_SOURCE_DIR "/tools/cluster-hosts.sh";

// tools/cluster-hosts.sh ARGS: "" or what it said when it failed.
std::string script(const std::string& args, double timeout_s = 60.0) {
    Shell sh = root_sh(sq(kScript) + " " + args, timeout_s);
    if (sh.exit_code() == 0) return {};
    return describe(sh);
}

}  // namespace

std::string ClusterHosts::problem() {
    return netns_problem(
        {"ip", "timeout", "nsenter", "setsid", "sha256sum", "corosync", "corosync-quorumtool"});
}

ClusterHosts::~ClusterHosts() {
    if (dir_.empty()) return;
    if (std::string why = down(); !why.empty()) ADD_FAILURE() << "cluster-hosts down: " << why;
    run_argv({"rm", "-rf", dir_}, 10);
}

std::string ClusterHosts::start(int n) {
    if (!dir_.empty()) return "started already";
    char tmpl[] = "/tmp/ipnfs-cluster.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = tmpl;
    if (std::string why = script("up " + sq(dir_) + " " + std::to_string(n)); !why.empty()) {
        return "cluster-hosts.sh up " + dir_ + " " + std::to_string(n) + ": " + why;
    }
    n_ = n;
    ns_ = lines_of(slurp(dir_ + "/hosts"));
    if (static_cast<int>(ns_.size()) != n)
        return dir_ + "/hosts does not list " + std::to_string(n);
    return {};
}

std::string ClusterHosts::down() {
    if (dir_.empty()) return {};
    return script("down " + sq(dir_));
}

std::string ClusterHosts::ns(int i) const {
    return i >= 1 && i <= n_ ? ns_[i - 1] : std::string();
}

pid_t ClusterHosts::corosync_pid(int i) const {
    std::ifstream in(dir_ + "/host" + std::to_string(i) + "/corosync.pid");
    pid_t pid = -1;
    if (!(in >> pid) || pid <= 0) return -1;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    if (!(comm >> name) || name != "corosync" || process_state(pid) == 'Z') return -1;
    return pid;
}

std::vector<std::string> ClusterHosts::enter(int i) const {
    return {"nsenter", "--net=/run/netns/" + ns(i)};
}

Shell ClusterHosts::sh(int i, const std::string& script, double timeout_s) const {
    return root_sh("ip netns exec " + ns(i) + " sh -c " + sq(script), timeout_s);
}

std::string ClusterHosts::enter_thread(int i) const {
    return enter_netns_thread(ns(i));
}

std::string enter_netns_thread(const std::string& name) {
    std::string path = "/run/netns/" + name;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "open " + path + ": " + std::strerror(errno);
    int rc = setns(fd, CLONE_NEWNET);
    int err = errno;
    close(fd);
    if (rc != 0) return "setns " + path + ": " + std::strerror(err);
    return {};
}

std::string ClusterHosts::kill(int i) {
    return script("kill " + sq(dir_) + " " + std::to_string(i));
}
std::string ClusterHosts::revive(int i) {
    return script("start " + sq(dir_) + " " + std::to_string(i));
}
std::string ClusterHosts::cut(int i) {
    return script("cut " + sq(dir_) + " " + std::to_string(i));
}
std::string ClusterHosts::heal(int i) {
    return script("heal " + sq(dir_) + " " + std::to_string(i));
}

bool ClusterHosts::start_daemon(int i, Mount& mount, const std::vector<std::string>& options,
                                std::string& why) const {
    return mount.start(options, why, enter(i));
}

}  // namespace ipnfs_it
