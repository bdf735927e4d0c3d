// Every ```python example of docs/python.md, run by Debian's python3 with the
// package from the source tree against a real mount: each must end by
// itself, succeed, and print its ```text block.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "doc_examples.hpp"
#include "mount_fixture.hpp"

#ifndef IPNFS_SOURCE_DIR
#error "IPNFS_SOURCE_DIR must name the source tree"
#endif

namespace ipnfs_it {
namespace {

const std::string kDoc = IPNFS_SOURCE_DIR "/docs/python.md";
const std::string kSection = "## Examples";
const std::string kPython3 = "/usr/bin/python3";
constexpr double kBoundSeconds = 60.0;

std::vector<DocExample> section_examples() {
    return doc_examples(read_whole(kDoc), kSection);
}

class PythonDocExampleTest : public IpnfsTest, public ::testing::WithParamInterface<DocExample> {};

TEST_P(PythonDocExampleTest, RunsAndPrintsItsOutput) {
    const DocExample& example = GetParam();
    const std::string where = "docs/python.md:" + std::to_string(example.line) + " (" +
                              example.subsection + ", example " + std::to_string(example.index) +
                              "):\n" + example.code;
    struct stat st {};
    if (stat(kPython3.c_str(), &st) != 0) IPNFS_SKIP_OR_FAIL(kPython3 + " is not installed");
    ASSERT_EQ(example.language, "python") << where;
    // A fresh network, as the document promises: a lossy hub with defaults.
    make_net("lan");
    Shell sh = run_argv(
        {"env", "-u", "PYTHONUNBUFFERED", "PYTHONPATH=" IPNFS_SOURCE_DIR "/python",
         "PYTHONDONTWRITEBYTECODE=1", "IPNFS_MOUNT=" + mount_.dir(), kPython3, "-c", example.code},
        kBoundSeconds);
    ASSERT_FALSE(sh.timed_out) << "did not end within " << kBoundSeconds << " s: " << where
                               << "\nstdout:\n"
                               << sh.out << "stderr:\n"
                               << sh.err;
    ASSERT_EQ(sh.exit_code(), 0) << "failed: " << where << "\nstderr:\n" << sh.err;
    ASSERT_TRUE(example.output.has_value()) << "no ```text block after " << where;
    EXPECT_EQ(sh.out, *example.output)
        << "printed other than its text block: " << where << "\nstderr:\n"
        << sh.err;
}

INSTANTIATE_TEST_SUITE_P(PythonMd, PythonDocExampleTest, ::testing::ValuesIn(section_examples()),
                         [](const ::testing::TestParamInfo<DocExample>& info) {
                             return example_name(info.param);
                         });

// Without this, a renamed heading, or an example written outside the
// section, would leave the suite above with less to run, and nothing would
// say so.
TEST(PythonDocExamples, EveryPythonBlockOfTheDocumentIsRun) {
    struct stat st {};
    ASSERT_EQ(stat(kDoc.c_str(), &st), 0) << kDoc;
    std::size_t blocks = 0;
    for (const std::string& line : lines_of(read_whole(kDoc))) {
        if (line.starts_with("```python")) ++blocks;
    }
    std::vector<DocExample> examples = section_examples();
    EXPECT_GE(examples.size(), 5u) << kDoc << " lost its examples";
    EXPECT_EQ(examples.size(), blocks)
        << "a ```python block of " << kDoc << " is outside \"" << kSection << "\"";
}

}  // namespace
}  // namespace ipnfs_it
