// fs/file_table: the rows every lookup, readdir and open of a network
// directory's files reads.
#include "fs/file_table.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace ipnfs::fs {
namespace {

TEST(FileTable, EachFixedFileIsFoundByNameAndBySlot) {
    std::set<std::string_view> names;
    for (const FileRow& row : kFixedFiles) {
        EXPECT_TRUE(names.insert(row.name).second) << row.name;
        EXPECT_EQ(fixed_file(row.name), &row);
        EXPECT_EQ(file_row(row.slot), &row);
        EXPECT_EQ(fixed_slot(row.kind), row.slot);
    }
    EXPECT_EQ(fixed_file("port0"), nullptr);
    EXPECT_EQ(fixed_file("ctl2"), nullptr);
}

TEST(FileTable, TheDirectoryAndTheKeptSlotsHaveNoRow) {
    EXPECT_EQ(file_row(kDirSlot), nullptr);
    for (std::uint32_t slot = kFixedFiles.back().slot + 1; slot < kPortFiles.slot; ++slot) {
        EXPECT_EQ(file_row(slot), nullptr) << slot;
    }
    EXPECT_EQ(file_row(kPortFiles.slot), &kPortFiles);
    EXPECT_EQ(file_row(kPortFiles.slot + 65535), &kPortFiles);
}

TEST(FileTable, OnlyReadOnlyFilesRefuseWritersAndOnlyPortsCarryMessages) {
    for (const FileRow& row : kFixedFiles) {
        bool read_only = row.kind == Kind::stats || row.kind == Kind::events ||
                         row.kind == Kind::capture || row.kind == Kind::metrics;
        EXPECT_EQ(row.read_only, read_only) << row.name;
        EXPECT_EQ(row.carries_messages(), row.kind == Kind::clone) << row.name;
        EXPECT_EQ(row.connects(),
                  row.kind != Kind::ctl && row.kind != Kind::stats && row.kind != Kind::metrics)
            << row.name;
    }
    EXPECT_FALSE(kPortFiles.read_only);
    EXPECT_TRUE(kPortFiles.carries_messages());
}

TEST(FileTable, APortHasExactlyOneName) {
    EXPECT_EQ(parse_port_name("port0"), 0U);
    EXPECT_EQ(parse_port_name("port17"), 17U);
    EXPECT_EQ(parse_port_name("port"), std::nullopt);
    EXPECT_EQ(parse_port_name("port01"), std::nullopt);
    EXPECT_EQ(parse_port_name("port-1"), std::nullopt);
    EXPECT_EQ(parse_port_name("port1x"), std::nullopt);
    EXPECT_EQ(parse_port_name("Port1"), std::nullopt);
    EXPECT_EQ(parse_port_name("port99999999999"), std::nullopt);
}

}  // namespace
}  // namespace ipnfs::fs
