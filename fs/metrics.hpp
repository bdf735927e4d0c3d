// The stats files' numbers in the Prometheus text exposition format (0.0.4,
// what node_exporter's textfile collector parses): a network's `metrics`
// file and the mount root's ipnfs.prom.  Made from the same text a read of
// `stats` returns, so both always agree, and every line of it (the policy's
// and the kernel interfaces', cables' and VDE clients' tables included)
// becomes series without the bus, the policies or netdev knowing this
// format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ipnfs::fs {

class Exposition {
  public:
    enum class Type : std::uint8_t { counter, gauge, untyped };
    using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

    // One sample of family `name` (without `_total`: a counter gets it).  A
    // family keeps the type and help of its first sample; a sample of another
    // type, or with labels the family already has, is left out (a scraper
    // rejects a whole file for either).
    void add(std::string_view name, Type type, std::string_view help, const Labels& labels,
             std::uint64_t value);
    // Every number of one network's stats text (bus::Network::stats()),
    // labelled with `network`, its name.
    void add_stats(std::string_view network, std::string_view stats);
    // One HELP and one TYPE line per family, then its samples.
    [[nodiscard]] std::string text() const;

  private:
    struct Family {
        std::string name;
        Type type;
        std::string help;
        std::vector<std::string> samples;      // "name{labels} value"
        std::unordered_set<std::string> seen;  // label sets already sampled
    };
    std::vector<Family> families_;
    std::unordered_map<std::string, std::size_t> index_;
};

// A label value or HELP text as the format writes it: \ " and newline escaped
// (HELP: \ and newline only).
std::string escape_label(std::string_view value);
std::string escape_help(std::string_view text);

}  // namespace ipnfs::fs
