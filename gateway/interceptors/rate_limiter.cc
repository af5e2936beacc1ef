#include "gateway/interceptors/rate_limiter.h"

#include <algorithm>
#include <vector>

#include "absl/hash/hash.h"

namespace gateway {

RateLimiter::RateLimiter(const Limits& limits)
    : limits_(limits),
      interval_ns_(std::max<int64_t>(
          1, absl::ToInt64Nanoseconds(limits.period) /
                 static_cast<int64_t>(std::max<uint64_t>(1, limits.requests)))),
      tolerance_ns_(static_cast<int64_t>(std::max<uint64_t>(1, limits.burst) - 1) *
                    interval_ns_),
      max_per_shard_(std::max<std::size_t>(1, limits.max_keys / kShards)) {}

std::size_t RateLimiter::size() const {
  std::size_t n = 0;
  for (const Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    n += shard.tat_ns.size();
  }
  return n;
}

void RateLimiter::MakeRoom(Shard& shard, int64_t now_ns) {
  // Idle keys first: forgetting them changes no decision.
  absl::erase_if(shard.tat_ns, [now_ns](const auto& entry) { return entry.second <= now_ns; });
  if (shard.tat_ns.size() < max_per_shard_) return;
  // Still full: drop the half whose TAT is nearest (they are closest to idle).
  std::vector<int64_t> tats;
  tats.reserve(shard.tat_ns.size());
  for (const auto& entry : shard.tat_ns) tats.push_back(entry.second);
  auto middle = tats.begin() + tats.size() / 2;
  std::nth_element(tats.begin(), middle, tats.end());
  const int64_t cutoff = *middle;
  absl::erase_if(shard.tat_ns, [cutoff](const auto& entry) { return entry.second <= cutoff; });
}

RateLimiter::Decision RateLimiter::Check(absl::string_view key, absl::Time now) {
  const int64_t now_ns = absl::ToUnixNanos(now);
  Shard& shard = shards_[absl::HashOf(key) % kShards];
  Decision decision;
  absl::MutexLock lock(&shard.mu);
  auto it = shard.tat_ns.find(key);
  int64_t tat = now_ns;
  if (it != shard.tat_ns.end()) tat = std::max(it->second, now_ns);
  if (now_ns < tat - tolerance_ns_) {
    decision.allowed = false;
    decision.remaining = 0;
    decision.retry_after = absl::Nanoseconds(tat - tolerance_ns_ - now_ns);
    decision.reset_after = absl::Nanoseconds(tat - now_ns);
    return decision;
  }
  const int64_t new_tat = tat + interval_ns_;
  if (it != shard.tat_ns.end()) {
    it->second = new_tat;
  } else {
    if (shard.tat_ns.size() >= max_per_shard_) MakeRoom(shard, now_ns);
    shard.tat_ns.emplace(std::string(key), new_tat);
  }
  decision.allowed = true;
  // Calls still allowed now: those whose TAT would stay within the tolerance.
  decision.remaining =
      static_cast<uint64_t>(std::max<int64_t>(0, (now_ns + tolerance_ns_ - new_tat)) /
                            interval_ns_ + (now_ns + tolerance_ns_ >= new_tat ? 1 : 0));
  decision.reset_after = absl::Nanoseconds(new_tat - now_ns);
  return decision;
}

}  // namespace gateway
