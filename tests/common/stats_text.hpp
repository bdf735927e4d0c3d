// A network's stats file read back into numbers, for the unit tests (which
// call Network::stats()) and the integration tests (which read the file)
// alike: one parser, so both check the same text the same way.
//
// The text: "key value" lines (the totals), a blank line, the port table
// (a title row, then one row per port in use); then, after a blank line,
// the sections: the policy's lines ("switch mac_entries 3 ...", "mac ...")
// and the tables of the network's extension (interfaces, cables, VDE
// clients), each a title row and its rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ipnfs::stats_text {

// One row of the port table.
struct PortRow {
    std::uint64_t readers = 0, writers = 0, msgs_in = 0, bytes_in = 0, msgs_out = 0, bytes_out = 0,
                  drops = 0, queued = 0;
};

// A table of the sections: its title row and its rows, each split into words
// (a last column of free text, such as a VDE client's name, spans several).
struct Table {
    std::vector<std::string> titles;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> lines;  // the rows as printed

    // The first row whose first word is `first`, or nullptr.
    [[nodiscard]] const std::vector<std::string>* row(std::string_view first) const;
    // The number in the column titled `title` of `row`; a missing column or a
    // word that is not a number is reported (ADD_FAILURE) and gives 0.
    [[nodiscard]] std::uint64_t number(const std::vector<std::string>& row,
                                       std::string_view title) const;
    // The word in that column as printed (a "-" where the value is not
    // known); a missing column is reported (ADD_FAILURE) and gives "".
    [[nodiscard]] std::string word(const std::vector<std::string>& row,
                                   std::string_view title) const;
};

struct Stats {
    std::map<std::string, std::string> totals;  // "network" -> NAME, "drops" -> "6", ...
    std::vector<std::string> titles;            // of the port table
    std::map<unsigned, PortRow> rows;           // by port
    std::vector<std::string> sections;          // every line after the port table

    // A total as a number; a missing one is reported (ADD_FAILURE) and gives 0.
    [[nodiscard]] std::uint64_t total(const std::string& key) const;
    // The section lines that start with the word `word`, split into words.
    [[nodiscard]] std::vector<std::vector<std::string>> lines_of(std::string_view word) const;
    // The counters of the section line "WORD key value key value ..." (the
    // policy's summary: "switch", "group", "topic"); empty if there is none.
    [[nodiscard]] std::map<std::string, std::uint64_t> counters(std::string_view word) const;
    // The table of the sections whose first title is `first_title` ("iface",
    // "cable_to", "vde"); no titles and no rows if there is none.
    [[nodiscard]] Table table(std::string_view first_title) const;
};

// Problems (a row or a total that does not parse) are reported through
// ADD_FAILURE; what parses is kept.
Stats parse_stats(std::string_view text);

// "WORD key value key value ..." as key -> value; a value that is not a
// number is reported (ADD_FAILURE) and left out.
std::map<std::string, std::uint64_t> counters_of(std::string_view line);
// One counter of such a line; a missing one is reported and gives ~0.
std::uint64_t counter_of(std::string_view line, std::string_view key);

}  // namespace ipnfs::stats_text
