// Every ```sh and ```python example of docs/usage.md's section "Using ports
// from the shell and from buffered languages", run against a real mount:
// each must end by itself, succeed, and print its ```text block.
#include <sys/stat.h>

#include <optional>
#include <string>
#include <vector>

#include "doc_examples.hpp"
#include "mount_fixture.hpp"

#ifndef IPNFS_SOURCE_DIR
#error "IPNFS_SOURCE_DIR must name the source tree"
#endif

namespace ipnfs_it {
namespace {

const std::string kUsage = IPNFS_SOURCE_DIR "/docs/usage.md";
const std::string kSection = "## Using ports from the shell and from buffered languages";
// The mount the examples are written for.
const std::string kDocMount = "/mnt/ipn";
// A bound against a hang, not a speed check: one block starts a dozen
// python3s, which on two loaded cores took over 20 s.
constexpr double kBoundSeconds = 60.0;

std::vector<DocExample> section_examples() {
    return doc_examples(read_whole(kUsage), kSection);
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos;
         at = text.find(from, at + to.size())) {
        text.replace(at, from.size(), to);
    }
    return text;
}

class UsageExampleTest : public IpnfsTest, public ::testing::WithParamInterface<DocExample> {};

TEST_P(UsageExampleTest, RunsAndPrintsItsOutput) {
    const DocExample& example = GetParam();
    const std::string where = "docs/usage.md:" + std::to_string(example.line) + " (" +
                              example.subsection + ", example " + std::to_string(example.index) +
                              "):\n" + example.code;
    std::string interpreter = example.language == "sh" ? "bash" : "python3";
    if (run_argv({interpreter, "--version"}).exit_code() != 0) {
        IPNFS_SKIP_OR_FAIL(interpreter + " is not available");
    }
    // A fresh network, as the section promises: a lossy hub with defaults.
    std::string net = p("lan");
    rmdir(net.c_str());
    make_net("lan");
    std::string code = replace_all(example.code, kDocMount, mount_.dir());
    // The examples show Python's default buffering, which PYTHONUNBUFFERED
    // (set in some CI environments) would change.
    Shell sh = run_argv({"env", "-u", "PYTHONUNBUFFERED", interpreter, "-c", code}, kBoundSeconds);
    ASSERT_FALSE(sh.timed_out) << "did not end within " << kBoundSeconds << " s: " << where
                               << "\nstdout:\n"
                               << sh.out << "stderr:\n"
                               << sh.err;
    ASSERT_EQ(sh.exit_code(), 0) << "failed: " << where << "\nstderr:\n" << sh.err;
    if (example.output) {
        EXPECT_EQ(sh.out, *example.output)
            << "printed other than its text block: " << where << "\nstderr:\n"
            << sh.err;
    }
}

INSTANTIATE_TEST_SUITE_P(UsageMd, UsageExampleTest, ::testing::ValuesIn(section_examples()),
                         [](const ::testing::TestParamInfo<DocExample>& info) {
                             return example_name(info.param);
                         });

// Without this, a renamed heading or a section emptied by mistake would leave
// the suite above with nothing to run, and nothing would say so.
TEST(UsageExamples, TheSectionHasRunnableExamples) {
    struct stat st {};
    ASSERT_EQ(stat(kUsage.c_str(), &st), 0) << kUsage;
    std::vector<DocExample> examples = section_examples();
    ASSERT_FALSE(examples.empty())
        << kUsage << " has no ```sh or ```python block under \"" << kSection << "\"";
    for (const DocExample& example : examples) {
        EXPECT_NE(example.subsection, "")
            << "docs/usage.md:" << example.line << ": an example outside the subsections";
    }
}

// The parser the suite above relies on, on a document made for it: a text
// block belongs to the example right before it (blank lines between), and
// a block inside a list item loses its item's indentation.
TEST(UsageExamples, ParserPairsEachExampleWithTheTextBlockAfterIt) {
    const std::string doc =
        "## Other\n```sh\nnot this\n```\n"
        "## Section\n### First part\n```sh\necho a\n```\n\n```text\na\n```\n"
        "```python\nprint(1)\n```\nprose\n```text\nnot its output\n```\n"
        "### Second part\n- item\n\n  ```sh\n  echo b\n    echo c\n  ```\n"
        "```text\nits output\n```\n"
        "## Next\n```sh\nnor this\n```\n";
    std::vector<DocExample> examples = doc_examples(doc, "## Section");
    ASSERT_EQ(examples.size(), 3u);
    EXPECT_EQ(example_name(examples[0]), "FirstPart_1");
    EXPECT_EQ(examples[0].code, "echo a\n");
    EXPECT_EQ(examples[0].output, std::optional<std::string>("a\n"));
    EXPECT_EQ(example_name(examples[1]), "FirstPart_2");
    EXPECT_EQ(examples[1].language, "python");
    EXPECT_FALSE(examples[1].output.has_value()) << "prose separates it from the text block";
    EXPECT_EQ(example_name(examples[2]), "SecondPart_1");
    EXPECT_EQ(examples[2].code, "echo b\n  echo c\n");
    EXPECT_EQ(examples[2].output, std::optional<std::string>("its output\n"));
}

}  // namespace
}  // namespace ipnfs_it
