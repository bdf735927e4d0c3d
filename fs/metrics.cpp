#include "fs/metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include <fmt/format.h>

namespace ipnfs::fs {

namespace {

using Type = Exposition::Type;

struct Field {
    std::string_view key;
    Type type;
    std::string_view help;
};

// The lines of a stats text before the port table (docs/usage.md "## stats").
// lossless is on/off: 1/0.  network and policy make ipnfs_network_info.
constexpr std::array kHeader{
    Field{"ports", Type::gauge, "Ports of the network."},
    Field{"connected", Type::gauge, "Ports with at least one open descriptor."},
    Field{"msgs_in", Type::counter, "Messages sent into the network."},
    Field{"bytes_in", Type::counter, "Bytes sent into the network."},
    Field{"msgs_out", Type::counter, "Messages taken by readers."},
    Field{"bytes_out", Type::counter, "Bytes taken by readers."},
    Field{"drops", Type::counter, "Copies lost to full queues, leaving readers or byte bounds."},
    Field{"lossless", Type::gauge, "1 if the network is lossless, else 0."},
    Field{"pool_used", Type::gauge, "Messages pending in queues (lossless networks)."},
    Field{"pool", Type::gauge, "Pool size of a lossless network."},
    Field{"parked_readers", Type::gauge, "Reads waiting for a message."},
    Field{"parked_senders", Type::gauge, "Writes waiting for room (lossless networks)."},
    Field{"event_readers", Type::gauge, "Open descriptors of the events file."},
    Field{"capture_readers", Type::gauge, "Open descriptors of the capture file."},
    Field{"captured", Type::counter, "Copies of messages handed to capture readers."},
    Field{"capture_drops", Type::counter, "Copies capture readers lost by falling behind."},
    Field{"held_bytes", Type::gauge, "Bytes of messages queued in the network."},
    Field{"held_limit", Type::gauge, "Bound of held_bytes (-o net_mib; 0: none)."},
    Field{"owner_held", Type::gauge, "Bytes queued in all networks of the network's owner."},
    Field{"owner_limit", Type::gauge, "Bound of owner_held (-o user_mib; 0: none)."},
    Field{"over_limit_drops", Type::counter, "Copies dropped because a byte bound was reached."},
    Field{"stalls", Type::counter, "Times a lossless port was stalled for holding senders back."},
};

// A table of the stats text: its header's words, and for each column what
// it becomes: a label (its name), a number (type), the running state
// (`state`: <family>_running 1/0) or nothing (free text).
struct Column {
    std::string_view word;
    enum class Is : std::uint8_t { label, number, state, text } is;
    std::string_view label = {};  // Is::label: the label's name
    Type type = Type::gauge;      // Is::number
};
struct Table {
    std::string_view family;  // ipnfs_<family>_<column>
    std::string_view what;    // for HELP
    std::vector<Column> columns;
    // Which column takes the words of a row beyond the header's count (a
    // name or text with blanks in it): the first or the last.
    bool free_text_last;
};

Column label(std::string_view word, std::string_view name) {
    return {word, Column::Is::label, name};
}
Column counter(std::string_view word) {
    return {word, Column::Is::number, {}, Type::counter};
}
Column gauge(std::string_view word) {
    return {word, Column::Is::number, {}, Type::gauge};
}

const std::vector<Table>& tables() {
    using Is = Column::Is;
    static const std::vector<Table> all{
        {"port",
         "Per port",
         {label("port", "port"), gauge("readers"), gauge("writers"), counter("msgs_in"),
          counter("bytes_in"), counter("msgs_out"), counter("bytes_out"), counter("drops"),
          gauge("queued")},
         false},
        {"interface",
         "Kernel interface (tap, grab)",
         {label("iface", "interface"),
          label("kind", "kind"),
          label("port", "port"),
          {"state", Is::state},
          counter("frames_in"),
          counter("bytes_in"),
          counter("frames_out"),
          counter("bytes_out"),
          counter("drops"),
          counter("sock_drops"),
          counter("if_rx_dropped"),
          counter("if_rx_missed"),
          counter("if_tx_dropped")},
         false},
        {"cable",
         "Cable",
         {label("cable_to", "cable"),
          label("port", "port"),
          label("peer_port", "peer_port"),
          {"state", Is::state},
          counter("frames_in"),
          counter("bytes_in"),
          counter("frames_out"),
          counter("bytes_out"),
          counter("drops"),
          counter("hop_drops")},
         false},
        {"vde",
         "VDE client",
         {label("vde", "vde"),
          label("port", "port"),
          {"state", Is::state},
          counter("frames_in"),
          counter("bytes_in"),
          counter("frames_out"),
          counter("bytes_out"),
          counter("drops"),
          label("uid", "uid"),
          {"client", Is::text}},
         true},
        {"cluster_node",
         "Cluster node",
         {label("node", "node"),
          label("daemon", "daemon"),
          counter("msgs_in"),
          counter("bytes_in"),
          gauge("in_flight"),
          {"settings", Is::text}},
         true},
    };
    return all;
}

// Keys of policy lines whose numbers are levels, not counts (the switch's
// table size and settings, the spanning tree's state).
constexpr std::array<std::string_view, 9> kPolicyGauges{
    "mac_entries",     "maclimit",     "expire", "root_port", "root_path_cost",
    "topology_change", "since_change", "cost",   "priority"};
// Keys known to count (the built-in policies' and the topic plugin's); a
// plugin's other keys are untyped: only it knows what they are.
constexpr std::array<std::string_view, 16> kPolicyCounters{
    "malformed", "vlan_drops",  "table_full", "unicast",          "anycast",   "multicast",
    "broadcast", "unreachable", "dropped",    "topology_changes", "bad_bpdus", "discards",
    "bpdus_in",  "bpdus_out",   "matched",    "unmatched"};
// Policy lines that are settings or per-address state, not counts: the
// MAC table (one line per address, up to maclimit), the group's members.
constexpr std::array<std::string_view, 5> kPolicySkipped{"mac", "member", "remote", "dest",
                                                         "loopback"};
// The cluster lines' counts; their other numbers are levels.
constexpr std::array<std::string_view, 9> kClusterCounters{
    "cluster_msgs_in",     "cluster_bytes_in",     "cluster_drops",
    "cluster_unreachable", "cluster_window_waits", "cluster_quorum_refusals",
    "cluster_batches_out", "cluster_try_again",    "cluster_refused_batches"};

template <std::size_t N>
bool among(const std::array<std::string_view, N>& set, std::string_view word) {
    return std::ranges::find(set, word) != set.end();
}

std::optional<std::uint64_t> number(std::string_view word) {
    if (word == "on" || word == "yes") return 1;
    if (word == "off" || word == "no") return 0;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), value);
    if (ec != std::errc{} || end != word.data() + word.size()) return std::nullopt;
    return value;
}

std::vector<std::string_view> words_of(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ') ++i;
        if (i > start) words.push_back(line.substr(start, i - start));
    }
    return words;
}

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    }
    return lines;
}

// A metric name from words a plugin chose: what the format allows, else _.
std::string metric_name(std::string_view text) {
    std::string name(text);
    for (char& c : name) {
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) c = '_';
    }
    return name;
}

const Table* table_of(const std::vector<std::string_view>& words) {
    for (const Table& t : tables()) {
        bool match = words.size() == t.columns.size();
        for (std::size_t i = 0; match && i < words.size(); ++i) {
            match = words[i] == t.columns[i].word;
        }
        if (match) return &t;
    }
    return nullptr;
}

void add_row(Exposition& out, const Table& t, std::string_view network,
             const std::vector<std::string_view>& words, std::string_view line) {
    const std::size_t n = t.columns.size();
    if (words.size() < n) return;  // not a row of this table
    // The cells: the free-text column takes the extra words, with the blanks
    // between them as the line has them.
    std::vector<std::string_view> cells(words.begin(), words.end());
    if (words.size() > n) {
        std::size_t extra = words.size() - n;
        if (t.free_text_last) {
            const char* from = words[n - 1].data();
            cells.resize(n);
            cells[n - 1] = std::string_view(from, line.data() + line.size() - from);
        } else {
            const char* to = words[extra].data() + words[extra].size();
            std::string_view first(words[0].data(), to - words[0].data());
            cells.erase(cells.begin(), cells.begin() + static_cast<std::ptrdiff_t>(extra));
            cells[0] = first;
        }
    }
    Exposition::Labels labels{{"network", network}};
    for (std::size_t i = 0; i < n; ++i) {
        if (t.columns[i].is == Column::Is::label) labels.emplace_back(t.columns[i].label, cells[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
        const Column& c = t.columns[i];
        if (c.is == Column::Is::state) {
            out.add(fmt::format("ipnfs_{}_running", t.family), Type::gauge,
                    fmt::format("{}: 1 while its state is running, else 0.", t.what), labels,
                    cells[i] == "running" ? 1 : 0);
        } else if (c.is == Column::Is::number) {
            std::optional<std::uint64_t> v = number(cells[i]);
            if (!v) continue;  // "-": not known
            out.add(fmt::format("ipnfs_{}_{}", t.family, c.word), c.type,
                    fmt::format("{}: {} (stats table column {}).", t.what, c.word, c.word), labels,
                    *v);
        }
    }
}

// A section line that is not a table's: `policy_errors N`, a cluster line
// `cluster_KEY VALUE`, or a policy's `WORD [PORT] KEY VALUE ...`.
void add_section_line(Exposition& out, std::string_view network, std::string_view policy,
                      const std::vector<std::string_view>& words) {
    std::string_view word = words[0];
    if (words.size() == 2 && word == "policy_errors") {
        if (auto v = number(words[1])) {
            out.add("ipnfs_policy_errors", Type::counter,
                    "Ports the policy named that it must not (dropped).",
                    {{"network", network}, {"policy", policy}}, *v);
        }
        return;
    }
    if (words.size() == 2 && word.starts_with("cluster_")) {
        if (auto v = number(words[1])) {
            bool counts = among(kClusterCounters, word);
            out.add(fmt::format("ipnfs_{}", metric_name(word)),
                    counts ? Type::counter : Type::gauge,
                    fmt::format("Cluster: {} (stats line {}; on/yes: 1, off/no: 0).", word, word),
                    {{"network", network}}, *v);
        }
        return;
    }
    if (among(kPolicySkipped, word)) return;
    Exposition::Labels labels{{"network", network}, {"policy", policy}};
    std::size_t first = 1;
    if ((words.size() - 1) % 2 == 1) {  // WORD PORT KEY VALUE ...
        labels.emplace_back("port", words[1]);
        first = 2;
    }
    for (std::size_t i = first; i + 1 < words.size(); i += 2) {
        std::optional<std::uint64_t> v = number(words[i + 1]);
        if (!v) continue;
        std::string_view key = words[i];
        Type type = among(kPolicyGauges, key)     ? Type::gauge
                    : among(kPolicyCounters, key) ? Type::counter
                                                  : Type::untyped;
        out.add(fmt::format("ipnfs_policy_{}_{}", metric_name(word), metric_name(key)), type,
                fmt::format("Policy line {}: {}.", word, key), labels, *v);
    }
}

}  // namespace

std::string escape_label(std::string_view value) {
    // Scrapers reject a whole file for a label value that is not UTF-8, and
    // a network's name may hold any byte: each byte of an invalid sequence
    // becomes U+FFFD.
    std::string out;
    out.reserve(value.size());
    std::size_t i = 0;
    while (i < value.size()) {
        auto c = static_cast<unsigned char>(value[i]);
        std::size_t len = c < 0x80           ? 1
                          : (c >> 5) == 0x6  ? 2
                          : (c >> 4) == 0xE  ? 3
                          : (c >> 3) == 0x1E ? 4
                                             : 0;
        bool ok = len != 0 && i + len <= value.size();
        for (std::size_t k = 1; ok && k < len; ++k) {
            ok = (static_cast<unsigned char>(value[i + k]) & 0xC0) == 0x80;
        }
        if (ok && len > 1) {
            // Overlong forms, surrogates and code points past U+10FFFF are
            // not UTF-8 either.
            std::uint32_t cp = c & (0x7F >> len);
            for (std::size_t k = 1; k < len; ++k) {
                cp = (cp << 6) | (static_cast<unsigned char>(value[i + k]) & 0x3F);
            }
            static constexpr std::array<std::uint32_t, 5> kMin{0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (!ok) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.append(value.substr(i, len));
        }
        i += len;
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void Exposition::add(std::string_view name, Type type, std::string_view help, const Labels& labels,
                     std::uint64_t value) {
    std::string full(name);
    if (type == Type::counter) full += "_total";
    auto [it, made] = index_.try_emplace(full, families_.size());
    if (made) families_.push_back({full, type, escape_help(help), {}, {}});
    Family& family = families_[it->second];
    if (family.type != type) return;
    std::string set;
    for (const auto& [key, val] : labels) {
        fmt::format_to(std::back_inserter(set), "{}{}=\"{}\"", set.empty() ? "" : ",", key,
                       escape_label(val));
    }
    if (!family.seen.insert(set).second) return;
    family.samples.push_back(set.empty() ? fmt::format("{} {}", full, value)
                                         : fmt::format("{}{{{}}} {}", full, set, value));
}

void Exposition::add_stats(std::string_view network, std::string_view stats) {
    // The first line is "network NAME": skipped whole by its known length, as
    // a name may hold any byte but / and NUL, a newline included.
    std::string head = fmt::format("network {}\n", network);
    if (!stats.starts_with(head)) return;
    std::vector<std::string_view> lines = lines_of(stats.substr(head.size()));
    std::size_t i = 0;
    std::string_view policy;
    for (; i < lines.size() && !lines[i].empty(); ++i) {
        std::vector<std::string_view> w = words_of(lines[i]);
        if (w.size() != 2) continue;
        if (w[0] == "policy") {
            policy = w[1];
            continue;
        }
        const auto* f = std::ranges::find(kHeader, w[0], &Field::key);
        std::optional<std::uint64_t> v = number(w[1]);
        if (f == kHeader.end() || !v) continue;
        add(fmt::format("ipnfs_{}", f->key), f->type, f->help, {{"network", network}}, *v);
    }
    add("ipnfs_network_info", Type::gauge, "1 for each network, labelled with its policy.",
        {{"network", network}, {"policy", policy}}, 1);
    const Table* table = nullptr;
    for (; i < lines.size(); ++i) {
        std::vector<std::string_view> w = words_of(lines[i]);
        if (w.empty()) {
            // The port table ends at the blank line before the sections;
            // the extension's tables follow one another without one.
            if (table != nullptr && table->family == "port") table = nullptr;
            continue;
        }
        if (const Table* t = table_of(w)) {
            table = t;
        } else if (table != nullptr) {
            add_row(*this, *table, network, w, lines[i]);
        } else {
            add_section_line(*this, network, policy, w);
        }
    }
}

std::string Exposition::text() const {
    static constexpr std::array<std::string_view, 3> kTypes{"counter", "gauge", "untyped"};
    std::string out;
    for (const Family& f : families_) {
        if (f.samples.empty()) continue;
        fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", f.name, f.help,
                       f.name, kTypes[static_cast<std::size_t>(f.type)]);
        for (const std::string& s : f.samples) {
            out += s;
            out += '\n';
        }
    }
    return out;
}

}  // namespace ipnfs::fs
