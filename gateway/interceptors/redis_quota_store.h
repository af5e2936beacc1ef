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
// failed is retried at most once per second; until then checks fail at once.
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

class RedisQuotaStore {
 public:
  struct Options {
    std::string address;  // "HOST:PORT" or "unix:/path"
    int connections = 2;
    absl::Duration timeout = absl::Milliseconds(250);
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

 private:
  struct Pending {
    std::string key;
    int64_t interval_us;
    int64_t tolerance_us;
    Callback done;
  };
  class Connection;

  explicit RedisQuotaStore(const Options& options);
  void Serve(Connection* connection);
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  const Options options_;
  absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<std::thread> threads_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_REDIS_QUOTA_STORE_H_
