// Fuzzes the target syntax of Cluster::Create (backends[].target and weights, from config
// and, later, from registrations): any bytes must give a cluster or a clear error, never a
// crash; a static target that is accepted has at least one endpoint, each with a port or a
// unix path, and exactly the given number of weights when weights were given.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gateway/upstream/cluster.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  gateway::upstream::ClusterOptions options;
  options.name = "fuzz";
  const size_t weights = data[0] % 4;
  for (size_t i = 0; i < weights; ++i) options.weights.push_back(1 + i);
  options.target.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<std::shared_ptr<gateway::upstream::Cluster>> cluster =
      gateway::upstream::Cluster::Create(options);
  if (!cluster.ok()) {
    if (cluster.status().message().empty()) __builtin_trap();
    return 0;
  }
  std::shared_ptr<const gateway::upstream::EndpointSet> endpoints = (*cluster)->endpoints();
  for (const auto& e : *endpoints) {
    if (e->endpoint().unix_path.empty() && e->endpoint().port == 0 &&
        e->endpoint().host.empty()) {
      __builtin_trap();
    }
  }
  if (weights > 0 && !endpoints->empty() && endpoints->size() != weights) __builtin_trap();
  return 0;
}
