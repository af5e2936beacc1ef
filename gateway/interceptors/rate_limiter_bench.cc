// Cost of one local quota check (target: under 200 ns).

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "gateway/interceptors/rate_limiter.h"

namespace gateway {
namespace {

void BM_CheckOneHotKey(benchmark::State& state) {
  RateLimiter limiter({.requests = 1000000000, .period = absl::Seconds(1), .burst = 1000000});
  const absl::Time now = absl::Now();
  for (auto _ : state) benchmark::DoNotOptimize(limiter.Check("caller-42", now));
}
BENCHMARK(BM_CheckOneHotKey);

void BM_CheckManyKeys(benchmark::State& state) {
  RateLimiter limiter({.requests = 1000000000, .period = absl::Seconds(1), .burst = 1000000});
  std::vector<std::string> keys;
  for (int i = 0; i < state.range(0); ++i) keys.push_back(absl::StrCat("caller-", i));
  const absl::Time now = absl::Now();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.Check(keys[i], now));
    if (++i == keys.size()) i = 0;
  }
}
BENCHMARK(BM_CheckManyKeys)->Arg(1000)->Arg(100000);

void BM_CheckContended(benchmark::State& state) {
  static RateLimiter* limiter = new RateLimiter(
      {.requests = 1000000000, .period = absl::Seconds(1), .burst = 1000000});
  const std::string key = absl::StrCat("caller-", state.thread_index());
  const absl::Time now = absl::Now();
  for (auto _ : state) benchmark::DoNotOptimize(limiter->Check(key, now));
}
BENCHMARK(BM_CheckContended)->Threads(2);

}  // namespace
}  // namespace gateway
