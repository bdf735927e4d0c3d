#include "doc_examples.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace ipnfs_it {

namespace {

struct Fence {
    std::size_t indent = 0;
    std::string language;
};

// "```LANG" (or a bare "```") after optional indentation.
std::optional<Fence> fence_of(std::string_view line) {
    std::size_t indent = line.find_first_not_of(' ');
    if (indent == std::string_view::npos || line.substr(indent, 3) != "```") return std::nullopt;
    std::string_view rest = line.substr(indent + 3);
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.back()))) {
        rest.remove_suffix(1);
    }
    return Fence{indent, std::string(rest)};
}

std::vector<std::string> split_lines(std::string_view text) {
    std::vector<std::string> lines;
    std::istringstream in{std::string(text)};
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// A block inside a list item is indented as its fence is.
std::string strip_indent(const std::string& line, std::size_t indent) {
    std::size_t spaces = line.find_first_not_of(' ');
    if (spaces == std::string::npos) spaces = line.size();
    return line.substr(std::min(spaces, indent));
}

bool blank(const std::string& line) {
    return line.find_first_not_of(" \t") == std::string::npos;
}

}  // namespace

std::vector<DocExample> doc_examples(std::string_view markdown, std::string_view heading) {
    std::vector<std::string> lines = split_lines(markdown);
    std::vector<DocExample> examples;
    bool inside = false;
    std::string subsection;
    int index = 0;
    constexpr std::size_t kNone = std::string::npos;
    std::size_t waiting = kNone;  // the example a ```text block may follow
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        if (line.rfind("## ", 0) == 0) {
            if (inside) break;
            inside = line == heading;
            continue;
        }
        if (!inside) continue;
        if (line.rfind("### ", 0) == 0) {
            subsection = line.substr(4);
            index = 0;
            waiting = kNone;
            continue;
        }
        auto fence = fence_of(line);
        if (!fence) {
            if (!blank(line)) waiting = kNone;
            continue;
        }
        std::string body;
        std::size_t open_line = i;
        for (++i; i < lines.size() && !fence_of(lines[i]); ++i) {
            body += strip_indent(lines[i], fence->indent);
            body += '\n';
        }
        if (fence->language == "text" && waiting != kNone) {
            examples[waiting].output = body;
            waiting = kNone;
        } else if (fence->language == "sh" || fence->language == "python") {
            examples.push_back(DocExample{subsection, ++index, static_cast<int>(open_line) + 1,
                                          fence->language, body, std::nullopt});
            waiting = examples.size() - 1;
            continue;
        }
        waiting = kNone;
    }
    return examples;
}

std::string example_name(const DocExample& example) {
    std::string name;
    bool upper = true;
    for (char c : example.subsection) {
        if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
            name += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
            upper = false;
        } else {
            upper = true;
        }
    }
    return (name.empty() ? "Intro" : name) + "_" + std::to_string(example.index);
}

void PrintTo(const DocExample& example, std::ostream* os) {
    *os << example.language << " block at line " << example.line << " (" << example.subsection
        << ")";
}

}  // namespace ipnfs_it
