// The gateway's own upstream in the metrics (docs/config.md, "Metrics"): per backend and
// endpoint, the counters and gauges that upstream::Cluster keeps (requests, connect
// failures, ejections, health, calls in flight and waiting, connections, circuit breaker
// overflows, retry decisions), read at each scrape, and a histogram of call durations per
// backend that upstream::BackendCall observes at the end of each call.
//
// Reading the clusters' atomics at scrape time costs the calls nothing; the histogram
// costs one sharded observation per call (no lock, no allocation).
//
// Thread-safety: call AddUpstreamMetrics once, before the front ends start calls; the
// callbacks it registers are thread-safe. A reload's new backends are handed over with
// UpstreamMetricsTargets::Set before its route table is published.
//
// Example:
//   AddUpstreamMetrics(registry, config->backends);
//   registry.Render();  // ... gateway_upstream_requests_total{backend="b",endpoint="..."} 3

#ifndef GATEWAY_UPSTREAM_METRICS_H_
#define GATEWAY_UPSTREAM_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gateway/metrics/metrics.h"
#include "gateway/upstream.h"
#include "gateway/upstream/cluster.h"

namespace gateway {

// The backends the gateway_upstream_* families describe, replaced when a config reload
// brings new Backend objects (and so new clusters). Thread-safe.
class UpstreamMetricsTargets {
 public:
  // From now on the families read `backends`' clusters; each cluster gets its backend's
  // gateway_upstream_request_duration_seconds series (the same series as the backend of
  // that name had before). A new cluster's counters start at 0 (a counter reset, which
  // rate() and increase() take in their stride).
  void Set(const std::vector<std::shared_ptr<Backend>>& backends);
  // Backends besides Set's that calls go to (the backends registrations define, from each
  // published route table): the families describe Set's backends and these, each cluster
  // once. Replaces the previous extra backends.
  void SetExtra(const std::vector<std::shared_ptr<Backend>>& backends);
  std::vector<std::shared_ptr<const upstream::Cluster>> clusters() const;

 private:
  // clusters_ from configured_ and extra_.
  void Rebuild() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  friend std::shared_ptr<UpstreamMetricsTargets> AddUpstreamMetrics(
      metrics::MetricRegistry&, const std::vector<std::shared_ptr<Backend>>&);
  metrics::Family<metrics::Histogram>* duration_ = nullptr;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Backend>> configured_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Backend>> extra_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<const upstream::Cluster>> clusters_ ABSL_GUARDED_BY(mu_);
};

// Registers the gateway_upstream_* families for `backends` in `registry` and attaches each
// backend's gateway_upstream_request_duration_seconds series to its cluster. The callbacks
// keep the clusters alive; the registry must outlive every call of these clusters (the
// histograms belong to it). Calling it twice for the same registry aborts (names taken).
// The result switches the families to other backends (UpstreamMetricsTargets::Set).
std::shared_ptr<UpstreamMetricsTargets> AddUpstreamMetrics(
    metrics::MetricRegistry& registry, const std::vector<std::shared_ptr<Backend>>& backends);

// The "endpoint" label of `endpoint`: "ip:port" ("[v6]:port") or "unix:path".
std::string EndpointLabel(const upstream::Endpoint& endpoint);

}  // namespace gateway

#endif  // GATEWAY_UPSTREAM_METRICS_H_
