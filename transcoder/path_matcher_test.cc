#include "transcoder/path_matcher.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "transcoder/percent_encoding.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;

struct Route {
  std::string method;
  std::string tmpl;
};

// Route ids are indexes into kRoutes.
const std::vector<Route>& Routes() {
  static const auto* routes = new std::vector<Route>{
      {"GET", "/v1/shelves"},                              // 0
      {"GET", "/v1/shelves/{shelf}"},                      // 1
      {"GET", "/v1/shelves/{shelf}/books"},                // 2
      {"GET", "/v1/shelves/{shelf}/books/{book}"},         // 3
      {"POST", "/v1/shelves/{shelf}/books"},               // 4
      {"DELETE", "/v1/shelves/{shelf}/books/{book}"},      // 5
      {"PATCH", "/v1/shelves/{shelf}/books/{book.id}"},    // 6
      {"POST", "/v1/shelves/{shelf}/books/{book}:move"},   // 7
      {"GET", "/v1/shelves/special"},                      // 8
      {"GET", "/v1/{name=projects/*/files/**}"},           // 9
      {"GET", "/v1/{name=rooms/*/messages/*}"},            // 10
      {"GET", "/v2/**"},                                   // 11
      {"GET", "/v2/literal/x"},                            // 12
      {"GET", "/v1/books:search"},                         // 13
      {"GET", "/v1/books"},                                // 14
      {"HEAD", "/v1/shelves/{shelf}"},                     // 15
      {"GET", "/"},                                        // 16
      {"GET", "/v3/*/a"},                                  // 17
      {"GET", "/v3/b/c"},                                  // 18
      {"GET", "/v1/files/{path=**}:download"},             // 19
      {"PUT", "/v1/{a}/{b}/{c}"},                          // 20
      {"GET", "/v4/{x}:custom"},                           // 21
      {"GET", "/v4/{x}"},                                  // 22
      {"POST", "/v1/items/{id}:cancel"},                   // 23
      {"POST", "/v1/items/{id}:undelete"},                 // 24
  };
  return *routes;
}

std::unique_ptr<const PathMatcher> BuildMatcher() {
  PathMatcherBuilder builder;
  for (size_t i = 0; i < Routes().size(); ++i) {
    absl::StatusOr<HttpTemplate> t = ParseHttpTemplate(Routes()[i].tmpl);
    EXPECT_TRUE(t.ok()) << Routes()[i].tmpl;
    absl::Status s = builder.Add(Routes()[i].method, *t, static_cast<int>(i), Routes()[i].tmpl);
    EXPECT_TRUE(s.ok()) << s;
  }
  return std::move(builder).Build();
}

struct MatchCase {
  std::string method;
  std::string path;
  int route;             // -1: NOT_FOUND
  std::string bindings;  // joined with "|"
};

class PathMatcherTableTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(PathMatcherTableTest, MatchesExpectedRouteAndBindings) {
  static const PathMatcher* matcher = BuildMatcher().release();
  const MatchCase& c = GetParam();
  absl::StatusOr<PathMatch> m = matcher->Match(c.method, c.path);
  if (c.route < 0) {
    ASSERT_FALSE(m.ok()) << c.method << " " << c.path << " matched route " << m->route_id;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(std::string(m.status().message()), HasSubstr("no route for " + c.method));
    return;
  }
  ASSERT_TRUE(m.ok()) << c.method << " " << c.path << ": " << m.status();
  EXPECT_EQ(m->route_id, c.route) << c.method << " " << c.path;
  EXPECT_EQ(absl::StrJoin(m->bindings, "|"), c.bindings) << c.method << " " << c.path;
}

INSTANTIATE_TEST_SUITE_P(
    PathMatcher, PathMatcherTableTest,
    ::testing::Values(
        MatchCase{"GET", "/v1/shelves", 0, ""},
        MatchCase{"GET", "/v1/shelves/1", 1, "1"},
        MatchCase{"GET", "/v1/shelves/1/books", 2, "1"},
        MatchCase{"GET", "/v1/shelves/1/books/2", 3, "1|2"},
        MatchCase{"POST", "/v1/shelves/1/books", 4, "1"},
        MatchCase{"DELETE", "/v1/shelves/1/books/2", 5, "1|2"},
        MatchCase{"PATCH", "/v1/shelves/1/books/2", 6, "1|2"},
        MatchCase{"POST", "/v1/shelves/1/books/2:move", 7, "1|2"},
        // Literal beats wildcard.
        MatchCase{"GET", "/v1/shelves/special", 8, ""},
        MatchCase{"GET", "/v1/shelves/specials", 1, "specials"},
        // Multi-segment variables.
        MatchCase{"GET", "/v1/projects/p1/files/a/b/c", 9, "projects/p1/files/a/b/c"},
        MatchCase{"GET", "/v1/projects/p1/files", 9, "projects/p1/files"},
        MatchCase{"GET", "/v1/rooms/r1/messages/m1", 10, "rooms/r1/messages/m1"},
        MatchCase{"GET", "/v1/rooms/r1/messages", -1, ""},
        MatchCase{"GET", "/v1/rooms/r1/messages/m1/x", -1, ""},
        MatchCase{"GET", "/v2/anything/at/all", 11, ""},
        MatchCase{"GET", "/v2", 11, ""},
        MatchCase{"GET", "/v2/literal/x", 12, ""},
        MatchCase{"GET", "/v2/literal/y", 11, ""},
        MatchCase{"GET", "/v2/literal/x/y", 11, ""},
        // Verbs.
        MatchCase{"GET", "/v1/books:search", 13, ""},
        MatchCase{"GET", "/v1/books", 14, ""},
        MatchCase{"GET", "/v1/books:other", -1, ""},
        MatchCase{"POST", "/v1/shelves/1/books/2:copy", -1, ""},
        MatchCase{"GET", "/v1/files/a/b:download", 19, "a/b"},
        MatchCase{"GET", "/v4/abc:custom", 21, "abc"},
        // Without a matching verb the whole segment is the value.
        MatchCase{"GET", "/v4/abc:other", 22, "abc:other"},
        MatchCase{"GET", "/v4/abc", 22, "abc"},
        MatchCase{"POST", "/v1/items/7:cancel", 23, "7"},
        MatchCase{"POST", "/v1/items/7:undelete", 24, "7"},
        // Methods.
        MatchCase{"HEAD", "/v1/shelves/9", 15, "9"},
        MatchCase{"PUT", "/v1/shelves/9", -1, ""},
        MatchCase{"get", "/v1/shelves", -1, ""},
        MatchCase{"POST", "/v1/shelves", -1, ""},
        MatchCase{"PUT", "/v1/x/y/z", 20, "x|y|z"},
        // Root.
        MatchCase{"GET", "/", 16, ""},
        MatchCase{"GET", "", 16, ""},
        // Backtracking: the literal branch fails deeper, the wildcard wins.
        MatchCase{"GET", "/v3/b/a", 17, ""},
        MatchCase{"GET", "/v3/b/c", 18, ""},
        MatchCase{"GET", "/v3/q/a", 17, ""},
        // Query and fragment are ignored.
        MatchCase{"GET", "/v1/shelves/1?x=y", 1, "1"},
        MatchCase{"GET", "/v1/shelves/1#frag", 1, "1"},
        // Trailing slash and empty segments match nothing.
        MatchCase{"GET", "/v1/shelves/", -1, ""},
        MatchCase{"GET", "/v1//shelves", -1, ""},
        MatchCase{"GET", "/v1/shelves//books", -1, ""},
        // Percent-decoding: single-segment variables decode everything.
        MatchCase{"GET", "/v1/shelves/a%20b", 1, "a b"},
        MatchCase{"GET", "/v1/shelves/a%2Fb", 1, "a/b"},
        MatchCase{"GET", "/v1/shelves/a%2fb", 1, "a/b"},
        MatchCase{"GET", "/v1/shelves/%E2%82%AC", 1, "\xE2\x82\xAC"},
        MatchCase{"GET", "/v1/shelves/100%25", 1, "100%"},
        MatchCase{"GET", "/v1/shelves/%zz", 1, "%zz"},
        MatchCase{"GET", "/v1/shelves/%4", 1, "%4"},
        MatchCase{"GET", "/v1/shelves/a+b", 1, "a+b"},
        // Multi-segment variables keep %2F encoded.
        MatchCase{"GET", "/v1/projects/p%2F1/files/a%2Fb", 9, "projects/p%2F1/files/a%2Fb"},
        MatchCase{"GET", "/v1/projects/p%201/files/x", 9, "projects/p 1/files/x"},
        // Hostile: dot segments and NUL are data, not navigation.
        MatchCase{"GET", "/v1/shelves/..", 1, ".."},
        MatchCase{"GET", "/v1/shelves/../books", 2, ".."},
        MatchCase{"GET", "/v1/shelves/.", 1, "."},
        MatchCase{"GET", "/v1/shelves/%00", 1, std::string("\0", 1)},
        MatchCase{"GET", "/v1/shelves/%2e%2e", 1, ".."},
        MatchCase{"GET", "/v1/projects/../files/..", 9, "projects/../files/.."},
        MatchCase{"GET", "/nope", -1, ""},
        MatchCase{"GET", "/v1", -1, ""}));

TEST(PathMatcher, DoubleWildcardBindsRemainingPath) {
  PathMatcherBuilder builder;
  ASSERT_TRUE(builder.Add("GET", *ParseHttpTemplate("/files/{path=**}"), 1, "files").ok());
  std::unique_ptr<const PathMatcher> m = std::move(builder).Build();
  absl::StatusOr<PathMatch> r = m->Match("GET", "/files/a/b/c.txt");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bindings, std::vector<std::string>{"a/b/c.txt"});
}

TEST(PathMatcher, ConflictingRulesAreReportedNamingBoth) {
  PathMatcherBuilder builder;
  ASSERT_TRUE(builder.Add("GET", *ParseHttpTemplate("/v1/{a}"), 1, "pkg.S.First").ok());
  absl::Status s = builder.Add("GET", *ParseHttpTemplate("/v1/{b}"), 2, "pkg.S.Second");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "conflicting HTTP rules: pkg.S.Second and pkg.S.First both match GET /v1/*");
}

TEST(PathMatcher, SameTemplateWithDifferentMethodOrVerbDoesNotConflict) {
  PathMatcherBuilder builder;
  EXPECT_TRUE(builder.Add("GET", *ParseHttpTemplate("/v1/{a}"), 1, "a").ok());
  EXPECT_TRUE(builder.Add("POST", *ParseHttpTemplate("/v1/{a}"), 2, "b").ok());
  EXPECT_TRUE(builder.Add("GET", *ParseHttpTemplate("/v1/{a}:x"), 3, "c").ok());
  EXPECT_TRUE(builder.Add("GET", *ParseHttpTemplate("/v1/lit"), 4, "d").ok());
}

TEST(PathMatcher, ManyRoutesStillMatchEachOne) {
  PathMatcherBuilder builder;
  for (int i = 0; i < 10000; ++i) {
    std::string t = "/api/v" + std::to_string(i % 10) + "/res" + std::to_string(i) + "/{id}";
    ASSERT_TRUE(builder.Add("GET", *ParseHttpTemplate(t), i, t).ok());
  }
  std::unique_ptr<const PathMatcher> m = std::move(builder).Build();
  EXPECT_EQ(m->size(), 10000u);
  for (int i : {0, 1, 4999, 9999}) {
    absl::StatusOr<PathMatch> r = m->Match(
        "GET", "/api/v" + std::to_string(i % 10) + "/res" + std::to_string(i) + "/x");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->route_id, i);
  }
}

TEST(PathMatcher, HostileLongPathDoesNotCrash) {
  std::unique_ptr<const PathMatcher> m = BuildMatcher();
  std::string path;
  for (int i = 0; i < 100000; ++i) path += "/a";
  EXPECT_EQ(m->Match("GET", path).status().code(), absl::StatusCode::kNotFound);
  std::string big = "/v1/shelves/" + std::string(10 << 20, 'x');
  absl::StatusOr<PathMatch> r = m->Match("GET", big);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bindings[0].size(), 10u << 20);
}

TEST(PercentDecode, PlusIsSpaceOnlyInQueryMode) {
  EXPECT_EQ(PercentDecode("a+b%2B", PercentDecodeMode::kQueryPlusAsSpace), "a b+");
  EXPECT_EQ(PercentDecode("a+b%2B", PercentDecodeMode::kAll), "a+b+");
  EXPECT_EQ(PercentDecode("%2F%2f%41", PercentDecodeMode::kKeepSlash), "%2F%2fA");
  EXPECT_EQ(PercentDecode("%", PercentDecodeMode::kAll), "%");
  EXPECT_EQ(PercentDecode("%%41", PercentDecodeMode::kAll), "%A");
}

}  // namespace
}  // namespace gateway::transcoder
