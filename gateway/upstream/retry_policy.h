// When a failed upstream call is tried again: the retry policy of a route (from the config's
// `retries.rules`), the backoff between attempts, the backend's pushback, and the retry
// budget. Pure functions; no I/O.
//
// The rules BackendCall applies (see backend_call.h):
//   - A call the backend certainly did not process (connect failure, refused stream, a
//     stream above a GOAWAY's last stream id) is always tried again on another connection,
//     without counting as an attempt (at most kMaxTransparentRetries times per call).
//   - Otherwise a call is tried again only while its response has not started (no
//     response headers reached the consumer), its status code is in `retry_on` (or the
//     attempt timed out by `per_try_timeout`), attempts are left (`max_attempts` counts
//     the first), the request messages sent so far are still held for replay
//     (`max_replay_bytes`), the backend did not push back, and the budget allows.
//
//   RetryPolicy policy;
//   policy.max_attempts = 3;
//   policy.retry_on = {absl::StatusCode::kUnavailable};
//   if (RetriesOn(policy, status.code())) { absl::Duration d = RetryBackoff(policy, 1, gen); }
#ifndef GATEWAY_UPSTREAM_RETRY_POLICY_H_
#define GATEWAY_UPSTREAM_RETRY_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace gateway::upstream {

inline constexpr uint32_t kMaxTransparentRetries = 3;

struct RetryPolicy {
  // Attempts in all, the first included; 1: no retries.
  uint32_t max_attempts = 1;
  // The status codes that are tried again.
  std::vector<absl::StatusCode> retry_on = {absl::StatusCode::kUnavailable};
  // Each attempt's own time limit (within the call's deadline); infinite: none.
  absl::Duration per_try_timeout = absl::InfiniteDuration();
  // The delay before retry n (n = 1, 2, ...) is random in
  // [0, min(backoff_base * 2^(n-1), backoff_max)].
  absl::Duration backoff_base = absl::Milliseconds(25);
  absl::Duration backoff_max = absl::Milliseconds(250);
  // Request bytes held for replay; a call that sends more is not tried again.
  size_t max_replay_bytes = 64 << 10;
  // Retries in flight to a backend at most this share of its calls in flight, in percent
  // (but min_retry_concurrency are always allowed).
  uint32_t budget_percent = 20;
  uint32_t min_retry_concurrency = 3;
};

// Whether `code` is one the policy tries again.
bool RetriesOn(const RetryPolicy& policy, absl::StatusCode code);

// The delay before retry number `retry` (1 for the first retry): full jitter.
absl::Duration RetryBackoff(const RetryPolicy& policy, uint32_t retry, absl::BitGenRef gen);

// The backend's `grpc-retry-pushback-ms` trailer, if any.
struct Pushback {
  bool present = false;
  // A negative or malformed value: do not try again.
  bool stop = false;
  absl::Duration delay;
};
Pushback ParsePushback(const std::vector<std::pair<std::string, std::string>>& trailers);

// Whether one more retry may start with `active_retries` retries and `active_requests`
// calls in flight to the backend.
bool BudgetAllows(const RetryPolicy& policy, int64_t active_requests, int64_t active_retries);

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_RETRY_POLICY_H_
