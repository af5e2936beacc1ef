#include "gateway/tracing/trace_context.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace gateway::tracing {
namespace {

constexpr char kValid[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(ParseTraceparent, ReadsIdsAndFlags) {
  std::optional<TraceContext> c = ParseTraceparent(kValid);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(ToHex(c->trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(ToHex(c->span_id), "00f067aa0ba902b7");
  EXPECT_TRUE(c->sampled());
  EXPECT_EQ(FormatTraceparent(*c), kValid);

  c = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->sampled());
}

TEST(ParseTraceparent, RefusesHostileAndMalformedValues) {
  const std::string bad[] = {
      "",
      "00",
      // all-zero ids
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      // other versions, including the forbidden ff
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      // upper case, non-hex, wrong separators, lengths
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
      "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
      " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\0", 55),
      std::string(55, '-'),
      std::string(100000, '0'),
  };
  for (const std::string& value : bad) {
    EXPECT_FALSE(ParseTraceparent(value).has_value()) << value.substr(0, 80);
  }
}

TEST(NormalizeTracestate, KeepsValidMembersAndDropsEmptyOnes) {
  EXPECT_EQ(NormalizeTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(NormalizeTracestate(" a=1 ,\t, b@sys=x y,  "), "a=1,b@sys=x y");
  EXPECT_EQ(NormalizeTracestate("k_-*/9=v"), "k_-*/9=v");
  EXPECT_EQ(NormalizeTracestate("1tenant@vendor=v"), "1tenant@vendor=v");
  EXPECT_EQ(NormalizeTracestate(""), "");
}

TEST(NormalizeTracestate, DropsTheWholeHeaderWhenAMemberIsInvalid) {
  const std::string bad[] = {
      "Upper=1",          // upper-case key
      "a=1,a=2",          // duplicate key
      "a",                // no '='
      "=v",               // empty key
      "a=",               // empty value
      "a=b=c",            // '=' in the value
      "a=trailing ",      // value ends in a space... (trimmed as OWS, so valid below)
      "a@=v",             // empty system
      "@b=v",             // empty tenant
      "a@b@c=v",          // two '@'
      "a@abcdefghijklmno=v",  // system longer than 14
      "a=\x7f",           // control byte
      "a=\xc3\xa9",       // non-ASCII
      std::string(257, 'k') + "=v",       // key too long
      "k=" + std::string(257, 'v'),       // value too long
  };
  for (const std::string& value : bad) {
    if (value == "a=trailing ") {
      EXPECT_EQ(NormalizeTracestate(value), "a=trailing");
      continue;
    }
    EXPECT_EQ(NormalizeTracestate(value), "") << value.substr(0, 80);
  }
}

TEST(NormalizeTracestate, AtMost32Members) {
  std::vector<std::string> members;
  for (int i = 0; i < 32; ++i) members.push_back(absl::StrCat("k", i, "=v"));
  const std::string thirty_two = absl::StrJoin(members, ",");
  EXPECT_EQ(NormalizeTracestate(thirty_two), thirty_two);
  EXPECT_EQ(NormalizeTracestate(thirty_two + ",k32=v"), "");
  // A huge header is refused without being split.
  EXPECT_EQ(NormalizeTracestate(std::string(1 << 20, ',')), "");
}

}  // namespace
}  // namespace gateway::tracing
