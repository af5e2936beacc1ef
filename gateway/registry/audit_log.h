// AuditLog: one JSON line per change made through the admin API (register, remove,
// rollback, reload), appended to a file (config `admin_listener.audit_log_file`) or, without
// one, written to the process log (stderr, prefixed "gatewayd: audit ").
//
// A line names when, who (the token's owner and digest prefix, never the token), what, the
// service and version, and a summary of what changed:
//   {"time":"2026-12-06T01:02:03Z","who":"payments (sha256:9f86d081)","action":"register",
//    "service":"payments.v1.Payments","version":2,"owner":"payments",
//    "changes":"+2 methods, +1 routes, -1 routes"}
//
// Thread-safety: thread-safe (one write per line under a mutex).

#ifndef GATEWAY_REGISTRY_AUDIT_LOG_H_
#define GATEWAY_REGISTRY_AUDIT_LOG_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gateway::registry {

struct AuditEntry {
  absl::Time time;
  std::string who;
  std::string action;   // register, remove, rollback, reload
  std::string service;  // empty for reload
  int64_t version = 0;  // 0: not applicable
  std::string owner;
  std::string changes;  // diff summary
  // Set for actions that may fail and are logged either way (reload): "applied" or
  // "refused". Empty: not written (a change is only logged once it succeeded).
  std::string result;
};

// The entry of a config reload (SIGHUP: `who` is "signal"; the admin API's Reload: the
// token's audit name): result "applied" with the reload's one-line summary as `changes`, or
// "refused" with the reason.
AuditEntry ReloadAuditEntry(absl::Time time, const std::string& who, const absl::Status& status,
                            const std::string& summary);

// The JSON line of `entry` (no trailing newline).
std::string AuditLine(const AuditEntry& entry);

class AuditLog {
 public:
  // Opens `path` for appending (created when missing); an empty path logs to stderr.
  // Returns INVALID_ARGUMENT naming the path and the system's reason when it cannot be
  // opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();

  // Writes one line and flushes it. A failed write is reported on stderr.
  void Write(const AuditEntry& entry);

 private:
  AuditLog() = default;
  absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;  // null: the process log
  std::string path_;
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_AUDIT_LOG_H_
