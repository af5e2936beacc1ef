#include "gateway/registry/admin_tokens.h"

#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

// sha256("team-secret") and sha256("root-secret").
const std::string kTeamDigest = Sha256Hex("team-secret");
const std::string kRootDigest = Sha256Hex("root-secret");

TEST(Sha256Hex, MatchesTheKnownDigest) {
  EXPECT_EQ(Sha256Hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
}

TEST(AdminTokens, FindsTheCallerByTheTokensDigest) {
  const std::string text = "tokens:\n"
                           "  - sha256: " + kTeamDigest + "\n"
                           "    owner: payments\n"
                           "    role: team\n"
                           "    packages: [payments]\n"
                           "    path_prefixes: [/v1/payments]\n"
                           "  - sha256: " + kRootDigest + "\n"
                           "    owner: platform\n"
                           "    role: admin\n";
  absl::StatusOr<std::shared_ptr<const AdminTokens>> tokens = AdminTokens::Parse(text, "t.yaml");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)->size(), 2u);
  const AdminCaller* team = (*tokens)->Find("team-secret");
  ASSERT_NE(team, nullptr);
  EXPECT_EQ(team->owner, "payments");
  EXPECT_FALSE(team->admin);
  EXPECT_EQ(team->packages, std::vector<std::string>{"payments"});
  EXPECT_EQ(team->path_prefixes, std::vector<std::string>{"/v1/payments"});
  EXPECT_EQ(team->who, "payments (sha256:" + kTeamDigest.substr(0, 8) + ")");
  const AdminCaller* root = (*tokens)->Find("root-secret");
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->admin);
  EXPECT_EQ((*tokens)->Find("team-secret "), nullptr);
  EXPECT_EQ((*tokens)->Find(kTeamDigest), nullptr);  // the digest is not the token
}

TEST(AdminTokens, UpperCaseDigestsAreAccepted) {
  std::string upper = kTeamDigest;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  absl::StatusOr<std::shared_ptr<const AdminTokens>> tokens = AdminTokens::Parse(
      "tokens:\n  - {sha256: " + upper + ", owner: a, role: admin}\n", "t.yaml");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_NE((*tokens)->Find("team-secret"), nullptr);
}

void ExpectRefused(const std::string& text, const std::string& message) {
  absl::StatusOr<std::shared_ptr<const AdminTokens>> tokens = AdminTokens::Parse(text, "t.yaml");
  ASSERT_FALSE(tokens.ok()) << text;
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(tokens.status().message(), message);
}

TEST(AdminTokens, BadEntriesAreRefusedNamingTheKey) {
  ExpectRefused("tokens:\n  - {sha256: abc, owner: a, role: admin}\n",
                "t.yaml: tokens[0].sha256: required: the token's SHA-256 digest as 64 hex digits");
  ExpectRefused("tokens:\n  - {sha256: " + kTeamDigest + ", role: admin}\n",
                "t.yaml: tokens[0].owner: required");
  ExpectRefused("tokens:\n  - {sha256: " + kTeamDigest + ", owner: a, role: root}\n",
                "t.yaml: tokens[0].role: \"root\" is not admin or team");
  ExpectRefused("tokens:\n  - {sha256: " + kTeamDigest + ", owner: a, role: team}\n",
                "t.yaml: tokens[0].packages: required for role team (the packages the team "
                "may register in)");
  ExpectRefused("tokens:\n  - {sha256: " + kTeamDigest +
                    ", owner: a, role: team, packages: [a], path_prefixes: [v1/a]}\n",
                "t.yaml: tokens[0].path_prefixes[0]: \"v1/a\" does not start with \"/\"");
  ExpectRefused("tokens:\n  - {sha256: " + kTeamDigest + ", owner: a, role: admin, token: x}\n",
                "t.yaml: tokens[0].token: unknown key (known: sha256, owner, role, packages, "
                "path_prefixes)");
  ExpectRefused("tokens:\n  - {sha256: " + kTeamDigest + ", owner: a, role: admin}\n" +
                    "  - {sha256: " + kTeamDigest + ", owner: b, role: admin}\n",
                "t.yaml: tokens[1].sha256: listed twice");
  ExpectRefused("users: []\n", "t.yaml: users: unknown key (known: tokens)");
}

TEST(PackageAllowed, CoversThePackageAndItsSubpackagesOnly) {
  const std::vector<std::string> allowed = {"payments"};
  EXPECT_TRUE(PackageAllowed("payments", allowed));
  EXPECT_TRUE(PackageAllowed("payments.v1", allowed));
  EXPECT_FALSE(PackageAllowed("paymentsx.v1", allowed));
  EXPECT_FALSE(PackageAllowed("billing.v1", allowed));
  EXPECT_FALSE(PackageAllowed("", allowed));
}

TEST(PathAllowed, CoversThePrefixAtSegmentBoundaries) {
  const std::vector<std::string> prefixes = {"/v1/payments"};
  EXPECT_TRUE(PathAllowed("/v1/payments", prefixes));
  EXPECT_TRUE(PathAllowed("/v1/payments/{id}", prefixes));
  EXPECT_TRUE(PathAllowed("/v1/payments:search", prefixes));
  EXPECT_FALSE(PathAllowed("/v1/paymentsx", prefixes));
  EXPECT_FALSE(PathAllowed("/v1/{name=payments/*}", prefixes));
  EXPECT_FALSE(PathAllowed("/v1/payments", {}));
  EXPECT_TRUE(PathAllowed("/v1/paymentsx", {"/v1/"}));
}

}  // namespace
}  // namespace gateway::registry
