#include "gateway/registry/admin_service.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

config::v1::Config WithAdmin(const std::string& address) {
  config::v1::Config config;
  config.mutable_admin_listener()->set_address(address);
  return config;
}

TEST(CompileAdminListener, DefaultsToLoopbackWithoutToken) {
  config::v1::Config config;
  config.mutable_admin_listener();
  absl::StatusOr<AdminSettings> settings = CompileAdminListener(config, "/etc/gw");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->address, "127.0.0.1:9901");
  EXPECT_EQ(settings->token, "");
  EXPECT_EQ(settings->registry_directory, "");
}

TEST(CompileAdminListener, NonLoopbackAddressRequiresAToken) {
  EXPECT_EQ(CompileAdminListener(WithAdmin("0.0.0.0:9901"), ".").status(),
            absl::InvalidArgumentError("admin_listener.token_file: required (or tokens_file) "
                                       "when the admin listener is not on loopback "
                                       "(0.0.0.0:9901)"));
}

TEST(CompileAdminListener, TokensFileIsReadAndEnoughOffLoopback) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/tokens-", ::getpid(), ".yaml");
  std::ofstream(path) << "tokens:\n  - sha256: " << Sha256Hex("team-token")
                      << "\n    owner: payments\n    role: team\n    packages: [payments]\n";
  config::v1::Config config = WithAdmin("0.0.0.0:9901");
  config.mutable_admin_listener()->set_tokens_file(path);
  config.mutable_admin_listener()->set_audit_log_file("audit.jsonl");
  absl::StatusOr<AdminSettings> settings = CompileAdminListener(config, "/var/lib/gw");
  ASSERT_TRUE(settings.ok()) << settings.status();
  ASSERT_NE(settings->tokens, nullptr);
  const AdminCaller* caller = settings->tokens->Find("team-token");
  ASSERT_NE(caller, nullptr);
  EXPECT_EQ(caller->owner, "payments");
  EXPECT_EQ(settings->audit_log_file, "/var/lib/gw/audit.jsonl");
}

TEST(CompileAdminListener, InvalidTokensFileIsRefusedNamingTheEntry) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/bad-tokens-", ::getpid(), ".yaml");
  std::ofstream(path) << "tokens:\n  - {sha256: 1234, owner: a, role: admin}\n";
  config::v1::Config config = WithAdmin("127.0.0.1:0");
  config.mutable_admin_listener()->set_tokens_file(path);
  EXPECT_EQ(CompileAdminListener(config, ".").status(),
            absl::InvalidArgumentError(absl::StrCat(
                "admin_listener.tokens_file: ", path,
                ": tokens[0].sha256: required: the token's SHA-256 digest as 64 hex digits")));
}

TEST(CompileAdminListener, TokenIsReadAndTrimmed) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";
  const std::string path = absl::StrCat(dir, "/token-", ::getpid());
  std::ofstream(path) << "  s3cret\n";
  config::v1::Config config = WithAdmin("10.0.0.1:9901");
  config.mutable_admin_listener()->set_token_file(path);
  config.mutable_admin_listener()->set_registry_directory("registry");
  absl::StatusOr<AdminSettings> settings = CompileAdminListener(config, "/var/lib/gw");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->token, "s3cret");
  EXPECT_EQ(settings->registry_directory, "/var/lib/gw/registry");
}

TEST(CompileAdminListener, EmptyTokenFileIsRefused) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/empty-", ::getpid());
  std::ofstream(path) << " \n";
  config::v1::Config config = WithAdmin("127.0.0.1:0");
  config.mutable_admin_listener()->set_token_file(path);
  EXPECT_EQ(CompileAdminListener(config, ".").status(),
            absl::InvalidArgumentError("admin_listener.token_file: the file is empty"));
}

TEST(CompileAdminListener, MalformedAddressIsRefused) {
  EXPECT_EQ(CompileAdminListener(WithAdmin("localhost"), ".").status(),
            absl::InvalidArgumentError("admin_listener.address: \"localhost\" is not HOST:PORT"));
}

TEST(CompileAdminListener, DirectoryAndRedisExcludeEachOther) {
  config::v1::Config config = WithAdmin("127.0.0.1:9901");
  config.mutable_admin_listener()->set_registry_directory("registry");
  config.mutable_admin_listener()->set_registry_redis("127.0.0.1:6379");
  EXPECT_EQ(CompileAdminListener(config, ".").status(),
            absl::InvalidArgumentError("admin_listener.registry_redis: set either "
                                       "registry_directory or registry_redis"));
}

TEST(CompileAdminListener, RedisGetsTheDefaultPrefix) {
  config::v1::Config config = WithAdmin("127.0.0.1:9901");
  config.mutable_admin_listener()->set_registry_redis("127.0.0.1:6379");
  absl::StatusOr<AdminSettings> settings = CompileAdminListener(config, ".");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->registry_redis, "127.0.0.1:6379");
  EXPECT_EQ(settings->registry_redis_prefix, "gatewayd:registry");
}

TEST(IsLoopbackAddress, RecognizesLoopbackForms) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:9901"));
  EXPECT_TRUE(IsLoopbackAddress("127.1.2.3:1"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:9901"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:9901"));
  EXPECT_TRUE(IsLoopbackAddress("unix:/run/gw.sock"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:9901"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:9901"));
  EXPECT_FALSE(IsLoopbackAddress("10.1.2.3:9901"));
}

}  // namespace
}  // namespace gateway::registry
