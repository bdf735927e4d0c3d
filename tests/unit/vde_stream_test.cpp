// VDE's stream format as ipnfs-cable reads and writes it: frames preceded by
// a 2-byte big-endian length, read in whatever chunks the pipe delivers.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "vde_stream.hpp"

namespace ipnfs::cable {
namespace {

std::vector<std::string> drain(StreamDecoder& decoder) {
    std::vector<std::string> frames;
    while (auto frame = decoder.front()) {
        frames.emplace_back(*frame);
        decoder.pop();
    }
    return frames;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 7 + n);
    return s;
}

TEST(VdeStream, EncodePutsTheLengthFirstBigEndian) {
    EXPECT_EQ(encode("abc"), std::string("\x00\x03"
                                         "abc",
                                         5));
    EXPECT_EQ(encode(pattern(0x1234)).substr(0, 2), "\x12\x34");
    EXPECT_EQ(encode(pattern(kMaxFrame)).substr(0, 2), "\xff\xff");
    EXPECT_EQ(encode(""), std::string("\x00\x00", 2));
    EXPECT_THROW(encode(pattern(kMaxFrame + 1)), std::length_error);
}

TEST(VdeStream, NothingComesOutOfAPartialFrame) {
    StreamDecoder d;
    EXPECT_FALSE(d.front());
    d.feed(std::string_view("\x00", 1));
    EXPECT_FALSE(d.front()) << "half a length";
    d.feed(
        std::string("\x05"
                    "abcd",
                    5));
    EXPECT_FALSE(d.front()) << "4 of 5 bytes";
    EXPECT_EQ(d.buffered(), 6u);
    d.feed("e");
    ASSERT_TRUE(d.front());
    EXPECT_EQ(*d.front(), "abcde");
    d.pop();
    EXPECT_FALSE(d.front());
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(VdeStream, ByteByByteFeedingGivesEveryFrameWhole) {
    std::vector<std::string> sent{"x", pattern(1514), pattern(300), pattern(kMaxFrame), "yz"};
    std::string stream;
    for (const auto& f : sent) stream += encode(f);
    StreamDecoder d;
    std::vector<std::string> got;
    for (char c : stream) {
        d.feed(std::string_view(&c, 1));
        for (auto& f : drain(d)) got.push_back(std::move(f));
    }
    EXPECT_EQ(got, sent);
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(VdeStream, ALengthSplitAcrossReads) {
    std::string frame = pattern(0x0203);
    std::string stream = encode(frame) + encode("next");
    StreamDecoder d;
    d.feed(stream.substr(0, 1));  // the high byte alone
    EXPECT_FALSE(d.front());
    d.feed(stream.substr(1, 1));  // the low byte alone
    EXPECT_FALSE(d.front());
    d.feed(stream.substr(2, frame.size() + 1));  // the frame and half the next length
    EXPECT_EQ(drain(d), std::vector<std::string>{frame});
    d.feed(stream.substr(frame.size() + 3));
    EXPECT_EQ(drain(d), std::vector<std::string>{"next"});
}

TEST(VdeStream, ManyFramesInOneRead) {
    std::vector<std::string> sent;
    std::string stream;
    for (int i = 0; i < 1000; ++i) {
        sent.push_back(pattern(static_cast<std::size_t>(1 + i % 97)));
        stream += encode(sent.back());
    }
    StreamDecoder d;
    d.feed(stream);
    EXPECT_EQ(drain(d), sent);
}

TEST(VdeStream, ChunksOfEveryOddSizeGiveTheSameFrames) {
    std::vector<std::string> sent{pattern(60), pattern(kMaxFrame), "", pattern(1), pattern(9000)};
    std::string stream;
    for (const auto& f : sent) stream += encode(f);
    for (std::size_t chunk : {2u, 3u, 7u, 1000u, 65536u, 65537u}) {
        StreamDecoder d;
        std::vector<std::string> got;
        for (std::size_t at = 0; at < stream.size(); at += chunk) {
            d.feed(std::string_view(stream).substr(at, chunk));
            for (auto& f : drain(d)) got.push_back(std::move(f));
        }
        EXPECT_EQ(got, sent) << "chunks of " << chunk;
    }
}

TEST(VdeStream, TheLargestFrameRoundTrips) {
    std::string frame = pattern(kMaxFrame);
    StreamDecoder d;
    d.feed(encode(frame));
    ASSERT_TRUE(d.front());
    EXPECT_EQ(d.front()->size(), kMaxFrame);
    EXPECT_EQ(*d.front(), frame);
}

TEST(VdeStream, AZeroLengthFrameIsAFrameOfItsOwn) {
    // The cable skips these; the decoder must still keep its place after one.
    StreamDecoder d;
    d.feed(
        std::string("\x00\x00\x00\x01"
                    "a\x00\x00",
                    7));
    EXPECT_EQ(drain(d), (std::vector<std::string>{"", "a", ""}));
}

TEST(VdeStream, PoppingNothingIsHarmless) {
    StreamDecoder d;
    d.pop();
    d.feed(std::string_view("\x00", 1));
    d.pop();
    EXPECT_EQ(d.buffered(), 1u);
    d.feed("\x01z");
    EXPECT_EQ(drain(d), std::vector<std::string>{"z"});
}

TEST(VdeStream, AFrontViewSurvivesUntilTheNextFeed) {
    StreamDecoder d;
    d.feed(encode("first") + encode("second"));
    auto first = d.front();
    ASSERT_TRUE(first);
    d.pop();
    EXPECT_EQ(*first, "first") << "pop() must not move the buffer";
    EXPECT_EQ(*d.front(), "second");
}

}  // namespace
}  // namespace ipnfs::cable
