#include "gateway/registry/audit_log.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gateway/log.h"

namespace gateway::registry {
namespace {

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append(absl::StrFormat("\\u%04x", c));
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void Field(absl::string_view name, absl::string_view value, std::string* out) {
  if (out->size() > 1) out->push_back(',');
  AppendJsonString(name, out);
  out->push_back(':');
  AppendJsonString(value, out);
}

}  // namespace

std::string AuditLine(const AuditEntry& e) {
  std::string out = "{";
  Field("time", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", e.time, absl::UTCTimeZone()), &out);
  Field("who", e.who, &out);
  Field("action", e.action, &out);
  if (!e.service.empty()) Field("service", e.service, &out);
  if (e.version > 0) absl::StrAppend(&out, ",\"version\":", e.version);
  if (!e.owner.empty()) Field("owner", e.owner, &out);
  if (!e.result.empty()) Field("result", e.result, &out);
  Field("changes", e.changes, &out);
  out.push_back('}');
  return out;
}

AuditEntry ReloadAuditEntry(absl::Time time, const std::string& who, const absl::Status& status,
                            const std::string& summary) {
  AuditEntry entry;
  entry.time = time;
  entry.who = who;
  entry.action = "reload";
  entry.result = status.ok() ? "applied" : "refused";
  entry.changes = status.ok() ? summary : std::string(status.message());
  return entry;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  std::unique_ptr<AuditLog> log(new AuditLog());
  log->path_ = path;
  if (path.empty()) return log;
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin_listener.audit_log_file: cannot open ", path, ": ",
                     std::strerror(errno)));
  }
  absl::MutexLock lock(&log->mu_);
  log->file_ = f;
  return log;
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  if (file_ != nullptr) std::fclose(file_);
}

void AuditLog::Write(const AuditEntry& entry) {
  const std::string line = AuditLine(entry);
  absl::MutexLock lock(&mu_);
  if (file_ == nullptr) {
    LogLine(absl::StrCat("audit ", line));
    return;
  }
  if (std::fprintf(file_, "%s\n", line.c_str()) < 0 || std::fflush(file_) != 0) {
    LogLine(absl::StrCat("audit log ", path_, ": write failed (", std::strerror(errno),
                         "); the entry was: ", line));
  }
}

}  // namespace gateway::registry
