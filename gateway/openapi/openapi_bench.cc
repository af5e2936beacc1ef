// Time to generate the OpenAPI document of the registry benchmark's route table: 501
// services (500 registered + 1 from the config) with 10 GET routes each, 5,010 routes in
// all, the same descriptors as gateway/registry/registry_bench. The document is generated
// off the request path (once per route table, cached by OpenApiEndpoints), so this figure
// is what the first GET /openapi.json after a swap pays, not a per-request cost.
//
//   bazel build //gateway/openapi:openapi_bench && \
//   bazel-bin/gateway/openapi/openapi_bench
//
// BM_OpenApiAllServices: the document of every service (the gateway-wide /openapi.json).
// BM_OpenApiOneService: the document of one service among the 501 (/openapi/<service>.json).
// BM_RouteSetCreate: building the routes themselves, for scale.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "gateway/descriptor_sets.h"
#include "gateway/openapi/openapi.h"
#include "gateway/registry/bench_services.h"
#include "transcoder/route_set.h"

namespace gateway::openapi {
namespace {

using registry::testing::BenchServiceName;
using registry::testing::BenchServiceSet;
using registry::testing::kBenchServices;

struct Registry {
  std::shared_ptr<const google::protobuf::DescriptorPool> pool;
  std::vector<std::string> services;
  std::unique_ptr<const transcoder::RouteSet> routes;
};

// Built once: the benchmarks measure the generation alone.
const Registry& BenchRegistry() {
  static const Registry* const registry = [] {
    auto* r = new Registry;
    DescriptorSetBuilder builder;
    for (int i = 0; i <= kBenchServices; ++i) {
      absl::Status added = builder.AddSerialized(BenchServiceSet(i), BenchServiceName(i));
      if (!added.ok()) {
        std::fprintf(stderr, "service %d: %s\n", i, std::string(added.message()).c_str());
        std::abort();
      }
      r->services.push_back(BenchServiceName(i));
    }
    r->pool = *builder.Build();
    absl::StatusOr<std::unique_ptr<const transcoder::RouteSet>> routes =
        transcoder::RouteSet::Create(*r->pool, r->services);
    if (!routes.ok()) {
      std::fprintf(stderr, "routes: %s\n", std::string(routes.status().message()).c_str());
      std::abort();
    }
    r->routes = *std::move(routes);
    return r;
  }();
  return *registry;
}

void Generate(benchmark::State& state, const std::vector<std::string>& services) {
  const Registry& r = BenchRegistry();
  OpenApiOptions options;
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> doc = GenerateOpenApi(*r.routes, services, options);
    if (!doc.ok()) {
      state.SkipWithError(std::string(doc.status().message()).c_str());
      return;
    }
    bytes = doc->size();
    benchmark::DoNotOptimize(doc->data());
  }
  state.counters["routes"] = static_cast<double>(r.routes->plans().size());
  state.counters["services"] = static_cast<double>(services.empty() ? r.services.size()
                                                                    : services.size());
  state.counters["doc_bytes"] = static_cast<double>(bytes);
}

void BM_OpenApiAllServices(benchmark::State& state) { Generate(state, {}); }
BENCHMARK(BM_OpenApiAllServices)->Unit(benchmark::kMillisecond);

void BM_OpenApiOneService(benchmark::State& state) {
  Generate(state, {BenchServiceName(kBenchServices / 2)});
}
BENCHMARK(BM_OpenApiOneService)->Unit(benchmark::kMicrosecond);

void BM_RouteSetCreate(benchmark::State& state) {
  const Registry& r = BenchRegistry();
  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<const transcoder::RouteSet>> routes =
        transcoder::RouteSet::Create(*r.pool, r.services);
    if (!routes.ok()) {
      state.SkipWithError(std::string(routes.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(routes->get());
  }
}
BENCHMARK(BM_RouteSetCreate)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gateway::openapi
