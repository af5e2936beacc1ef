#include "transcoder/http_template.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;

// A compact description of a parsed template: its shape plus each variable as
// "field.path[start,end)" (with "+" for multi-segment variables).
std::string Describe(const HttpTemplate& t) {
  std::vector<std::string> vars;
  for (const HttpTemplate::Variable& v : t.variables) {
    vars.push_back(absl::StrJoin(v.field_path, ".") + "[" + std::to_string(v.start_segment) +
                   "," + std::to_string(v.end_segment) + ")" + (v.multi_segment ? "+" : ""));
  }
  return t.Shape() + " " + absl::StrJoin(vars, " ");
}

struct ValidCase {
  std::string text;
  std::string expected;
};

class ValidTemplateTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ValidTemplateTest, ParsesToExpectedShapeAndVariables) {
  absl::StatusOr<HttpTemplate> t = ParseHttpTemplate(GetParam().text);
  ASSERT_TRUE(t.ok()) << GetParam().text << ": " << t.status();
  EXPECT_EQ(Describe(*t), GetParam().expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    HttpTemplate, ValidTemplateTest,
    ::testing::Values(
        ValidCase{"/", "/ "},
        ValidCase{"/v1", "/v1 "},
        ValidCase{"/v1/shelves", "/v1/shelves "},
        ValidCase{"/v1/*", "/v1/* "},
        ValidCase{"/v1/**", "/v1/** "},
        ValidCase{"/**", "/** "},
        ValidCase{"/*", "/* "},
        ValidCase{"/v1/*/books/*", "/v1/*/books/* "},
        ValidCase{"/v1/{shelf}", "/v1/* shelf[1,2)"},
        ValidCase{"/v1/shelves/{shelf}/books/{book}",
                  "/v1/shelves/*/books/* shelf[2,3) book[4,5)"},
        ValidCase{"/v1/{book.id}", "/v1/* book.id[1,2)"},
        ValidCase{"/v1/{a.b.c.d}", "/v1/* a.b.c.d[1,2)"},
        ValidCase{"/v1/{name=shelves/*}", "/v1/shelves/* name[1,3)+"},
        ValidCase{"/v1/{name=shelves/*/books/*}", "/v1/shelves/*/books/* name[1,5)+"},
        ValidCase{"/v1/{name=*}", "/v1/* name[1,2)"},
        ValidCase{"/v1/{name=**}", "/v1/** name[1,2)+"},
        ValidCase{"/v1/{name=files/**}", "/v1/files/** name[1,3)+"},
        ValidCase{"/v1/{name=shelves/*}/books", "/v1/shelves/*/books name[1,3)+"},
        ValidCase{"/v1/{name=literal}", "/v1/literal name[1,2)"},
        ValidCase{"/v1/{_x}", "/v1/* _x[1,2)"},
        ValidCase{"/v1/{a1_b2}", "/v1/* a1_b2[1,2)"},
        ValidCase{"/v1/books:search", "/v1/books:search "},
        ValidCase{"/v1/{name}:get", "/v1/*:get name[1,2)"},
        ValidCase{"/v1/{name=shelves/*}:move", "/v1/shelves/*:move name[1,3)+"},
        ValidCase{"/v1/*:verb", "/v1/*:verb "},
        ValidCase{"/v1/**:verb", "/v1/**:verb "},
        ValidCase{"/v1/{path=**}:download", "/v1/**:download path[1,2)+"},
        ValidCase{"/v1/a:b/c", "/v1/a:b/c "},
        ValidCase{"/v1/:a/b", "/v1/:a/b "},
        ValidCase{"/v1/a-b_c.d~e", "/v1/a-b_c.d~e "},
        ValidCase{"/v1/a%20b", "/v1/a%20b "},
        ValidCase{"/v1/$ref", "/v1/$ref "},
        ValidCase{"/v1/it's", "/v1/it's "},
        ValidCase{"/v1/a@b", "/v1/a@b "},
        ValidCase{"/v1/a+b", "/v1/a+b "},
        ValidCase{"/v1/x:a:b", "/v1/x:a:b "},
        ValidCase{"/v1/{a}/{b}/{c}", "/v1/*/*/* a[1,2) b[2,3) c[3,4)"},
        ValidCase{"/v1/{a}/x/{b=y/*}", "/v1/*/x/y/* a[1,2) b[3,5)+"},
        ValidCase{"/{a}", "/* a[0,1)"},
        ValidCase{"/v1/{a=*}/{b=**}", "/v1/*/** a[1,2) b[2,3)+"},
        ValidCase{"/v1/shelves/{shelf}/books/{book}:move",
                  "/v1/shelves/*/books/*:move shelf[2,3) book[4,5)"}));

struct InvalidCase {
  std::string text;
  std::string error;  // expected substring of the message
};

class InvalidTemplateTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidTemplateTest, IsRejectedWithPositionAndReason) {
  absl::StatusOr<HttpTemplate> t = ParseHttpTemplate(GetParam().text);
  ASSERT_FALSE(t.ok()) << GetParam().text << " parsed as " << Describe(*t);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(GetParam().error))
      << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    HttpTemplate, InvalidTemplateTest,
    ::testing::Values(
        InvalidCase{"", "position 0: a template must start with '/'"},
        InvalidCase{"v1/books", "position 0: a template must start with '/'"},
        InvalidCase{"//", "position 1: empty segment"},
        InvalidCase{"/v1//books", "position 4: empty segment"},
        InvalidCase{"/v1/", "position 4: empty segment"},
        InvalidCase{"/v1/**/books", "position 4: '**' must be the last segment"},
        InvalidCase{"/**/x", "position 1: '**' must be the last segment"},
        InvalidCase{"/v1/{name=**}/x", "position 10: '**' must be the last segment"},
        InvalidCase{"/v1/{a={b}}", "position 7: nested variable"},
        InvalidCase{"/v1/{{a}}", "position 5: nested variable"},
        InvalidCase{"/v1/{name", "position 4: unbalanced '{'"},
        InvalidCase{"/v1/{name=shelves/*", "position 4: unbalanced '{'"},
        InvalidCase{"/v1/name}", "position 8: unbalanced '}'"},
        InvalidCase{"/v1/}", "position 4: unbalanced '}'"},
        InvalidCase{"/v1/{}", "position 5: expected a field name"},
        InvalidCase{"/v1/{1a}", "position 5: expected a field name"},
        InvalidCase{"/v1/{a.}", "position 7: expected a field name"},
        InvalidCase{"/v1/{a..b}", "position 7: expected a field name"},
        InvalidCase{"/v1/{a=}", "position 7: empty segment"},
        InvalidCase{"/v1/{a=x//y}", "position 9: empty segment"},
        InvalidCase{"/v1/{a}/{a}", "position 8: field 'a' is bound twice"},
        InvalidCase{"/v1/{a b}", "position 6: expected '}' but found ' '"},
        InvalidCase{"/v1/x{a}", "position 5: a variable must be a whole segment"},
        InvalidCase{"/v1/{a}x", "position 7: a variable must be a whole segment"},
        InvalidCase{"/v1/a*", "position 5: a wildcard must be a whole segment"},
        InvalidCase{"/v1/*a", "position 5: a wildcard must be a whole segment"},
        InvalidCase{"/v1/***", "position 6: a wildcard must be a whole segment"},
        InvalidCase{"/v1/books:", "position 10: empty verb"},
        InvalidCase{"/v1/:verb", "position 4: empty segment before the verb"},
        InvalidCase{"/v1/a b", "position 5: invalid character ' ' in a literal segment"},
        InvalidCase{"/v1/a?b", "position 5: invalid character '?' in a literal segment"},
        InvalidCase{"/v1/a#b", "position 5: invalid character '#' in a literal segment"},
        InvalidCase{"/v1/%zz", "position 4: invalid percent-encoding"},
        InvalidCase{"/v1/%4", "position 4: incomplete percent-encoding"},
        InvalidCase{"/v1/x:a{b}", "position 7: invalid character '{' in the verb"},
        InvalidCase{"/v1/{a}:", "position 8: empty verb"},
        InvalidCase{"/v1/{a=x:y}", "position 8: ':' is not allowed in a variable's pattern"},
        InvalidCase{"/v1/{a.b.c=x/*/:}/x:verb",
                    "position 15: ':' is not allowed in a variable's pattern"},
        InvalidCase{std::string("/v1/a\0b", 7),
                    "position 5: invalid character '\\000' in a literal segment"}));

TEST(HttpTemplate, VariableRecordsItsPositionForErrorMessages) {
  absl::StatusOr<HttpTemplate> t = ParseHttpTemplate("/v1/shelves/{shelf}/books/{book}");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->variables.size(), 2u);
  EXPECT_EQ(t->variables[0].position, 12);
  EXPECT_EQ(t->variables[1].position, 26);
}

TEST(HttpTemplate, ShapeIgnoresVariableNamesSoConflictsCanBeFound) {
  absl::StatusOr<HttpTemplate> a = ParseHttpTemplate("/v1/{x}/books");
  absl::StatusOr<HttpTemplate> b = ParseHttpTemplate("/v1/*/books");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Shape(), b->Shape());
}

TEST(HttpTemplate, HostileLongTemplateParsesInLinearTime) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "/a";
  absl::StatusOr<HttpTemplate> t = ParseHttpTemplate(text);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->segments.size(), 20000u);
}

}  // namespace
}  // namespace gateway::transcoder
