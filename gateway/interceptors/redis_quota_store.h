// RedisQuotaStore: the shared quota store. Several gateway instances count calls in one
// Redis server, so that a limit holds across all of them.
//
// Each check runs one Lua script atomically in Redis: the same GCRA as RateLimiter (one
// theoretical arrival time per key, expiring once the key is idle), with Redis's own clock
// (TIME) so that every instance agrees on the time. Checks are queued to a small pool of
// connections, each owned by a thread that writes every queued check at once (pipelining)
// and then reads the replies in order; the calling thread never waits for Redis.
//
// When Redis cannot be reached or does not answer within the timeout, the check's callback
// gets UNAVAILABLE (the caller decides whether to fail open or closed). A connection that
// failed is retried at most once per second; until then checks fail at once. Each
// connection connects when its thread starts and, while idle, checks Redis every 5 s (a
// PING, or a reconnection attempt), so a broken store is noticed and mended without calls.
//
// With Options::metrics it counts (see docs/config.md, "Metrics"):
//   gateway_quota_redis_checks_total                   checks answered (any outcome)
//   gateway_quota_redis_failures_total{kind}           failed checks: "connect" (no
//       connection: refused, unreachable, or waiting to retry), "timeout" (no reply in
//       time), "error" (connection lost mid-check, an error or unexpected reply)
//   gateway_quota_redis_up                             1 when the last exchange with Redis
//       (a check, a connection, an idle PING) succeeded, else 0
//   gateway_quota_redis_failure_decisions_total{decision}  calls let through
//       ("fail_open") or rejected ("fail_closed") because the store failed, as the caller
//       reports them with CountFailureDecision()
//
// Thread-safety: thread-safe. Callbacks run on the store's threads, never inline in
// Check().
//
// Example:
//   auto store = RedisQuotaStore::Create({.address = "127.0.0.1:6379"});
//   (*store)->Check("gateway:quota:rule:alice", interval, tolerance,
//                   [](absl::StatusOr<RateLimiter::Decision> d) { ... });

#ifndef GATEWAY_INTERCEPTORS_REDIS_QUOTA_STORE_H_
#define GATEWAY_INTERCEPTORS_REDIS_QUOTA_STORE_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/interceptors/rate_limiter.h"

namespace gateway {
namespace metrics {
class Counter;
class Gauge;
class MetricRegistry;
}  // namespace metrics

class RedisQuotaStore {
 public:
  struct Options {
    std::string address;  // "HOST:PORT" or "unix:/path"
    int connections = 2;
    absl::Duration timeout = absl::Milliseconds(250);
    // Where the store's metrics are counted; null: nowhere. Must outlive the store.
    metrics::MetricRegistry* metrics = nullptr;
  };

  using Callback = std::function<void(absl::StatusOr<RateLimiter::Decision>)>;

  // Starts the connection threads (connecting lazily). INVALID_ARGUMENT for an address
  // that is neither HOST:PORT nor unix:/path.
  static absl::StatusOr<std::unique_ptr<RedisQuotaStore>> Create(const Options& options);

  // Stops the threads; checks still queued get UNAVAILABLE.
  ~RedisQuotaStore();

  // Counts one call of `key` against a limit of one call per `interval` with bursts up to
  // `tolerance / interval + 1`. `done` runs once, on a store thread.
  void Check(std::string key, absl::Duration interval, absl::Duration tolerance,
             Callback done);

  const std::string& address() const { return options_.address; }

  // Counts one call that the caller let through (`fail_open`) or rejected because a check
  // failed (gateway_quota_redis_failure_decisions_total).
  void CountFailureDecision(bool fail_open) const;

  // The kinds of failed checks, as counted in gateway_quota_redis_failures_total.
  enum class FailureKind { kConnect, kTimeout, kError };

 private:
  struct Pending {
    std::string key;
    int64_t interval_us;
    int64_t tolerance_us;
    Callback done;
  };
  // Resolved series (all null without Options::metrics).
  struct Metrics {
    metrics::Counter* checks = nullptr;
    metrics::Counter* failures[3] = {};  // by FailureKind
    metrics::Gauge* up = nullptr;
    metrics::Counter* fail_open = nullptr;
    metrics::Counter* fail_closed = nullptr;
  };
  class Connection;

  explicit RedisQuotaStore(const Options& options);
  void Serve(Connection* connection);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  const Options options_;
  Metrics metrics_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::thread> threads_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_REDIS_QUOTA_STORE_H_
