#include "gateway/registry/audit_log.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gateway/config/config_loader.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

AuditEntry Entry() {
  AuditEntry e;
  e.time = absl::FromUnixSeconds(1796000000);
  e.who = "payments (sha256:9f86d081)";
  e.action = "register";
  e.service = "payments.v1.Payments";
  e.version = 2;
  e.owner = "payments";
  e.changes = "+2 methods";
  return e;
}

TEST(AuditLine, IsOneJsonObjectWithEveryField) {
  EXPECT_EQ(AuditLine(Entry()),
            "{\"time\":\"2026-11-30T00:53:20Z\",\"who\":\"payments (sha256:9f86d081)\","
            "\"action\":\"register\",\"service\":\"payments.v1.Payments\",\"version\":2,"
            "\"owner\":\"payments\",\"changes\":\"+2 methods\"}");
}

TEST(AuditLine, EscapesQuotesAndControlCharacters) {
  AuditEntry e = Entry();
  e.action = "reload";
  e.service.clear();
  e.version = 0;
  e.owner.clear();
  e.changes = "a \"b\"\n\x01";
  EXPECT_EQ(AuditLine(e),
            "{\"time\":\"2026-11-30T00:53:20Z\",\"who\":\"payments (sha256:9f86d081)\","
            "\"action\":\"reload\",\"changes\":\"a \\\"b\\\"\\n\\u0001\"}");
}

TEST(ReloadAuditEntry, RecordsWhoTheResultAndTheSummary) {
  const absl::Time t = absl::FromUnixSeconds(1796000000);
  EXPECT_EQ(AuditLine(ReloadAuditEntry(t, "signal", absl::OkStatus(),
                                       "reload applied: 1 services (was 1)")),
            "{\"time\":\"2026-11-30T00:53:20Z\",\"who\":\"signal\",\"action\":\"reload\","
            "\"result\":\"applied\",\"changes\":\"reload applied: 1 services (was 1)\"}");
  EXPECT_EQ(AuditLine(ReloadAuditEntry(
                t, "ops (sha256:9f86d081)",
                absl::InvalidArgumentError("reload refused: backends[0].target: required"), "")),
            "{\"time\":\"2026-11-30T00:53:20Z\",\"who\":\"ops (sha256:9f86d081)\","
            "\"action\":\"reload\",\"result\":\"refused\","
            "\"changes\":\"reload refused: backends[0].target: required\"}");
}

TEST(AuditLog, AppendsOneLinePerEntry) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(tmp == nullptr ? "/tmp" : tmp) + "/audit.jsonl";
  std::remove(path.c_str());
  {
    absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->Write(Entry());
  }
  {
    absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->Write(Entry());
  }
  absl::StatusOr<std::string> text = ReadFileToString(path);
  ASSERT_TRUE(text.ok()) << text.status();
  const std::string line = AuditLine(Entry()) + "\n";
  EXPECT_EQ(*text, line + line);
}

TEST(AuditLog, AnUnwritablePathIsRefusedNamingIt) {
  absl::StatusOr<std::unique_ptr<AuditLog>> log = AuditLog::Open("/nonexistent-dir/audit.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log.status().message(),
            "admin_listener.audit_log_file: cannot open /nonexistent-dir/audit.jsonl: No such "
            "file or directory");
}

}  // namespace
}  // namespace gateway::registry
