#include "auth/api_keys.h"

#include <string>

#include "gtest/gtest.h"

namespace gateway::auth {
namespace {

// printf '%s' test | sha256sum
constexpr char kTestDigest[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
// printf '%s' other-key | sha256sum
constexpr char kOtherDigest[] =
    "580843d03d2216ff1a275d0991bad66e4d1af871171d929e9de604b7959f9bca";

std::string ParseError(absl::string_view file) {
  auto keys = ApiKeySet::Parse(file);
  if (keys.ok()) return "OK";
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(keys.status().message());
}

TEST(ApiKeySet, FindsKeyByItsDigest) {
  auto keys = ApiKeySet::Parse(std::string("# keys\n\nbilling-ui ") + kTestDigest +
                               "  # the UI\n" + "ci " + kOtherDigest + "\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ((*keys)->size(), 2u);
  const ApiKey* key = (*keys)->Find("test");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->id, "billing-ui");
  EXPECT_EQ(key->line, 3);
  auto authenticated = (*keys)->Authenticate("test");
  ASSERT_TRUE(authenticated.ok());
  EXPECT_EQ((*authenticated)->id, "billing-ui");
}

TEST(ApiKeySet, UnknownKeyIsUnauthenticated) {
  auto keys = ApiKeySet::Parse(std::string("a ") + kTestDigest);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((*keys)->Find("Test"), nullptr);
  EXPECT_EQ((*keys)->Find(kTestDigest), nullptr);  // the digest itself is not the key
  auto result = (*keys)->Authenticate("tes");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(result.status().message(), "unknown API key");
  EXPECT_EQ((*keys)->Authenticate("").status().message(), "missing API key");
  EXPECT_EQ((*keys)->Authenticate(std::string(5000, 'k')).status().message(),
            "API key too long: at most 4096 bytes");
}

TEST(ApiKeySet, AcceptsUppercaseHexTabsAndCrlf) {
  std::string upper = kTestDigest;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto keys = ApiKeySet::Parse("\tsvc@team:prod.1\t" + upper + "\r\n# end\r\n");
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_NE((*keys)->Find("test"), nullptr);
  EXPECT_EQ((*keys)->Find("test")->id, "svc@team:prod.1");
}

TEST(ApiKeySet, EmptyFileHasNoKeys) {
  auto keys = ApiKeySet::Parse("");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((*keys)->size(), 0u);
  EXPECT_EQ((*keys)->Find("test"), nullptr);
}

TEST(ApiKeySet, FormatErrorsNameTheLine) {
  EXPECT_EQ(ParseError("# c\nlonely\n"), "line 2: expected \"<id> <sha256-hex>\", found only an id");
  EXPECT_EQ(ParseError("a abc"), "line 1: digest must be 64 hex digits, found 3 characters");
  std::string bad_hex = kTestDigest;
  bad_hex[10] = 'g';
  EXPECT_EQ(ParseError("\n\na " + bad_hex), "line 3: digest must be 64 hex digits");
  EXPECT_EQ(ParseError(std::string("a ") + kTestDigest + " extra"),
            "line 1: unexpected text after the digest");
  EXPECT_EQ(ParseError(std::string("a/b ") + kTestDigest),
            "line 1: id \"a/b\" may only contain letters, digits and - _ . : @");
  EXPECT_EQ(ParseError(std::string(129, 'x') + " " + kTestDigest),
            "line 1: id is longer than 128 bytes");
}

TEST(ApiKeySet, RejectsDuplicateIdsAndDigests) {
  EXPECT_EQ(ParseError(std::string("a ") + kTestDigest + "\na " + kOtherDigest),
            "line 2: id \"a\" already defined on line 1");
  EXPECT_EQ(ParseError(std::string("a ") + kTestDigest + "\n#\nb " + kTestDigest),
            "line 3: digest already used by id \"a\" on line 1");
}

}  // namespace
}  // namespace gateway::auth
