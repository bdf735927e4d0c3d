// The runnable examples of a section of a Markdown document: its ```sh and
// ```python blocks, each with the ```text block that shows its output.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace ipnfs_it {

struct DocExample {
    std::string subsection;             // the "### " heading above it, "" before the first
    int index = 0;                      // 1, 2, ... within its subsection
    int line = 0;                       // the line of its opening fence, from 1
    std::string language;               // "sh" or "python"
    std::string code;                   // the block, less the indentation of its fence
    std::optional<std::string> output;  // the ```text block right after it
};

// The examples of the section headed `heading` ("## ..."), up to the next
// "## " heading.  Blocks of other languages are left out.
std::vector<DocExample> doc_examples(std::string_view markdown, std::string_view heading);

// A name gtest accepts: the subsection's words in CamelCase, "_", the index.
std::string example_name(const DocExample& example);

// How gtest names a failing example: where it is, not its bytes.
void PrintTo(const DocExample& example, std::ostream* os);

}  // namespace ipnfs_it
