#include "auth/jose_util.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::auth {
namespace {

using ::testing::HasSubstr;

TEST(DecodeBase64Url, DecodesUnpaddedUrlAlphabet) {
  EXPECT_EQ(*DecodeBase64Url("eyJhIjoxfQ"), "{\"a\":1}");
  EXPECT_EQ(*DecodeBase64Url(""), "");
  EXPECT_EQ(*DecodeBase64Url("-_8"), "\xfb\xff");
}

TEST(DecodeBase64Url, RejectsPaddingAndOtherAlphabets) {
  EXPECT_EQ(DecodeBase64Url("eQ==").status().message(),
            "padding character '=' at offset 2 (base64url in JOSE is unpadded)");
  EXPECT_EQ(DecodeBase64Url("a+b/").status().message(),
            "invalid base64url character at offset 1");
  EXPECT_EQ(DecodeBase64Url("ab cd").status().message(),
            "invalid base64url character at offset 2");
  EXPECT_EQ(DecodeBase64Url("abcde").status().message(), "invalid base64url length 5");
  EXPECT_THAT(std::string(DecodeBase64Url("eR").status().message()),
              HasSubstr("non-canonical base64url"));
  EXPECT_THAT(std::string(DecodeBase64Url("eyJ").status().message()),
              HasSubstr("non-canonical base64url"));
}

TEST(EncodeBase64Url, RoundTrips) {
  for (const std::string& s : {std::string(""), std::string("\x00\xff", 2), std::string("abcd")}) {
    EXPECT_EQ(*DecodeBase64Url(EncodeBase64Url(s)), s);
  }
  EXPECT_EQ(EncodeBase64Url("\xfb\xff"), "-_8");
}

TEST(ParseJsonObject, ParsesObjects) {
  auto obj = ParseJsonObject(R"({"a":[1,"x"],"b":{"c":true}})", "doc");
  ASSERT_TRUE(obj.ok());
  EXPECT_EQ(obj->fields().at("a").list_value().values(1).string_value(), "x");
}

TEST(ParseJsonObject, RejectsNonObjectsDuplicatesAndTrailingBytes) {
  EXPECT_EQ(ParseJsonObject("[1]", "doc").status().message(), "doc is not a JSON object");
  EXPECT_THAT(std::string(ParseJsonObject(R"({"a":1,"a":2})", "doc").status().message()),
              HasSubstr("doc is not valid JSON: "));
  EXPECT_THAT(std::string(ParseJsonObject(R"({"a":1,"a":2})", "doc").status().message()),
              HasSubstr("Repeated map key"));
  EXPECT_THAT(std::string(ParseJsonObject(R"({"a":1} {})", "doc").status().message()),
              HasSubstr("doc is not valid JSON"));
  EXPECT_THAT(std::string(ParseJsonObject(R"({"a":1e999})", "doc").status().message()),
              HasSubstr("doc is not valid JSON"));
}

TEST(ParseJsonObject, ErrorDoesNotQuoteTheInput) {
  auto result = ParseJsonObject(R"({"secret-value": tru})", "doc");
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), ::testing::Not(HasSubstr("secret-value")));
}

TEST(QuoteForMessage, EscapesAndCuts) {
  EXPECT_EQ(QuoteForMessage("a\"b\n"), "\"a\\\"b\\n\"");
  EXPECT_EQ(QuoteForMessage(std::string(100, 'x'), 3), "\"xxx...\"");
}

}  // namespace
}  // namespace gateway::auth

namespace gateway::auth {
namespace {

TEST(ParseJsonObject, LimitsNesting) {
  std::string ok = "{\"a\":" + std::string(kMaxJsonDepth - 1, '[') +
                   std::string(kMaxJsonDepth - 1, ']') + "}";
  EXPECT_TRUE(ParseJsonObject(ok, "doc").ok());
  std::string deep = "{\"a\":" + std::string(kMaxJsonDepth, '[') +
                     std::string(kMaxJsonDepth, ']') + "}";
  EXPECT_EQ(ParseJsonObject(deep, "doc").status().message(),
            "doc nests arrays and objects more than 32 levels deep");
  // Brackets inside strings do not count.
  EXPECT_TRUE(ParseJsonObject("{\"a\":\"" + std::string(100, '[') + "\\\"\"}", "doc").ok());
  // A huge nesting is refused before parsing.
  EXPECT_FALSE(ParseJsonObject("{\"a\":" + std::string(1 << 20, '['), "doc").ok());
}

TEST(ParseJsonObject, DocumentsProtobufLeniency) {
  // Accepted by protobuf's parser (see jose_util.h).
  EXPECT_TRUE(ParseJsonObject("{a:'x',}", "doc").ok());
  // Refused.
  EXPECT_FALSE(ParseJsonObject("{\"a\":01}", "doc").ok());
  EXPECT_FALSE(ParseJsonObject("{\"a\":\"\xff\"}", "doc").ok());
}

}  // namespace
}  // namespace gateway::auth
