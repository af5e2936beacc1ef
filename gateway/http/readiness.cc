#include "gateway/http/readiness.h"

#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/upstream.h"
#include "gateway/upstream/cluster.h"

namespace gateway::http {

Readiness CheckReadiness(const RouteTable& table,
                         const std::function<void(bool* ready, std::string* detail)>& more) {
  Readiness out;
  std::string lines;
  const absl::Time now = absl::Now();
  absl::flat_hash_set<const Backend*> seen;
  for (const ServiceBinding& binding : table.services()) {
    const Backend& backend = *binding.backend;
    if (!seen.insert(&backend).second) continue;
    // Ready: one endpoint healthy and not ejected. Backends marked `required: false` are
    // reported but do not hold readiness back.
    std::shared_ptr<const upstream::EndpointSet> endpoints = backend.cluster()->endpoints();
    size_t available = 0;
    for (const auto& endpoint : *endpoints) available += endpoint->available(now) ? 1 : 0;
    std::string problem;
    if (endpoints->empty()) {
      const absl::Status resolution = backend.cluster()->resolution_status();
      problem = resolution.ok() ? "no endpoints" : std::string(resolution.message());
    } else if (available == 0) {
      problem = absl::StrCat("no healthy endpoint (0 of ", endpoints->size(), ")");
    }
    if (problem.empty()) continue;
    if (backend.required()) out.ready = false;
    absl::StrAppend(&lines, "backend ", backend.name(), " ", problem,
                    backend.required() ? "" : " (not required)", "\n");
  }
  std::string detail;
  if (more) more(&out.ready, &detail);
  out.text = out.ready ? "ready\n" + lines : lines;
  out.text += detail;
  return out;
}

}  // namespace gateway::http
