// Time to generate the OpenAPI document of the registry benchmark's route table: 501
// services (500 registered + 1 from the config) with 10 GET routes each, 5,010 routes in
// all, the same descriptors as gateway/registry/registry_bench. The document is generated
// off the request path (once per route table, cached by OpenApiEndpoints), so this figure
// is what the first GET /openapi.json after a swap pays, not a per-request cost.
//
//   bazel build //gateway/openapi:openapi_bench
//   bazel-bin/gateway/openapi/openapi_bench
//
// BM_OpenApiAllServices: the document of every service (the gateway-wide /openapi.json).
// BM_OpenApiOneService: the document of one service among the 501 (/openapi/<service>.json).
// BM_RouteSetCreate: building the routes themselves, for scale.
// BM_EndpointRegenerate: OpenApiEndpoint::Prepare of a new 501-service table until its
// documents (the whole one and the 501 per-service ones) are ready, on the endpoint's
// generator thread (wall time); meanwhile the benchmark thread keeps calling Serve for one
// service's document, and serve_p50/p99/max_us are those calls' latencies: what a request
// on an event loop pays while the documents are regenerated.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "gateway/descriptor_sets.h"
#include "gateway/openapi/openapi.h"
#include "gateway/openapi/openapi_config.h"
#include "gateway/openapi/openapi_endpoint.h"
#include "gateway/registry/bench_services.h"
#include "gateway/route_table.h"
#include "gateway/upstream.h"
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

std::shared_ptr<const RouteTable> BenchTable() {
  const Registry& r = BenchRegistry();
  config::v1::Backend config;
  config.set_name("bench");
  config.set_target("dns:///127.0.0.1:1");
  absl::StatusOr<std::shared_ptr<Backend>> backend =
      Backend::Create(config, config::v1::Limits(), "", "backends[0]");
  if (!backend.ok()) std::abort();
  std::vector<ServiceBinding> services;
  for (const std::string& name : r.services) services.push_back({name, *backend});
  absl::StatusOr<std::shared_ptr<const RouteTable>> table = RouteTable::Create(r.pool, services);
  if (!table.ok()) {
    std::fprintf(stderr, "table: %s\n", std::string(table.status().message()).c_str());
    std::abort();
  }
  return *table;
}

void BM_EndpointRegenerate(benchmark::State& state) {
  absl::StatusOr<OpenApiSettings> settings = OpenApiSettingsFromConfig(config::v1::Config());
  if (!settings.ok()) std::abort();
  OpenApiEndpoint endpoint(*settings);
  const std::shared_ptr<const RouteTable> tables[2] = {BenchTable(), BenchTable()};
  endpoint.Prepare(tables[1]);
  if (!endpoint.WaitReady(tables[1], absl::Seconds(60))) std::abort();
  const std::string path = absl::StrCat("/openapi/", BenchServiceName(7), ".json");
  std::vector<double> serve_us;
  int i = 0;
  for (auto _ : state) {
    const std::shared_ptr<const RouteTable>& table = tables[i++ % 2];
    const auto start = std::chrono::steady_clock::now();
    endpoint.Prepare(table);
    while (!endpoint.WaitReady(table, absl::ZeroDuration())) {
      const auto before = std::chrono::steady_clock::now();
      std::optional<OpenApiEndpoint::Response> r = endpoint.Serve(path, table);
      const auto after = std::chrono::steady_clock::now();
      if (!r.has_value() || r->status != 200) std::abort();
      serve_us.push_back(std::chrono::duration<double, std::micro>(after - before).count());
    }
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(serve_us.begin(), serve_us.end());
  auto at = [&](double q) {
    return serve_us.empty() ? 0.0 : serve_us[static_cast<size_t>(q * (serve_us.size() - 1))];
  };
  state.counters["serves"] = static_cast<double>(serve_us.size());
  state.counters["serve_p50_us"] = at(0.5);
  state.counters["serve_p99_us"] = at(0.99);
  state.counters["serve_max_us"] = at(1.0);
}
BENCHMARK(BM_EndpointRegenerate)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace gateway::openapi
