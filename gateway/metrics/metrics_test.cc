#include "gateway/metrics/metrics.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricRegistry, RendersCounterWithHelpTypeAndLabelsInOrder) {
  MetricRegistry registry;
  Family<Counter>& calls =
      registry.AddCounter("gateway_calls_total", "Calls finished.", {"method", "code"});
  calls.Get({"/pkg.Svc/B", "OK"})->Add(3);
  calls.Get({"/pkg.Svc/A", "UNAVAILABLE"})->Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP gateway_calls_total Calls finished.\n"
            "# TYPE gateway_calls_total counter\n"
            "gateway_calls_total{method=\"/pkg.Svc/A\",code=\"UNAVAILABLE\"} 1\n"
            "gateway_calls_total{method=\"/pkg.Svc/B\",code=\"OK\"} 3\n");
}

TEST(MetricRegistry, RendersFamiliesOrderedByNameAndEmptyFamiliesWithoutSamples) {
  MetricRegistry registry;
  registry.AddGauge("zeta", "Last.").Get({})->Set(2);
  registry.AddCounter("alpha_total", "First.", {"kind"});
  EXPECT_EQ(registry.Render(),
            "# HELP alpha_total First.\n"
            "# TYPE alpha_total counter\n"
            "# HELP zeta Last.\n"
            "# TYPE zeta gauge\n"
            "zeta 2\n");
}

TEST(MetricRegistry, RendersHistogramBucketsCumulativeWithInfSumAndCount) {
  MetricRegistry registry;
  Histogram* h = registry
                     .AddHistogram("gateway_call_duration_seconds", "Call duration.",
                                   {"method"}, {0.005, 0.1, 1})
                     .Get({"/pkg.Svc/M"});
  h->Observe(0.00390625);
  h->Observe(0.005);  // on the bound: "le" is inclusive
  h->Observe(0.25);
  h->ObserveDuration(absl::Seconds(3));
  EXPECT_EQ(registry.Render(),
            "# HELP gateway_call_duration_seconds Call duration.\n"
            "# TYPE gateway_call_duration_seconds histogram\n"
            "gateway_call_duration_seconds_bucket{method=\"/pkg.Svc/M\",le=\"0.005\"} 2\n"
            "gateway_call_duration_seconds_bucket{method=\"/pkg.Svc/M\",le=\"0.1\"} 2\n"
            "gateway_call_duration_seconds_bucket{method=\"/pkg.Svc/M\",le=\"1\"} 3\n"
            "gateway_call_duration_seconds_bucket{method=\"/pkg.Svc/M\",le=\"+Inf\"} 4\n"
            "gateway_call_duration_seconds_sum{method=\"/pkg.Svc/M\"} 3.25890625\n"
            "gateway_call_duration_seconds_count{method=\"/pkg.Svc/M\"} 4\n");
}

TEST(MetricRegistry, UnlabeledHistogramHasOnlyLeLabel) {
  MetricRegistry registry;
  registry.AddHistogram("h_seconds", "H.", {}, {1}).Get({})->Observe(2);
  EXPECT_THAT(registry.Render(), HasSubstr("h_seconds_bucket{le=\"1\"} 0\n"
                                           "h_seconds_bucket{le=\"+Inf\"} 1\n"
                                           "h_seconds_sum 2\n"
                                           "h_seconds_count 1\n"));
}

TEST(MetricRegistry, EscapesLabelValuesAndHelp) {
  MetricRegistry registry;
  registry.AddCounter("c_total", "Line one\nback\\slash \"quotes\" stay.", {"v"})
      .Get({"a\"b\\c\nd"})
      ->Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP c_total Line one\\nback\\\\slash \"quotes\" stay.\n"
            "# TYPE c_total counter\n"
            "c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricRegistry, GetReturnsTheSameSeriesForTheSameLabels) {
  MetricRegistry registry;
  Family<Counter>& family = registry.AddCounter("c_total", "C.", {"a"});
  EXPECT_EQ(family.Get({"x"}), family.Get({"x"}));
  EXPECT_NE(family.Get({"x"}), family.Get({"y"}));
  // Asking for the family again (same shape) shares it.
  EXPECT_EQ(&registry.AddCounter("c_total", "C.", {"a"}), &family);
}

TEST(MetricRegistry, CallbackSamplesAreReadAtRenderTime) {
  MetricRegistry registry;
  int services = 3;
  registry.AddCallback("gateway_route_table_services", "Services.", Type::kGauge, {},
                       [&] { return std::vector<Sample>{{{}, double(services)}}; });
  registry.AddCallback("changes_total", "Changes.", Type::kCounter, {"operation"}, [] {
    return std::vector<Sample>{{{"register"}, 2}, {{"remove"}, 0}};
  });
  EXPECT_THAT(registry.Render(), HasSubstr("gateway_route_table_services 3\n"));
  services = 5;
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr("# TYPE gateway_route_table_services gauge\n"
                              "gateway_route_table_services 5\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE changes_total counter\n"
                              "changes_total{operation=\"register\"} 2\n"
                              "changes_total{operation=\"remove\"} 0\n"));
}

TEST(MetricRegistry, GaugeSetAndAdd) {
  MetricRegistry registry;
  Gauge* g = registry.AddGauge("g", "G.").Get({});
  g->Set(1.5);
  g->Add(-0.25);
  EXPECT_DOUBLE_EQ(g->Value(), 1.25);
  EXPECT_THAT(registry.Render(), HasSubstr("\ng 1.25\n"));
}

TEST(MetricRegistryDeathTest, WrongLabelCountAborts) {
  MetricRegistry registry;
  Family<Counter>& family = registry.AddCounter("c_total", "C.", {"a", "b"});
  EXPECT_DEATH(family.Get({"only-one"}), "c_total: 1 label values for labels \\(a, b\\)");
}

TEST(MetricRegistryDeathTest, NameTakenWithAnotherShapeAborts) {
  MetricRegistry registry;
  registry.AddCounter("c_total", "C.", {"a"});
  EXPECT_DEATH(registry.AddGauge("c_total", "C.", {"a"}), "c_total: registered already");
  EXPECT_DEATH(registry.AddCounter("c_total", "C.", {"b"}), "c_total: registered already");
}

TEST(MetricRegistryDeathTest, InvalidNamesAbort) {
  MetricRegistry registry;
  EXPECT_DEATH(registry.AddCounter("9lives", "x"), "\"9lives\" is not a valid metric name");
  EXPECT_DEATH(registry.AddCounter("c_total", "x", {"le"}), "\"le\" is not a valid label");
  EXPECT_DEATH(registry.AddCounter("c_total", "x", {"a-b"}), "\"a-b\" is not a valid label");
  EXPECT_DEATH(registry.AddHistogram("h", "x", {}, {1, 1}), "strictly increasing");
}

TEST(FormatValue, IntegersShortestDoublesAndSpecials) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1795000000), "1795000000");
  EXPECT_EQ(FormatValue(1795000000.25), "1795000000.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(0.00025), "0.00025");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(1e-30), "1e-30");
  EXPECT_EQ(FormatValue(1.5e300), "1.5e+300");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
}

TEST(Concurrency, CountersAndHistogramsLoseNoIncrementAcrossThreads) {
  MetricRegistry registry;
  Family<Counter>& family = registry.AddCounter("c_total", "C.", {"t"});
  Counter* shared = family.Get({"shared"});
  Histogram* h = registry.AddHistogram("h_seconds", "H.", {}, {0.5}).Get({});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Resolving concurrently returns one series for one label set.
      Counter* mine = family.Get({t % 2 ? "odd" : "even"});
      for (int i = 0; i < kPerThread; ++i) {
        shared->Increment();
        mine->Increment();
        h->Observe(i % 2 ? 1.0 : 0.25);
      }
    });
  }
  // Rendering while the threads count must be safe (values are then in between).
  for (int i = 0; i < 20; ++i) EXPECT_THAT(registry.Render(), HasSubstr("# TYPE c_total"));
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(shared->Value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(family.Get({"odd"})->Value(), uint64_t{kThreads / 2} * kPerThread);
  EXPECT_EQ(family.Get({"even"})->Value(), uint64_t{kThreads / 2} * kPerThread);
  const Histogram::Counts counts = h->Read();
  EXPECT_EQ(counts.count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(counts.cumulative[0], uint64_t{kThreads} * kPerThread / 2);
  EXPECT_DOUBLE_EQ(counts.sum, kThreads * (kPerThread / 2) * 1.25);
  EXPECT_THAT(registry.Render(),
              HasSubstr("c_total{t=\"shared\"} 800000\n"));
}

}  // namespace
}  // namespace gateway::metrics
