// Cost of counting on the hot path: one increment of a resolved counter, one histogram
// observation, alone and from several threads on the same series (sharded cells), against
// one plain shared atomic as the baseline, and resolving a series by its labels (what the
// hot path avoids).

#include <atomic>

#include "benchmark/benchmark.h"
#include "gateway/metrics/metrics.h"

namespace gateway::metrics {
namespace {

MetricRegistry& Registry() {
  static MetricRegistry* registry = new MetricRegistry();
  return *registry;
}

void BM_CounterIncrement(benchmark::State& state) {
  static Counter* counter =
      Registry().AddCounter("bench_calls_total", "Calls.", {"method"}).Get({"/pkg.Svc/M"});
  for (auto _ : state) counter->Increment();
  benchmark::DoNotOptimize(counter->Value());
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2)->Threads(4);

void BM_SharedAtomicBaseline(benchmark::State& state) {
  static std::atomic<uint64_t> shared{0};
  for (auto _ : state) shared.fetch_add(1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(shared.load());
}
BENCHMARK(BM_SharedAtomicBaseline)->Threads(1)->Threads(2)->Threads(4);

void BM_HistogramObserve(benchmark::State& state) {
  static Histogram* histogram = Registry()
                                    .AddHistogram("bench_duration_seconds", "Duration.",
                                                  {"method"}, LatencyBuckets())
                                    .Get({"/pkg.Svc/M"});
  double v = 0.0003;
  for (auto _ : state) {
    histogram->Observe(v);
    v = v < 1 ? v * 1.7 : 0.0003;
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->Threads(4);

void BM_ResolveByLabels(benchmark::State& state) {
  Family<Counter>& family = Registry().AddCounter("bench_resolve_total", "Calls.", {"method"});
  for (auto _ : state) family.Get({"/pkg.Svc/M"})->Increment();
}
BENCHMARK(BM_ResolveByLabels);

}  // namespace
}  // namespace gateway::metrics
