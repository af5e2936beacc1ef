#include "auth/jwt_requirement.h"

#include <string>

#include "auth/jose_util.h"
#include "gtest/gtest.h"

namespace gateway::auth {
namespace {

VerifiedJwt WithClaims(absl::string_view json) {
  VerifiedJwt jwt;
  jwt.claims = *ParseJsonObject(json, "claims");
  return jwt;
}

std::shared_ptr<const JwtRequirement> Make(const JwtRequirementConfig& config) {
  auto requirement = JwtRequirement::Create(config);
  EXPECT_TRUE(requirement.ok()) << requirement.status();
  return *requirement;
}

TEST(JwtRequirement, ScopeFromSpaceSeparatedScopeClaim) {
  auto requirement = Make({{"books.write"}, {}});
  EXPECT_TRUE(requirement->Check(WithClaims(R"({"scope":"books.read books.write"})")).ok());
  absl::Status denied = requirement->Check(WithClaims(R"({"scope":"books.read books.writer"})"));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "missing scope \"books.write\"");
}

TEST(JwtRequirement, ScopeFromScpArrayOrString) {
  auto requirement = Make({{"a", "b"}, {}});
  EXPECT_TRUE(requirement->Check(WithClaims(R"({"scp":["b","a"]})")).ok());
  EXPECT_TRUE(requirement->Check(WithClaims(R"({"scp":"a b"})")).ok());
  EXPECT_EQ(requirement->Check(WithClaims(R"({"scp":["a"]})")).message(), "missing scope \"b\"");
  EXPECT_EQ(requirement->Check(WithClaims(R"({})")).message(), "missing scope \"a\"");
  EXPECT_EQ(requirement->Check(WithClaims(R"({"scope":7})")).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(JwtRequirement, ClaimEqualsValue) {
  auto requirement = Make({{}, {{"tenant", "acme"}}});
  EXPECT_TRUE(requirement->Check(WithClaims(R"({"tenant":"acme"})")).ok());
  absl::Status denied = requirement->Check(WithClaims(R"({"tenant":"other"})"));
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), "claim \"tenant\" does not have the required value");
  EXPECT_EQ(requirement->Check(WithClaims(R"({})")).message(), "claim \"tenant\" is missing");
}

TEST(JwtRequirement, NestedClaimArrayContainsValue) {
  auto requirement = Make({{}, {{"realm_access.roles", "admin"}}});
  EXPECT_TRUE(
      requirement->Check(WithClaims(R"({"realm_access":{"roles":["user","admin"]}})")).ok());
  EXPECT_EQ(requirement->Check(WithClaims(R"({"realm_access":{"roles":["user"]}})")).message(),
            "claim \"realm_access.roles\" does not have the required value");
  EXPECT_EQ(requirement->Check(WithClaims(R"({"realm_access":"admin"})")).message(),
            "claim \"realm_access.roles\" is missing");
}

TEST(JwtRequirement, NumbersAndBooleansCompareByJsonText) {
  auto requirement = Make({{}, {{"level", "3"}, {"verified", "true"}}});
  EXPECT_TRUE(requirement->Check(WithClaims(R"({"level":3,"verified":true})")).ok());
  EXPECT_FALSE(requirement->Check(WithClaims(R"({"level":3.5,"verified":true})")).ok());
  EXPECT_FALSE(requirement->Check(WithClaims(R"({"level":3,"verified":false})")).ok());
}

TEST(JwtRequirement, EmptyRequirementAcceptsAnyToken) {
  EXPECT_TRUE(Make({})->Check(WithClaims("{}")).ok());
}

TEST(JwtRequirement, RejectsBadConfig) {
  EXPECT_EQ(JwtRequirement::Create({{"a b"}, {}}).status().message(),
            "scopes[0]: a scope must be one non-empty word");
  EXPECT_EQ(JwtRequirement::Create({{""}, {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(JwtRequirement::Create({{}, {{"a..b", "x"}}}).status().message(),
            "claims[0]: name \"a..b\" must be a dotted path of non-empty names");
  EXPECT_FALSE(JwtRequirement::Create({{}, {{"", "x"}}}).ok());
}

}  // namespace
}  // namespace gateway::auth
