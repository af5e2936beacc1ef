#include "gateway/upstream/retry_policy.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/numbers.h"

namespace gateway::upstream {

bool RetriesOn(const RetryPolicy& policy, absl::StatusCode code) {
  return std::find(policy.retry_on.begin(), policy.retry_on.end(), code) !=
         policy.retry_on.end();
}

absl::Duration RetryBackoff(const RetryPolicy& policy, uint32_t retry, absl::BitGenRef gen) {
  absl::Duration cap = policy.backoff_base;
  for (uint32_t i = 1; i < retry && cap < policy.backoff_max; ++i) cap *= 2;
  cap = std::min(cap, policy.backoff_max);
  if (cap <= absl::ZeroDuration()) return absl::ZeroDuration();
  const int64_t us = absl::ToInt64Microseconds(cap);
  return absl::Microseconds(absl::Uniform<int64_t>(absl::IntervalClosed, gen, 0, us));
}

Pushback ParsePushback(const std::vector<std::pair<std::string, std::string>>& trailers) {
  Pushback out;
  for (const auto& [key, value] : trailers) {
    if (key != "grpc-retry-pushback-ms") continue;
    out.present = true;
    int64_t ms = 0;
    if (!absl::SimpleAtoi(value, &ms) || ms < 0) {
      out.stop = true;
    } else {
      out.delay = absl::Milliseconds(ms);
    }
    break;
  }
  return out;
}

bool BudgetAllows(const RetryPolicy& policy, int64_t active_requests, int64_t active_retries) {
  const int64_t share = active_requests * static_cast<int64_t>(policy.budget_percent) / 100;
  return active_retries < std::max<int64_t>(share, policy.min_retry_concurrency);
}

}  // namespace gateway::upstream
