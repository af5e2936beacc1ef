// RateLimiter: counts calls per key in memory with the generic cell rate algorithm (GCRA,
// the "virtual scheduling" form of a token bucket): a key may make `burst` calls at once
// and `requests` per `period` on average.
//
// Each key holds one number, its theoretical arrival time (TAT). A call at time t is
// allowed when t >= TAT - tolerance, where tolerance = (burst - 1) * interval and
// interval = period / requests; the TAT then becomes max(TAT, t) + interval. A key whose
// TAT lies in the past is indistinguishable from a new one, which is what lets idle keys
// be forgotten without changing any outcome.
//
// Memory is bounded: keys are spread over shards, each with at most max_keys / shards
// entries; a full shard first forgets idle keys (TAT in the past), then its oldest ones.
//
// Thread-safety: thread-safe; one mutex per shard.
//
// Example:
//   RateLimiter limiter({.requests = 10, .period = absl::Seconds(1), .burst = 20});
//   RateLimiter::Decision d = limiter.Check("caller-42", clock->Now());
//   if (!d.allowed) reject(d.retry_after);

#ifndef GATEWAY_INTERCEPTORS_RATE_LIMITER_H_
#define GATEWAY_INTERCEPTORS_RATE_LIMITER_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace gateway {

class RateLimiter {
 public:
  struct Limits {
    uint64_t requests = 1;                   // per period, >= 1
    absl::Duration period = absl::Seconds(1);  // > 0
    uint64_t burst = 1;                      // >= 1
    std::size_t max_keys = 100000;           // >= 1
  };

  struct Decision {
    bool allowed = false;
    // Calls the key may still make right now.
    uint64_t remaining = 0;
    // When rejected: how long until one call is allowed again.
    absl::Duration retry_after;
    // How long until the key is back to a full burst.
    absl::Duration reset_after;
  };

  explicit RateLimiter(const Limits& limits);

  // Counts one call of `key` at `now` and says whether it is allowed. A rejected call is
  // not counted.
  Decision Check(absl::string_view key, absl::Time now);

  const Limits& limits() const { return limits_; }

  // Keys currently tracked (for tests and metrics).
  std::size_t size() const;

 private:
  static constexpr int kShards = 16;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<std::string, int64_t> tat_ns ABSL_GUARDED_BY(mu);
  };
  void MakeRoom(Shard& shard, int64_t now_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const Limits limits_;
  const int64_t interval_ns_;
  const int64_t tolerance_ns_;
  const std::size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_RATE_LIMITER_H_
