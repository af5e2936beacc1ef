#include "transcoder/base64.h"

#include <cstdint>
#include <random>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace gateway::transcoder {
namespace {

std::string Encode(absl::string_view in) {
  std::string out;
  Base64Encode(in, &out);
  return out;
}

// The bytes, or "<invalid>".
std::string Decode(absl::string_view in) {
  std::string out;
  if (!Base64Decode(in, &out)) return "<invalid>";
  return out;
}

// What the transcoder accepted before it had its own codec.
std::string AbslDecode(absl::string_view in) {
  std::string out;
  if (!absl::Base64Unescape(in, &out) && !absl::WebSafeBase64Unescape(in, &out)) {
    return "<invalid>";
  }
  return out;
}

TEST(Base64, EncodesRfc4648Vectors) {
  EXPECT_EQ(Encode(""), "");
  EXPECT_EQ(Encode("f"), "Zg==");
  EXPECT_EQ(Encode("fo"), "Zm8=");
  EXPECT_EQ(Encode("foo"), "Zm9v");
  EXPECT_EQ(Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Encode("foobar"), "Zm9vYmFy");
}

TEST(Base64, DecodesRfc4648VectorsWithAndWithoutPadding) {
  EXPECT_EQ(Decode(""), "");
  EXPECT_EQ(Decode("Zg=="), "f");
  EXPECT_EQ(Decode("Zm8="), "fo");
  EXPECT_EQ(Decode("Zm9v"), "foo");
  EXPECT_EQ(Decode("Zm9vYg=="), "foob");
  EXPECT_EQ(Decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(Decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(Decode("Zg"), "f");
  EXPECT_EQ(Decode("Zm8"), "fo");
  EXPECT_EQ(Decode("Zm9vYg"), "foob");
  EXPECT_EQ(Decode("Zm9vYmE"), "fooba");
}

TEST(Base64, EncodesTheStandardAlphabet) {
  EXPECT_EQ(Encode("\xfb\xff\xbf"), "+/+/");
  EXPECT_EQ(Encode("\xff"), "/w==");
}

TEST(Base64, DecodesEitherAlphabetButNotBothInOneInput) {
  EXPECT_EQ(Decode("+/+/"), "\xfb\xff\xbf");
  EXPECT_EQ(Decode("-_-_"), "\xfb\xff\xbf");
  EXPECT_EQ(Decode("/w=="), "\xff");
  EXPECT_EQ(Decode("_w"), "\xff");
  EXPECT_EQ(Decode("+_-/"), "<invalid>");
  EXPECT_EQ(Decode("AAAA+AAA-AAA"), "<invalid>");
}

TEST(Base64, IgnoresWhitespaceAnywhere) {
  EXPECT_EQ(Decode(" Zm9v\nYmE\t=\r\n"), "fooba");
  EXPECT_EQ(Decode("Z m 9 v"), "foo");
  EXPECT_EQ(Decode("Zg\v=\f="), "f");
  EXPECT_EQ(Decode("  "), "");
}

TEST(Base64, PaddingIsNoneOrExactlyWhatTheLastGroupNeeds) {
  EXPECT_EQ(Decode("Zg="), "<invalid>");
  EXPECT_EQ(Decode("Zg==="), "<invalid>");
  EXPECT_EQ(Decode("Zm8=="), "<invalid>");
  EXPECT_EQ(Decode("Zm9v="), "<invalid>");
  EXPECT_EQ(Decode("="), "<invalid>");
  EXPECT_EQ(Decode("Zg.."), "f");  // '.' pads too
  EXPECT_EQ(Decode("Zg=."), "f");
  EXPECT_EQ(Decode("Zg==Zg=="), "<invalid>");
  EXPECT_EQ(Decode("Zm=9v"), "<invalid>");
}

TEST(Base64, RejectsOneCharacterTooManyAndJunk) {
  EXPECT_EQ(Decode("Z"), "<invalid>");
  EXPECT_EQ(Decode("Zm9vY"), "<invalid>");
  EXPECT_EQ(Decode("Zm9v!"), "<invalid>");
  EXPECT_EQ(Decode(absl::string_view("Zm\0v", 4)), "<invalid>");
  EXPECT_EQ(Decode("Zm9\xc3\xa9"), "<invalid>");
}

TEST(Base64, IgnoresUnusedLowBitsOfTheLastCharacter) {
  EXPECT_EQ(Decode("Zh=="), "f");
  EXPECT_EQ(Decode("Zm9="), "fo");
}

TEST(Base64, AppendsAndLeavesOutputAloneOnFailure) {
  std::string out = "x";
  Base64Encode("foo", &out);
  EXPECT_EQ(out, "xZm9v");
  ASSERT_TRUE(Base64Decode("YmFy", &out));
  EXPECT_EQ(out, "xZm9vbar");
  EXPECT_FALSE(Base64Decode("YmFyY", &out));
  EXPECT_EQ(out, "xZm9vbar");
}

TEST(Base64, RoundTripsEveryLengthUpTo70) {
  std::mt19937 rng(70);
  for (size_t n = 0; n <= 70; ++n) {
    std::string in;
    for (size_t i = 0; i < n; ++i) in.push_back(static_cast<char>(rng()));
    std::string encoded = Encode(in);
    EXPECT_EQ(encoded, absl::Base64Escape(in)) << n;
    EXPECT_EQ(Decode(encoded), in) << n;
    EXPECT_EQ(Base64DecodedSize(encoded), n) << n;
    std::string unpadded = absl::WebSafeBase64Escape(in);
    EXPECT_EQ(Decode(unpadded), in) << n;
    EXPECT_EQ(Base64DecodedSize(unpadded), n) << n;
  }
}

TEST(Base64, DecodedSizeIsAnUpperBoundWithWhitespace) {
  EXPECT_EQ(Base64DecodedSize("Zm9v YmE="), 6u);
  EXPECT_EQ(Decode("Zm9v YmE=").size(), 5u);
  EXPECT_EQ(Base64DecodedSize("Zg==\n"), 3u);
}

// Random strings over an alphabet rich in the characters the rules are about,
// decoded by ours and by absl's pair: same verdict, same bytes.
TEST(Base64, AgreesWithAbslOnRandomInput) {
  const std::string kChars =
      "AQZagz09+/-_==..  \t\n\v\f\r!*\x80\xff";
  std::mt19937 rng(20261206);
  int accepted = 0;
  for (int i = 0; i < 200000; ++i) {
    size_t n = rng() % 24;
    std::string in;
    int mode = i % 4;
    for (size_t j = 0; j < n; ++j) {
      if (mode == 0) {
        in.push_back(kChars[rng() % kChars.size()]);  // anything
      } else if (mode == 1) {
        in.push_back(static_cast<char>(rng()));  // any byte
      } else {
        // Mostly data, now and then something else: many accepted inputs.
        unsigned r = rng() % 64;
        in.push_back(r < 60 ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[r]
                            : kChars[rng() % kChars.size()]);
      }
    }
    std::string expected = AbslDecode(in);
    ASSERT_EQ(Decode(in), expected) << "input: \"" << absl::CEscape(in) << "\"";
    if (expected != "<invalid>") {
      ++accepted;
      EXPECT_LE(expected.size(), Base64DecodedSize(in)) << absl::CEscape(in);
    }
  }
  EXPECT_GT(accepted, 20000);  // the comparison covers the accepting side too
}

}  // namespace
}  // namespace gateway::transcoder
