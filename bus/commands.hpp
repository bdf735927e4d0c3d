// ctl commands: each owner (the network, each policy) registers its verbs in a
// table with their argument form and help line, so parsing, dispatch and the
// help text shown in ctl come from one place.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bus/status.hpp"

namespace ipnfs::bus {

// The words of one ctl line after the verb.
using Words = std::span<const std::string_view>;

// Who writes a ctl line, as far as commands care.  The fs layer fills it in
// from the credentials captured when the file was opened (the kernel's
// f_cred), so handing a descriptor to a more privileged program grants
// nothing.  The default is no one: no identity that owns anything, no
// privilege.
struct Caller {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    std::vector<gid_t> groups = {};  // supplementary groups
    bool net_admin = false;          // CAP_NET_ADMIN (in the daemon's user namespace)
    bool dac_override = false;       // CAP_DAC_OVERRIDE: mode bits do not bind it

    // Whether mode bits `mode` of a file owned by uid:gid grant all of `want`
    // (R_OK, W_OK, X_OK bits), as the kernel's generic_permission decides.
    [[nodiscard]] bool may(mode_t mode, uid_t owner, gid_t group, int want) const;
};

// What the holder of a port needs to run a setting of that port through
// IPNFS_IOC_PORT_CTL (docs/security.md): a setting of what the port
// receives needs a descriptor open for reading, of what it sends one open
// for writing, and one that can make the port lose data manage rights.
enum class Holder : std::uint8_t { none, reader, writer, manager };

// What one open descriptor of a port grants its holder.
struct PortGrant {
    bool reads = false;
    bool writes = false;
    bool manage = false;  // its opener may write the network's ctl
};

struct Command {
    std::string_view verb;
    std::string_view args;  // argument form for help, e.g. "PORT on|off"
    std::size_t nargs;      // how many words must follow the verb
    std::string_view help;
    std::function<Status(Words)> run;
    std::size_t optional = 0;  // how many more words may follow
    bool net_admin = false;    // only a caller with CAP_NET_ADMIN may run it (EPERM)
    // Not none: the first word is a port, and that port's holder may run it
    // on its own port without access to ctl (include/ipnfs.h
    // IPNFS_IOC_PORT_CTL) if its descriptor grants this.
    Holder holder = Holder::none;
    // Runs instead of `run` when the command must know who asks (cable
    // checks the caller's own access to the far network).
    std::function<Status(Words, const Caller&)> run_as = nullptr;
};

using CommandTable = std::vector<Command>;

// The comments ctl adds to a port's setting that its holder made, and to a
// manager's setting that a holder's hides until the port's last close.
inline constexpr std::string_view kHolderSetNote = "# set by its holder: reset at its last close";
inline constexpr std::string_view kComesBackNote = "(configuration: back at the port's last close)";

// Splits one line into whitespace-separated words, up to a word that starts
// with '#': the rest of the line is a comment (ctl marks a holder's settings
// with one, and the line must still read back).  With `comments` false every
// word counts: a network's name may start with '#' (a config's `network`
// line).
std::vector<std::string_view> split_words(std::string_view line, bool comments = true);

// Calls f with each line of text, without its '\n'; stops early when f
// returns false (if it returns bool).  Every '\n' ends one line and starts
// another, as ctl reads a write: an empty text is one empty line, and a text
// ending in '\n' ends with one.
template <typename F>
void for_each_line(std::string_view text, F f) {
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(start, end - start);
        start = end + 1;
        if constexpr (std::is_same_v<std::invoke_result_t<F&, std::string_view>, bool>) {
            if (!f(line)) return;
        } else {
            f(line);
        }
    }
}

// The command for the line's verb in the tables (first match wins), or null.
const Command* find_command(std::span<const CommandTable* const> tables, std::string_view line);

// Finds the verb in the tables, checks the argument count and the caller's
// privileges and runs it.  Unknown verbs and wrong counts are EINVAL, a
// missing privilege EPERM, each with a reason.
Status dispatch(std::span<const CommandTable* const> tables, std::string_view line,
                const Caller& caller);

// "#   VERB ARGS   HELP" lines, for the help block that ctl shows.
void append_help(const CommandTable& table, std::string& out);

// Argument parsers: a value, or EINVAL naming what was expected.
Status parse_uint(std::string_view word, std::uint64_t min, std::uint64_t max,
                  std::string_view what, std::uint64_t& out);
Status parse_on_off(std::string_view word, std::string_view what, bool& out);

}  // namespace ipnfs::bus
