// The daemon's log through the journal (-o log=journal, or detected through
// JOURNAL_STREAM): a real systemd-journald, started by the test in a mount
// namespace of its own (tmpfs over /run and /var/log/journal, so the host's
// journal is never touched), takes the daemon's lines, and journalctl reads
// them back by field, as a user would: `journalctl IPNFS_NETWORK=lan`.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"

namespace ipnfs_it {
namespace {

constexpr const char* kJournald = "/lib/systemd/systemd-journald";

// One journal entry: its fields, as `journalctl -o export` writes them.
using Entry = std::map<std::string, std::string>;

// journalctl's export format: "NAME=value" lines, or, for a value that is
// not printable text, "NAME\n" + 64-bit little-endian length + bytes + "\n";
// a blank line ends an entry.
std::vector<Entry> parse_export(const std::string& text) {
    std::vector<Entry> entries;
    Entry entry;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t nl = text.find('\n', i);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(i, nl - i);
        i = nl + 1;
        if (line.empty()) {
            if (!entry.empty()) entries.push_back(std::move(entry));
            entry.clear();
            continue;
        }
        std::size_t eq = line.find('=');
        if (eq != std::string::npos) {
            entry[line.substr(0, eq)] = line.substr(eq + 1);
            continue;
        }
        if (i + 8 > text.size()) break;
        std::uint64_t len = 0;
        for (int b = 7; b >= 0; --b) len = (len << 8) | static_cast<unsigned char>(text[i + b]);
        i += 8;
        entry[line] = text.substr(i, len);
        i += len + 1;
    }
    if (!entry.empty()) entries.push_back(std::move(entry));
    return entries;
}

std::string field(const Entry& e, const std::string& name) {
    auto it = e.find(name);
    return it == e.end() ? std::string("<none>") : it->second;
}

std::string describe(const std::vector<Entry>& entries) {
    std::string out;
    for (const Entry& e : entries) {
        out += field(e, "PRIORITY") + " " + field(e, "MESSAGE") + "\n";
    }
    return out;
}

std::string mountinfo_has(pid_t pid, const std::string& dir) {
    std::string info = read_whole("/proc/" + std::to_string(pid) + "/mountinfo");
    for (const std::string& line : lines_of(info)) {
        if (contains(line, " " + dir + " ") && contains(line, " - fuse.ipnfs ")) return line;
    }
    return {};
}

// A process the test started; killed and reaped on destruction.
struct Child {
    pid_t pid = -1;
    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() { stop(); }
    std::optional<int> stop(int sig = SIGTERM) {
        if (pid <= 0) return std::nullopt;
        ::kill(pid, sig);
        std::optional<int> st = wait_child(pid, std::chrono::seconds(5));
        pid = -1;
        return st;
    }
};

// fork + exec with stdin from /dev/null and stdout, stderr to `out`;
// `env` is added to the environment.  Only syscalls after the fork.
pid_t spawn(const std::vector<std::string>& args, int out,
            const std::vector<std::string>& env = {}) {
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_copy;
    for (char** e = environ; *e != nullptr; ++e) env_copy.emplace_back(*e);
    env_copy.insert(env_copy.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : env_copy) envp.push_back(e.data());
    envp.push_back(nullptr);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(null, 0);
        dup2(out, 1);
        dup2(out, 2);
        ::signal(SIGPIPE, SIG_DFL);
        execvpe(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    close(null);
    return pid;
}

// "sh -c SCRIPT" in a new mount namespace whose /run (and /var/log/journal)
// is an empty tmpfs: nothing it makes there reaches the host.
std::vector<std::string> in_private_run(const std::string& script) {
    return {"unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs -o mode=0755 ipnfs-test /run && "
            "if [ -d /var/log/journal ]; then mount -t tmpfs ipnfs-test /var/log/journal; fi && " +
                script};
}

class JournalTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ::signal(SIGPIPE, SIG_IGN);
        if (std::string why = fuse_problem(); !why.empty()) IPNFS_SKIP_OR_FAIL(why);
        if (access(kJournald, X_OK) != 0) IPNFS_SKIP_OR_FAIL("no systemd-journald (systemd)");
        char tmpl[] = "/tmp/ipnfs-journal.XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
        dir_ = tmpl;
        journald_out_ = dir_ + ".journald";
        daemon_out_ = dir_ + ".daemon";
    }

    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- journald ----\n"
                      << read_whole(journald_out_) << "---- daemon ----\n"
                      << read_whole(daemon_out_);
        }
        daemon_.stop();
        journald_.stop();
        rmdir(dir_.c_str());
        unlink(journald_out_.c_str());
        unlink(daemon_out_.c_str());
    }

    // systemd-journald, volatile (files under /run/log/journal), forwarding
    // nothing and reading neither the kernel's log nor audit, its own
    // messages on stderr: in its namespace it is the journal of whatever
    // runs there.
    void start_journald() {
        int out = open(journald_out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_GE(out, 0);
        journald_.pid =
            spawn(in_private_run("mkdir -p /run/systemd/journald.conf.d /run/log/journal && "
                                 "printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\nAudit=no\\n"
                                 "ForwardToSyslog=no\\nForwardToKMsg=no\\nForwardToConsole=no\\n"
                                 "ForwardToWall=no\\n' > "
                                 "/run/systemd/journald.conf.d/zz-ipnfs-test.conf && exec " +
                                 std::string(kJournald)),
                  out, {"SYSTEMD_LOG_TARGET=console"});
        close(out);
        ASSERT_GT(journald_.pid, 0);
        ns_root_ = "/proc/" + std::to_string(journald_.pid) + "/root";
        bool up = eventually(
            [&] {
                return access((ns_root_ + "/run/systemd/journal/socket").c_str(), F_OK) == 0 &&
                       access((ns_root_ + "/run/systemd/journal/stdout").c_str(), F_OK) == 0;
            },
            std::chrono::seconds(10));
        ASSERT_TRUE(up) << "systemd-journald did not open its sockets:\n"
                        << read_whole(journald_out_);
    }

    // ipnfs -f in journald's namespace, stderr to `err` (or the daemon's
    // out file); waits for the mount.
    void start_daemon(const std::vector<std::string>& options, int err = -1,
                      const std::vector<std::string>& env = {}) {
        std::vector<std::string> args = {"nsenter", "-t", std::to_string(journald_.pid),
                                         "-m",      "--", IPNFS_BINARY,
                                         "none",    dir_, "-f"};
        for (const std::string& o : options) args.insert(args.end(), {"-o", o});
        int out = err;
        if (out < 0)
            out = open(daemon_out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        daemon_.pid = spawn(args, out, env);
        if (err < 0) close(out);
        ASSERT_GT(daemon_.pid, 0);
        bool mounted = eventually([&] { return !mountinfo_has(daemon_.pid, dir_).empty(); },
                                  std::chrono::seconds(10));
        ASSERT_TRUE(mounted) << "no fuse.ipnfs mount on " << dir_ << " in the namespace";
    }

    // A path in the mount, which only the namespace sees.
    std::string at(const std::string& rel) const {
        return "/proc/" + std::to_string(daemon_.pid) + "/root" + dir_ + "/" + rel;
    }

    // journalctl over the namespace's volatile journal.
    std::vector<Entry> journal(const std::vector<std::string>& matches) {
        std::vector<std::string> args = {"journalctl", "--directory", ns_root_ + "/run/log/journal",
                                         "--output",   "export",      "--no-pager"};
        args.insert(args.end(), matches.begin(), matches.end());
        Shell sh = run_argv(args);
        EXPECT_EQ(sh.exit_code(), 0) << sh.err;
        return parse_export(sh.out);
    }

    // The entries once `done` holds for them (journald writes as it reads).
    std::vector<Entry> journal_until(const std::vector<std::string>& matches,
                                     const std::function<bool(const std::vector<Entry>&)>& done) {
        std::vector<Entry> entries;
        eventually(
            [&] {
                entries = journal(matches);
                return done(entries);
            },
            std::chrono::seconds(5));
        return entries;
    }

    static bool has_event(const std::vector<Entry>& entries, const std::string& event) {
        return std::ranges::any_of(
            entries, [&](const Entry& e) { return field(e, "IPNFS_EVENT") == event; });
    }
    static const Entry* find_event(const std::vector<Entry>& entries, const std::string& event) {
        for (const Entry& e : entries)
            if (field(e, "IPNFS_EVENT") == event) return &e;
        return nullptr;
    }

    std::string dir_, journald_out_, daemon_out_, ns_root_;
    Child journald_, daemon_;
};

TEST_F(JournalTest, FieldsOfTheirOwnPickOutOneNetwork) {
    start_journald();
    ASSERT_FALSE(HasFatalFailure());
    start_daemon({"log=journal", "log_level=debug"});
    ASSERT_FALSE(HasFatalFailure());
    const std::string odd = "qu\"ote-\xc3\xbc";  // a quote and a UTF-8 ü
    ASSERT_EQ(mkdir(at("lan").c_str(), 0755), 0) << std::strerror(errno);
    ASSERT_EQ(mkdir(at("lan2").c_str(), 0755), 0) << std::strerror(errno);
    ASSERT_EQ(mkdir(at(odd).c_str(), 0755), 0) << std::strerror(errno);
    {
        Fd port = open_fd(at("lan/port3"), O_RDWR);
        ASSERT_GE(port.get(), 0);
    }
    EXPECT_EQ(write_file(at("lan/ctl"), "nosuchverb"), EINVAL);
    EXPECT_EQ(write_file(at("lan2/ctl"), "nosuchverb2"), EINVAL);
    const std::string pid = std::to_string(daemon_.pid);

    std::vector<Entry> lan = journal_until({"IPNFS_NETWORK=lan"}, [](const auto& es) {
        return has_event(es, "ctl-error") && has_event(es, "port-close");
    });
    for (const Entry& e : lan) {
        EXPECT_EQ(field(e, "IPNFS_NETWORK"), "lan") << describe(lan);
        EXPECT_EQ(field(e, "SYSLOG_IDENTIFIER"), "ipnfs");
        EXPECT_EQ(field(e, "_PID"), pid);  // journald's own word: the sender's pid
        EXPECT_FALSE(contains(field(e, "MESSAGE"), "lan2")) << describe(lan);
    }
    const Entry* created = find_event(lan, "network-create");
    ASSERT_NE(created, nullptr) << describe(lan);
    EXPECT_EQ(field(*created, "PRIORITY"), "6");
    EXPECT_EQ(field(*created, "MESSAGE"), "network=lan uid=0 event=network-create: created");
    EXPECT_EQ(field(*created, "IPNFS_PORT"), "<none>");
    EXPECT_EQ(field(*created, "IPNFS_UID"), "0");
    EXPECT_EQ(field(*created, "CODE_FILE"), "<none>");  // not the sink's own place
    const Entry* refused = find_event(lan, "ctl-error");
    ASSERT_NE(refused, nullptr) << describe(lan);
    EXPECT_EQ(field(*refused, "PRIORITY"), "6");
    EXPECT_TRUE(field(*refused, "MESSAGE")
                    .starts_with("network=lan uid=0 event=ctl-error: nosuchverb: unknown command"))
        << field(*refused, "MESSAGE");
    const Entry* opened = find_event(lan, "port-open");
    ASSERT_NE(opened, nullptr) << describe(lan);
    EXPECT_EQ(field(*opened, "PRIORITY"), "7");  // debug
    EXPECT_EQ(field(*opened, "IPNFS_PORT"), "3");
    EXPECT_TRUE(
        field(*opened, "MESSAGE").starts_with("network=lan port=3 uid=0 event=port-open: "));

    std::vector<Entry> lan2 = journal_until(
        {"IPNFS_NETWORK=lan2"}, [](const auto& es) { return has_event(es, "ctl-error"); });
    EXPECT_TRUE(has_event(lan2, "network-create")) << describe(lan2);
    for (const Entry& e : lan2) EXPECT_EQ(field(e, "IPNFS_NETWORK"), "lan2");

    // The name's bytes as they are in the field, quoted in the message.
    std::vector<Entry> quoted = journal_until(
        {"IPNFS_NETWORK=" + odd}, [](const auto& es) { return has_event(es, "network-create"); });
    ASSERT_EQ(quoted.size(), 1U) << describe(quoted);
    EXPECT_EQ(field(quoted[0], "IPNFS_NETWORK"), odd);
    EXPECT_EQ(field(quoted[0], "MESSAGE"),
              "network=\"qu\\\"ote-\xc3\xbc\" uid=0 event=network-create: created");

    // A line about no network has no IPNFS_NETWORK.
    std::vector<Entry> mount = journal({"IPNFS_EVENT=mount", "_PID=" + pid});
    ASSERT_EQ(mount.size(), 1U) << describe(mount);
    EXPECT_EQ(field(mount[0], "IPNFS_NETWORK"), "<none>");
    EXPECT_EQ(field(mount[0], "IPNFS_UID"), "<none>");
    EXPECT_TRUE(field(mount[0], "MESSAGE").starts_with("event=mount: mounted none on " + dir_));
}

// What a client can repeat at will is held back in the journal as in a file.
TEST_F(JournalTest, RateLimitHoldsForTheJournal) {
    start_journald();
    ASSERT_FALSE(HasFatalFailure());
    start_daemon({"log=journal"});
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(mkdir(at("lan").c_str(), 0755), 0) << std::strerror(errno);
    constexpr int kLines = 500;
    for (int i = 0; i < kLines; ++i) ASSERT_EQ(write_file(at("lan/ctl"), "nosuchverb"), EINVAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    ASSERT_EQ(write_file(at("lan/ctl"), "nosuchverb"), EINVAL);  // says what was held back
    std::vector<Entry> errors = journal_until(
        {"IPNFS_NETWORK=lan", "IPNFS_EVENT=ctl-error"}, [](const std::vector<Entry>& es) {
            return std::ranges::any_of(es, [](const Entry& e) {
                return contains(field(e, "MESSAGE"), "more lines like this were suppressed");
            });
        });
    std::size_t refused = 0;
    std::size_t suppressed = 0;
    std::size_t counted = 0;  // the lines the suppression entries say were held back
    for (const Entry& e : errors) {
        const std::string msg = field(e, "MESSAGE");
        if (contains(msg, "unknown command")) ++refused;
        const std::string prefix = "network=lan event=ctl-error: ";
        if (contains(msg, "more lines like this were suppressed") && msg.starts_with(prefix)) {
            ++suppressed;
            counted += std::stoul(msg.substr(prefix.size()));
            EXPECT_EQ(field(e, "IPNFS_EVENT"), "ctl-error");
        }
    }
    EXPECT_EQ(refused + counted, std::size_t{kLines} + 1) << describe(errors);
    std::cout << refused << " of " << kLines + 1 << " refused ctl lines in the journal, "
              << suppressed << " suppression entries:\n"
              << describe(errors);
    // 10 a second per event and network; the burst may straddle a window.
    EXPECT_LE(refused, 31U) << describe(errors);
    EXPECT_GE(suppressed, 1U) << describe(errors);
}

// Not told where: stderr that is the journal stream systemd would connect
// (JOURNAL_STREAM names its device and inode) means the journal.
TEST_F(JournalTest, JournalStreamOnStderrIsDetected) {
    start_journald();
    ASSERT_FALSE(HasFatalFailure());
    // What systemd does for a unit's stderr (sd_journal_stream_fd(3)):
    // connect to journald's stdout socket and say who writes.
    int stream = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(stream, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = ns_root_ + "/run/systemd/journal/stdout";
    ASSERT_LT(path.size(), sizeof(addr.sun_path));
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    ASSERT_EQ(connect(stream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    // identifier, unit, priority, level prefix, forward to syslog, kmsg, console
    ASSERT_TRUE(write_all(stream, "ipnfs-stderr\n\n6\n0\n0\n0\n0\n"));
    struct stat st {};
    ASSERT_EQ(fstat(stream, &st), 0);
    std::string journal_stream =
        "JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    start_daemon({}, stream, {journal_stream});
    close(stream);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(mkdir(at("lan").c_str(), 0755), 0) << std::strerror(errno);
    const std::string pid = std::to_string(daemon_.pid);
    std::vector<Entry> lan =
        journal_until({"IPNFS_NETWORK=lan", "_PID=" + pid},
                      [](const auto& es) { return has_event(es, "network-create"); });
    ASSERT_TRUE(has_event(lan, "network-create")) << describe(lan);
    // Native lines, not text on the stream.
    EXPECT_EQ(field(lan[0], "SYSLOG_IDENTIFIER"), "ipnfs");
    EXPECT_EQ(field(lan[0], "_TRANSPORT"), "journal");
}

// JOURNAL_STREAM inherited past a redirection names another file: not the
// journal, stderr as before.
TEST_F(JournalTest, StaleJournalStreamIsNotTheJournal) {
    start_journald();
    ASSERT_FALSE(HasFatalFailure());
    int out = open(daemon_out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(out, 0);
    struct stat st {};
    ASSERT_EQ(fstat(out, &st), 0);
    start_daemon(
        {}, out,
        {"JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)});
    close(out);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_EQ(mkdir(at("lan").c_str(), 0755), 0) << std::strerror(errno);
    ASSERT_TRUE(eventually(
        [&] { return contains(read_whole(daemon_out_), "network=lan uid=0 event=network-create"); },
        std::chrono::seconds(5)));
    EXPECT_TRUE(journal({"_PID=" + std::to_string(daemon_.pid), "IPNFS_EVENT=mount"}).empty());
}

// Asked for with no journald: the mount fails and says why.
TEST_F(JournalTest, NoJournaldFailsAnExplicitLogJournal) {
    Shell sh = run_argv(in_private_run("exec " + std::string(IPNFS_BINARY) + " none " + dir_ +
                                       " -f -o log=journal"));
    EXPECT_EQ(sh.exit_code(), 2) << sh.out << sh.err;
    EXPECT_TRUE(contains(sh.err,
                         "ipnfs: log=journal: journald's socket "
                         "/run/systemd/journal/socket: No such file or directory"))
        << sh.err;
}

// Detected with no journald: the log stays on stderr and says why.
TEST_F(JournalTest, NoJournaldUnderDetectionFallsBack) {
    int out = open(daemon_out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(out, 0);
    struct stat st {};
    ASSERT_EQ(fstat(out, &st), 0);
    daemon_.pid =
        spawn(in_private_run("exec " + std::string(IPNFS_BINARY) + " none " + dir_ + " -f"), out,
              {"JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)});
    close(out);
    ASSERT_GT(daemon_.pid, 0);
    ASSERT_TRUE(eventually(
        [&] { return contains(read_whole(daemon_out_), "event=mount: mounted none on"); },
        std::chrono::seconds(10)))
        << read_whole(daemon_out_);
    EXPECT_TRUE(contains(read_whole(daemon_out_),
                         "event=log-fallback: stderr is the journal stream, but journald's socket "
                         "/run/systemd/journal/socket: No such file or directory: logging to "
                         "stderr"));
}

}  // namespace
}  // namespace ipnfs_it
