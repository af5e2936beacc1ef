#include "gateway/http/request_checks.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::http {
namespace {

using ::testing::HasSubstr;

absl::Status Check(absl::string_view target, bool allow_encoded_slashes = false) {
  return CheckRequestTarget(target, allow_encoded_slashes).status();
}

TEST(CheckRequestTarget, SplitsPathAndQuery) {
  absl::StatusOr<RequestTarget> t = CheckRequestTarget("/v1/shelves/1/books?page_size=2", false);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->path, "/v1/shelves/1/books");
  EXPECT_EQ(t->query, "page_size=2");
}

TEST(CheckRequestTarget, AcceptsCustomVerbsAndEscapes) {
  EXPECT_TRUE(Check("/v1/shelves/1/books:stream").ok());
  EXPECT_TRUE(Check("/v1/books/a%20b").ok());
  EXPECT_TRUE(Check("/").ok());
  EXPECT_TRUE(Check("/v1/shelves/").ok());
  EXPECT_TRUE(Check("/v1/.well-known/x").ok());
  EXPECT_TRUE(Check("/v1/...").ok());
}

TEST(CheckRequestTarget, RejectsDotSegments) {
  EXPECT_THAT(Check("/v1/../admin").message(), HasSubstr("\"..\""));
  EXPECT_THAT(Check("/v1/./x").message(), HasSubstr("\".\""));
  EXPECT_THAT(Check("/v1/%2e%2E/admin").message(), HasSubstr("\"..\""));
  EXPECT_THAT(Check("/v1/.%2e").message(), HasSubstr("\"..\""));
  EXPECT_THAT(Check("/..").message(), HasSubstr("\"..\""));
}

TEST(CheckRequestTarget, RejectsEncodedNulAndSlashes) {
  EXPECT_THAT(Check("/v1/books/a%00b").message(), HasSubstr("%00"));
  EXPECT_THAT(Check("/v1/books/a%2Fb").message(), HasSubstr("%2F"));
  EXPECT_THAT(Check("/v1/books/a%2fb").message(), HasSubstr("%2F"));
  EXPECT_TRUE(Check("/v1/books/a%2Fb", /*allow_encoded_slashes=*/true).ok());
  EXPECT_THAT(Check("/v1/books/a%5Cb").message(), HasSubstr("backslash"));
  EXPECT_THAT(Check("/v1/books\\x").message(), HasSubstr("backslash"));
}

TEST(CheckRequestTarget, RejectsBadEscapes) {
  EXPECT_THAT(Check("/v1/a%").message(), HasSubstr("truncated"));
  EXPECT_THAT(Check("/v1/a%4").message(), HasSubstr("truncated"));
  EXPECT_THAT(Check("/v1/a%zz").message(), HasSubstr("invalid percent escape"));
}

TEST(CheckRequestTarget, RejectsOtherForms) {
  EXPECT_THAT(Check("http://example.com/v1").message(), HasSubstr("starting with '/'"));
  EXPECT_THAT(Check("*").message(), HasSubstr("starting with '/'"));
  EXPECT_THAT(Check("").message(), HasSubstr("starting with '/'"));
  EXPECT_THAT(Check("/v1//x").message(), HasSubstr("empty path segment"));
  EXPECT_THAT(Check("/v1/x#frag").message(), HasSubstr("fragment"));
  EXPECT_THAT(Check("/v1/\x01").message(), HasSubstr("control"));
  EXPECT_THAT(Check("/v1/\xc3\xa9").message(), HasSubstr("non-ASCII"));
}

TEST(CheckRequestTarget, QueryIsNotPathChecked) {
  absl::StatusOr<RequestTarget> t = CheckRequestTarget("/v1/x?a=../b&c=%2F", false);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->query, "a=../b&c=%2F");
}

TEST(ParseGrpcTimeout, ParsesEveryUnit) {
  EXPECT_EQ(*ParseGrpcTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(*ParseGrpcTimeout("3M"), absl::Minutes(3));
  EXPECT_EQ(*ParseGrpcTimeout("10S"), absl::Seconds(10));
  EXPECT_EQ(*ParseGrpcTimeout("250m"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseGrpcTimeout("7u"), absl::Microseconds(7));
  EXPECT_EQ(*ParseGrpcTimeout("99999999n"), absl::Nanoseconds(99999999));
}

TEST(ParseHttpTimeout, ParsesDurations) {
  EXPECT_EQ(*ParseHttpTimeout("x-request-timeout", "1.5s"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseHttpTimeout("x-request-timeout", "250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseHttpTimeout("x-request-timeout", "1m30s"), absl::Seconds(90));
  EXPECT_EQ(*ParseHttpTimeout("x-request-timeout", "2h"), absl::Hours(2));
  EXPECT_EQ(*ParseHttpTimeout("x-request-timeout", "10us"), absl::Microseconds(10));
  EXPECT_EQ(*ParseHttpTimeout("x-request-timeout", "0s"), absl::ZeroDuration());
}

TEST(ParseHttpTimeout, RejectsWhatIsNotADurationNamingTheHeader) {
  for (absl::string_view bad : {"", "1", "1.5", "-1s", "+1s", "inf", "s", "1.s", "1 s", "1S",
                                "soon", "1d", "1.5s;", "1s.", "1..5s", "99999999999999999999h",
                                "123456789012345678901234567890123s"}) {
    absl::StatusOr<absl::Duration> d = ParseHttpTimeout("x-request-timeout", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(d.status().message(), HasSubstr("x-request-timeout \""));
  }
}

TEST(ParseGrpcTimeout, RejectsMalformedValues) {
  EXPECT_THAT(ParseGrpcTimeout("").status().message(), HasSubstr("1-8 digits"));
  EXPECT_THAT(ParseGrpcTimeout("S").status().message(), HasSubstr("1-8 digits"));
  EXPECT_THAT(ParseGrpcTimeout("123456789S").status().message(), HasSubstr("1-8 digits"));
  EXPECT_THAT(ParseGrpcTimeout("10s").status().message(), HasSubstr("unit"));
  EXPECT_THAT(ParseGrpcTimeout("-1S").status().message(), HasSubstr("1-8 digits"));
  EXPECT_THAT(ParseGrpcTimeout("1 S").status().message(), HasSubstr("1-8 digits"));
}

TEST(IsValidMetadataValue, RefusesControlBytes) {
  EXPECT_TRUE(IsValidMetadataValue("abc-123 xyz"));
  EXPECT_TRUE(IsValidMetadataValue(""));
  EXPECT_FALSE(IsValidMetadataValue("a\r\nx-evil: 1"));
  EXPECT_FALSE(IsValidMetadataValue(absl::string_view("a\0b", 3)));
  EXPECT_FALSE(IsValidMetadataValue("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidMetadataValue("tab\there"));
}

}  // namespace
}  // namespace gateway::http
