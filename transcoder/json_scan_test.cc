#include "transcoder/json_scan.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::transcoder {
namespace {

struct DocCase {
  std::string json;
  std::string error;  // "" when valid
};

class CheckJsonDocumentTest : public ::testing::TestWithParam<DocCase> {};

TEST_P(CheckJsonDocumentTest, AcceptsOrNamesTheByte) {
  absl::Status s = CheckJsonDocument(GetParam().json, 4);
  if (GetParam().error.empty()) {
    EXPECT_TRUE(s.ok()) << GetParam().json << ": " << s;
  } else {
    EXPECT_EQ(s.message(), GetParam().error) << GetParam().json;
  }
}

INSTANTIATE_TEST_SUITE_P(
    JsonScan, CheckJsonDocumentTest,
    ::testing::Values(
        DocCase{"{}", ""}, DocCase{" [ ] ", ""}, DocCase{"1", ""}, DocCase{"\"s\"", ""},
        DocCase{"null", ""}, DocCase{"{\"a\":[1,{\"b\":null}]}", ""},
        DocCase{"[[[[1]]]]", ""},
        DocCase{"[[[[[1]]]]]", "invalid JSON at byte 4: nesting deeper than 4"},
        DocCase{"", "invalid JSON at byte 0: unexpected end of input"},
        DocCase{"{", "invalid JSON at byte 1: expected a key"},
        DocCase{"{\"a\"}", "invalid JSON at byte 4: expected ':'"},
        DocCase{"{\"a\":1,}", "invalid JSON at byte 7: expected a key"},
        DocCase{"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"},
        DocCase{"{\"a\":1 \"b\":2}", "invalid JSON at byte 7: expected ',' or '}'"},
        DocCase{"[1}", "invalid JSON at byte 2: expected ',' or ']'"},
        DocCase{"tru", "invalid JSON at byte 0: expected a value"},
        DocCase{"\"abc", "invalid JSON at byte 0: unterminated string"},
        DocCase{"\"a\\", "invalid JSON at byte 0: unterminated string"},
        DocCase{"{} {}", "invalid JSON at byte 3: unexpected data after the JSON value"},
        DocCase{"{\"a\":1,\"a\":2}", "invalid JSON at byte 7: duplicate key \"a\""},
        DocCase{"{\"a\":{\"a\":1},\"b\":{\"a\":2}}", ""}));

TEST(ForEachJsonMember, YieldsUnescapedKeysAndRawValues) {
  std::vector<std::string> seen;
  absl::Status s = ForEachJsonMember(
      R"( {"a\u0062":[1, 2], "c" : {"d":"}"} ,"e":null} )",
      [&](absl::string_view k, absl::string_view v) {
        seen.push_back(std::string(k) + "=" + std::string(v));
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_THAT(seen, ::testing::ElementsAre("ab=[1, 2]", "c={\"d\":\"}\"}", "e=null"));
  EXPECT_FALSE(ForEachJsonMember("[1]", [](absl::string_view, absl::string_view) {}).ok());
}

TEST(ForEachJsonElement, YieldsRawElements) {
  std::vector<std::string> seen;
  ASSERT_TRUE(ForEachJsonElement(R"([1, "a,b", {"x":[2]}])", [&](absl::string_view e) {
                seen.emplace_back(e);
              }).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre("1", "\"a,b\"", "{\"x\":[2]}"));
}

TEST(AppendJsonString, EscapesAndRepairsUtf8) {
  std::string out;
  AppendJsonString("\"\\\b\f\n\r\t\x1f\xc3\xa9\xff\xed\xa0\x80", &out);
  EXPECT_EQ(out,
            "\"\\\"\\\\\\b\\f\\n\\r\\t\\u001f\xc3\xa9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
            "\xEF\xBF\xBD\"");
}

TEST(IsValidUtf8, RejectsOverlongsSurrogatesAndTruncation) {
  EXPECT_TRUE(IsValidUtf8("plain \xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace gateway::transcoder
