// Measures the registry at scale: a registry of 500 services with 10 methods and 10 HTTP
// routes each (5,000 routes), then
//   - the time of one more registration (validate the complete candidate state, build the
//     route table, publish it), the figure that bounds how fast changes are taken;
//   - the time of a dry run at that size;
//   - heap bytes per registered route (glibc mallinfo2 before and after the table).
//
//   bazel build //gateway/registry:registry_bench && bazel-bin/gateway/registry/registry_bench

#include <malloc.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/descriptor_sets.h"
#include "gateway/registry/bench_services.h"
#include "gateway/registry/registry.h"
#include "gateway/upstream.h"

namespace gateway::registry {
namespace {

constexpr int kServices = testing::kBenchServices;
constexpr int kMethodsPerService = testing::kBenchMethodsPerService;

std::string ServiceSet(int index) { return testing::BenchServiceSet(index, kMethodsPerService); }

std::shared_ptr<Backend> MakeBackend(const std::string& name) {
  config::v1::Backend config;
  config.set_name(name);
  config.set_target("dns:///127.0.0.1:1");
  return *Backend::Create(config, config::v1::Limits(), "", "backends[0]");
}

size_t HeapInUse() { return mallinfo2().uordblks; }

int Run() {
  BaseRoutes base;
  base.descriptor_sets.push_back({ServiceSet(kServices + 1), "config.pb"});
  DescriptorSetBuilder builder;
  if (!builder.AddSerialized(base.descriptor_sets[0].bytes, "config.pb").ok()) return 1;
  base.pool = *builder.Build();
  base.backends["b"] = MakeBackend("b");
  base.services.push_back({absl::StrCat("bench", kServices + 1, ".v1.Service"),
                           base.backends["b"]});

  std::vector<std::string> sets;
  for (int i = 0; i < kServices + 1; ++i) sets.push_back(ServiceSet(i));
  std::shared_ptr<const RouteTable> published;
  std::vector<std::string> problems;
  std::unique_ptr<Registry> registry = *Registry::Create(
      base, nullptr, [&](std::shared_ptr<const RouteTable> t) { published = std::move(t); },
      &problems);

  // Fill the registry to kServices - 1, then time the registration of the last one.
  const absl::Time fill_start = absl::Now();
  for (int i = 0; i < kServices - 1; ++i) {
    RegisterRequest r{absl::StrCat("bench", i, ".v1.Service"), "team", "b", sets[i]};
    absl::StatusOr<ChangeResult> result = registry->Register(r);
    if (!result.ok()) {
      std::fprintf(stderr, "register %d: %s\n", i, std::string(result.status().message()).c_str());
      return 1;
    }
  }
  const absl::Duration fill = absl::Now() - fill_start;

  RegisterRequest dry{absl::StrCat("bench", kServices - 1, ".v1.Service"), "team", "b",
                      sets[kServices - 1]};
  dry.dry_run = true;
  const absl::Time dry_start = absl::Now();
  if (!registry->Register(dry).ok()) return 1;
  const absl::Duration dry_run = absl::Now() - dry_start;

  RegisterRequest last = dry;
  last.dry_run = false;
  const absl::Time swap_start = absl::Now();
  if (!registry->Register(last).ok()) return 1;
  const absl::Duration swap = absl::Now() - swap_start;
  const size_t routes = published->transcoder().routes().plans().size();

  // Memory: the heap held by one complete table of this size (the registry's own copy of
  // the descriptor bytes excluded), measured by building one more and keeping it.
  RegistryState state;
  for (int i = 0; i < kServices; ++i) {
    ServiceVersion v;
    v.service = absl::StrCat("bench", i, ".v1.Service");
    v.owner = "team";
    v.backend = "b";
    v.descriptor_set = sets[i];
    state.Append(v);
  }
  const size_t before = HeapInUse();
  std::shared_ptr<const RouteTable> table = *BuildRouteTable(base, state);
  const size_t after = HeapInUse();
  size_t descriptor_bytes = 0;
  for (int i = 0; i < kServices; ++i) descriptor_bytes += sets[i].size();

  std::printf("services: %d registered + 1 from the config; HTTP routes: %zu; gRPC methods: %zu\n",
              kServices, routes, published->size());
  std::printf("fill to %d services one at a time: %s (%.1f ms per registration on average)\n",
              kServices - 1, absl::FormatDuration(fill).c_str(),
              absl::ToDoubleMilliseconds(fill) / (kServices - 1));
  std::printf("dry run at %d services: %.1f ms\n", kServices, absl::ToDoubleMilliseconds(dry_run));
  std::printf("validate + build + swap at %d services / %zu routes: %.1f ms\n", kServices, routes,
              absl::ToDoubleMilliseconds(swap));
  std::printf("route table heap: %.1f MiB, %.0f bytes per route (descriptor set bytes held by "
              "the registry besides: %.0f per route)\n",
              (after - before) / 1048576.0, static_cast<double>(after - before) / routes,
              static_cast<double>(descriptor_bytes) / routes);
  return table != nullptr ? 0 : 1;
}

}  // namespace
}  // namespace gateway::registry

int main() { return gateway::registry::Run(); }
