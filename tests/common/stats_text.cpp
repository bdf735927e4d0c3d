#include "stats_text.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <sstream>

namespace ipnfs::stats_text {
namespace {

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        lines.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

std::vector<std::string> words_of(std::string_view line) {
    std::istringstream in{std::string(line)};
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(std::move(w));
    return words;
}

std::optional<std::uint64_t> number_of(std::string_view word) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
    if (ec != std::errc{} || end != word.data() + word.size()) return std::nullopt;
    return v;
}

// A table's title row: words only, at least four of them.  Rows and the
// policy's lines all carry a number (a port, a counter).
bool is_title(const std::vector<std::string>& words) {
    return words.size() >= 4 && std::ranges::none_of(words, [](const std::string& w) {
               return number_of(w).has_value();
           });
}

}  // namespace

const std::vector<std::string>* Table::row(std::string_view first) const {
    for (const auto& r : rows) {
        if (!r.empty() && r[0] == first) return &r;
    }
    return nullptr;
}

std::string Table::word(const std::vector<std::string>& row, std::string_view title) const {
    auto at = std::ranges::find(titles, title);
    if (at == titles.end()) {
        ADD_FAILURE() << "no column '" << title << "' in the table of '"
                      << (titles.empty() ? "" : titles[0]) << "'";
        return {};
    }
    auto column = static_cast<std::size_t>(at - titles.begin());
    return column < row.size() ? row[column] : std::string();
}

std::uint64_t Table::number(const std::vector<std::string>& row, std::string_view title) const {
    bool column = std::ranges::find(titles, title) != titles.end();
    std::optional<std::uint64_t> v = number_of(word(row, title));  // reports a missing column
    if (column && !v) ADD_FAILURE() << "no number in column '" << title << "' of a row";
    return v.value_or(0);
}

std::uint64_t Stats::total(const std::string& key) const {
    auto it = totals.find(key);
    if (it == totals.end()) {
        ADD_FAILURE() << "stats has no '" << key << "' line";
        return 0;
    }
    std::optional<std::uint64_t> v = number_of(it->second);
    if (!v) ADD_FAILURE() << "stats '" << key << "' is not a number: " << it->second;
    return v.value_or(0);
}

std::vector<std::vector<std::string>> Stats::lines_of(std::string_view word) const {
    std::vector<std::vector<std::string>> out;
    for (const auto& line : sections) {
        auto words = words_of(line);
        if (!words.empty() && words[0] == word) out.push_back(std::move(words));
    }
    return out;
}

std::map<std::string, std::uint64_t> Stats::counters(std::string_view word) const {
    for (const auto& line : sections) {
        auto words = words_of(line);
        if (!words.empty() && words[0] == word) return counters_of(line);
    }
    return {};
}

Table Stats::table(std::string_view first_title) const {
    Table t;
    bool inside = false;
    for (const auto& line : sections) {
        auto words = words_of(line);
        if (words.empty() || is_title(words)) {
            if (inside) break;  // the next table, or the end of this one
            if (!words.empty() && words[0] == first_title) {
                t.titles = std::move(words);
                inside = true;
            }
            continue;
        }
        if (inside) {
            t.rows.push_back(std::move(words));
            t.lines.push_back(line);
        }
    }
    return t;
}

Stats parse_stats(std::string_view text) {
    Stats st;
    std::vector<std::string> lines = split_lines(text);
    std::size_t i = 0;
    for (; i < lines.size() && !lines[i].empty(); ++i) {
        auto space = lines[i].find(' ');
        if (space == std::string::npos) {
            ADD_FAILURE() << "stats line without a value: " << lines[i];
            continue;
        }
        st.totals[lines[i].substr(0, space)] = lines[i].substr(space + 1);
    }
    if (++i >= lines.size()) return st;  // a blank line, then the port table's titles
    st.titles = words_of(lines[i]);
    for (++i; i < lines.size() && !lines[i].empty(); ++i) {
        std::istringstream row(lines[i]);
        unsigned port = 0;
        PortRow r;
        if (!(row >> port >> r.readers >> r.writers >> r.msgs_in >> r.bytes_in >> r.msgs_out >>
              r.bytes_out >> r.drops >> r.queued)) {
            ADD_FAILURE() << "unparsable stats row: " << lines[i];
            continue;
        }
        st.rows[port] = r;
    }
    if (i < lines.size())
        st.sections.assign(lines.begin() + static_cast<std::ptrdiff_t>(i) + 1, lines.end());
    return st;
}

std::map<std::string, std::uint64_t> counters_of(std::string_view line) {
    std::map<std::string, std::uint64_t> out;
    auto words = words_of(line);
    for (std::size_t k = 1; k + 1 < words.size(); k += 2) {
        std::optional<std::uint64_t> v = number_of(words[k + 1]);
        if (!v) {
            ADD_FAILURE() << "'" << words[k] << "' is not followed by a number in: " << line;
            continue;
        }
        out[words[k]] = *v;
    }
    return out;
}

std::uint64_t counter_of(std::string_view line, std::string_view key) {
    auto counters = counters_of(line);
    auto it = counters.find(std::string(key));
    if (it == counters.end()) {
        ADD_FAILURE() << key << " missing from: " << line;
        return ~std::uint64_t{0};
    }
    return it->second;
}

}  // namespace ipnfs::stats_text
