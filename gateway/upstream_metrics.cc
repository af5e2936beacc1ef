#include "gateway/upstream_metrics.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gateway {
namespace {

using Clusters = std::vector<std::shared_ptr<const upstream::Cluster>>;
using Targets = std::shared_ptr<const UpstreamMetricsTargets>;

template <typename T>
double Read(const std::atomic<T>& value) {
  return static_cast<double>(value.load(std::memory_order_relaxed));
}

// One sample per endpoint of every cluster: {backend, endpoint} -> value(endpoint).
std::function<std::vector<metrics::Sample>()> PerEndpoint(
    Targets targets, std::function<double(const upstream::EndpointState&, absl::Time)> value) {
  return [targets = std::move(targets), value = std::move(value)] {
    const Clusters clusters = targets->clusters();
    const absl::Time now = absl::Now();
    std::vector<metrics::Sample> out;
    for (const auto& cluster : clusters) {
      const std::shared_ptr<const upstream::EndpointSet> endpoints = cluster->endpoints();
      for (const auto& endpoint : *endpoints) {
        out.push_back({{cluster->name(), EndpointLabel(endpoint->endpoint())},
                       value(*endpoint, now)});
      }
    }
    return out;
  };
}

// One sample per cluster: {backend} -> value(cluster).
std::function<std::vector<metrics::Sample>()> PerBackend(
    Targets targets, std::function<double(const upstream::Cluster&)> value) {
  return [targets = std::move(targets), value = std::move(value)] {
    const Clusters clusters = targets->clusters();
    std::vector<metrics::Sample> out;
    out.reserve(clusters.size());
    for (const auto& cluster : clusters) out.push_back({{cluster->name()}, value(*cluster)});
    return out;
  };
}

// Several samples per cluster: {backend, <label>} -> each (label value, counter).
using Labeled = std::vector<std::pair<std::string, const std::atomic<uint64_t> upstream::Cluster::*>>;
std::function<std::vector<metrics::Sample>()> PerBackendLabeled(Targets targets,
                                                                Labeled counters) {
  return [targets = std::move(targets), counters = std::move(counters)] {
    const Clusters clusters = targets->clusters();
    std::vector<metrics::Sample> out;
    for (const auto& cluster : clusters) {
      for (const auto& [label, member] : counters) {
        out.push_back({{cluster->name(), label}, Read((*cluster).*member)});
      }
    }
    return out;
  };
}

}  // namespace

std::string EndpointLabel(const upstream::Endpoint& endpoint) {
  if (!endpoint.unix_path.empty()) return absl::StrCat("unix:", endpoint.unix_path);
  if (endpoint.host.find(':') != std::string::npos) {
    return absl::StrCat("[", endpoint.host, "]:", endpoint.port);
  }
  return absl::StrCat(endpoint.host, ":", endpoint.port);
}

void UpstreamMetricsTargets::Set(const std::vector<std::shared_ptr<Backend>>& backends) {
  absl::MutexLock lock(&mu_);
  configured_ = backends;
  Rebuild();
}

void UpstreamMetricsTargets::SetExtra(const std::vector<std::shared_ptr<Backend>>& backends) {
  absl::MutexLock lock(&mu_);
  extra_ = backends;
  Rebuild();
}

void UpstreamMetricsTargets::Rebuild() {
  Clusters clusters;
  for (const auto* list : {&configured_, &extra_}) {
    for (const auto& backend : *list) {
      upstream::Cluster* cluster = backend->cluster().get();
      bool seen = false;
      for (const auto& c : clusters) seen = seen || c.get() == cluster;
      if (seen) continue;
      cluster->call_duration.store(duration_->Get({cluster->name()}),
                                   std::memory_order_relaxed);
      clusters.push_back(backend->cluster());
    }
  }
  clusters_ = std::move(clusters);
}

Clusters UpstreamMetricsTargets::clusters() const {
  absl::MutexLock lock(&mu_);
  return clusters_;
}

std::shared_ptr<UpstreamMetricsTargets> AddUpstreamMetrics(
    metrics::MetricRegistry& registry, const std::vector<std::shared_ptr<Backend>>& backends) {
  auto targets = std::make_shared<UpstreamMetricsTargets>();
  targets->duration_ = &registry.AddHistogram(
      "gateway_upstream_request_duration_seconds",
      "Calls to a backend through the gateway's upstream, from their start to their end "
      "(every attempt and retry delay included).",
      {"backend"}, metrics::LatencyBuckets());
  targets->Set(backends);
  const Targets clusters = targets;
  using metrics::Type;
  using upstream::Cluster;
  using upstream::EndpointState;
  const std::vector<std::string> kEndpointLabels = {"backend", "endpoint"};

  // --- per endpoint ---
  registry.AddCallback(
      "gateway_upstream_requests_total",
      "Outcomes recorded per endpoint: attempts that ended on a connection to it, and "
      "connection failures that failed waiting calls (one per failure).",
      Type::kCounter, kEndpointLabels,
      PerEndpoint(clusters, [](const EndpointState& e, absl::Time) {
        return Read(e.requests_total);
      }));
  registry.AddCallback(
      "gateway_upstream_connect_failures_total",
      "Connections to the endpoint that failed (connect, TLS or HTTP/2 setup, or timeout).",
      Type::kCounter, kEndpointLabels,
      PerEndpoint(clusters, [](const EndpointState& e, absl::Time) {
        return Read(e.connect_failures_total);
      }));
  registry.AddCallback(
      "gateway_upstream_ejections_total", "Times outlier detection ejected the endpoint.",
      Type::kCounter, kEndpointLabels,
      PerEndpoint(clusters, [](const EndpointState& e, absl::Time) {
        return Read(e.ejections_total);
      }));
  registry.AddCallback(
      "gateway_upstream_endpoint_active_requests",
      "Calls in flight on the endpoint, all workers.", Type::kGauge, kEndpointLabels,
      PerEndpoint(clusters, [](const EndpointState& e, absl::Time) {
        return Read(e.active_requests);
      }));
  registry.AddCallback(
      "gateway_upstream_endpoint_healthy",
      "1 while the endpoint's active health check says it is healthy (or checks are off), "
      "0 otherwise.",
      Type::kGauge, kEndpointLabels,
      PerEndpoint(clusters, [](const EndpointState& e, absl::Time) {
        return e.healthy() ? 1.0 : 0.0;
      }));
  registry.AddCallback(
      "gateway_upstream_endpoint_ejected",
      "1 while outlier detection has the endpoint ejected, 0 otherwise.", Type::kGauge,
      kEndpointLabels, PerEndpoint(clusters, [](const EndpointState& e, absl::Time now) {
        return e.ejected(now) ? 1.0 : 0.0;
      }));

  // --- per backend ---
  registry.AddCallback(
      "gateway_upstream_active_requests",
      "Calls to the backend in flight (holding a circuit_breakers.max_requests unit).",
      Type::kGauge, {"backend"},
      PerBackend(clusters, [](const Cluster& c) { return Read(c.active_requests); }));
  registry.AddCallback(
      "gateway_upstream_pending_requests",
      "Calls waiting for a connection or a stream to the backend.", Type::kGauge, {"backend"},
      PerBackend(clusters, [](const Cluster& c) { return Read(c.pending_requests); }));
  registry.AddCallback(
      "gateway_upstream_connections",
      "Connections to the backend's endpoints, open or opening, all workers.", Type::kGauge,
      {"backend"},
      PerBackend(clusters, [](const Cluster& c) { return Read(c.connections); }));
  registry.AddCallback(
      "gateway_upstream_active_retries", "Retries to the backend in flight.", Type::kGauge,
      {"backend"},
      PerBackend(clusters, [](const Cluster& c) { return Read(c.active_retries); }));
  registry.AddCallback(
      "gateway_upstream_overflows_total",
      "Circuit breaker refusals, by the limit reached (circuit_breakers.<limit>).",
      Type::kCounter, {"backend", "limit"},
      PerBackendLabeled(clusters, {{"max_connections", &Cluster::connection_overflows_total},
                                   {"max_pending_requests", &Cluster::pending_overflows_total},
                                   {"max_requests", &Cluster::request_overflows_total},
                                   {"max_retries", &Cluster::retry_overflows_total}}));
  registry.AddCallback(
      "gateway_upstream_retries_total",
      "Retry decisions, by outcome: retried (the retry policy started another attempt), "
      "transparent (an attempt the backend never saw started again), exhausted (a failure "
      "the policy retries hit the attempt limit), budget_exceeded (refused by the retry "
      "budget or circuit_breakers.max_retries), succeeded_after_retry (a call ended OK after "
      "a retry).",
      Type::kCounter, {"backend", "outcome"},
      PerBackendLabeled(clusters, {{"retried", &Cluster::retries_total},
                                   {"transparent", &Cluster::transparent_retries_total},
                                   {"exhausted", &Cluster::retries_exhausted_total},
                                   {"budget_exceeded", &Cluster::retries_budget_exceeded_total},
                                   {"succeeded_after_retry", &Cluster::retries_succeeded_total}}));
  return targets;
}

}  // namespace gateway
