// A cluster: the endpoints of one backend, what is known of their health, and the limits
// that protect it. Per worker thread, the connections to those endpoints and the choice of
// an endpoint for each call are in cluster_worker.h.
//
// Two halves:
//  - `Cluster` is shared by every thread (immutable options plus atomics and a snapshot of
//    the endpoint set). Its background work (re-resolving `dns:///` targets, active health
//    checks) runs on an `UpstreamControl` thread, never on a worker.
//  - `ClusterWorker` belongs to one worker's `boost::asio::io_context`: the pools of
//    `Http2Connection`s to each endpoint (many streams per connection, up to the peer's
//    SETTINGS_MAX_CONCURRENT_STREAMS; a new connection when all are full, bounded;
//    reconnect backoff with jitter) and the load balancer. Not thread-safe: every method
//    and callback runs on the worker's thread.
//
//   auto control = std::make_unique<UpstreamControl>();           // one per process
//   auto cluster = Cluster::Create(options);                      // per backend
//   cluster.value()->Start(*control);                             // resolver, health checks
//   ...
//   cluster.value()->Stop();
#ifndef GATEWAY_UPSTREAM_CLUSTER_H_
#define GATEWAY_UPSTREAM_CLUSTER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/upstream/http2_connection.h"

namespace gateway::metrics {
class Histogram;
}  // namespace gateway::metrics

namespace gateway::upstream {

// --- Options (filled from the gateway's config; defaults are the documented ones) ---

enum class LbPolicy { kRoundRobin, kLeastRequest, kPickFirst };

// Active health checks: grpc.health.v1.Health/Check on every endpoint (health_checker.h).
// An endpoint is healthy until a check says otherwise; its first check runs as soon as it
// is known and decides alone, later verdicts need the thresholds.
struct HealthCheckOptions {
  bool enabled = false;
  std::string service;  // HealthCheckRequest.service ("" = the server as a whole)
  absl::Duration interval = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(1);
  uint32_t healthy_threshold = 1;    // consecutive SERVING answers to become healthy
  uint32_t unhealthy_threshold = 2;  // consecutive failures to become unhealthy
};

// Passive outlier detection: an endpoint whose calls fail `consecutive_failures` times in a
// row (connect errors, resets, UNAVAILABLE) is ejected for base_ejection_time times the
// number of times it was ejected (capped at max_ejection_time); at most
// max_ejection_percent of the endpoints are ejected at once (at least one may be).
struct OutlierDetectionOptions {
  bool enabled = true;
  uint32_t consecutive_failures = 5;
  absl::Duration base_ejection_time = absl::Seconds(1);
  absl::Duration max_ejection_time = absl::Seconds(30);
  uint32_t max_ejection_percent = 50;
};

// Per backend, summed over all workers. Overflow answers at once with UNAVAILABLE naming
// the backend and the limit.
struct CircuitBreakerOptions {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;  // calls waiting for a connection or a stream
  uint32_t max_requests = 10000;         // calls in flight
  uint32_t max_retries = 3;              // retries in flight
};

struct ClusterOptions {
  std::string name;  // the backend's config name: every error message uses it
  // "dns:///host:port", "ipv4:a:p,b:p", "ipv6:[::1]:p", "unix:/path", or "host:port"
  // (treated as dns:///host:port).
  std::string target;
  // Weights of the addresses of `target` in order (empty: all 1). A dns target's
  // addresses all weigh 1.
  std::vector<uint32_t> weights;
  LbPolicy lb_policy = LbPolicy::kRoundRobin;
  absl::Duration dns_refresh_interval = absl::Seconds(30);
  ConnectionOptions connection;  // connect timeout, keepalive, windows, TLS
  uint32_t max_connections_per_endpoint = 4;  // per worker
  absl::Duration reconnect_backoff_base = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(1);
  HealthCheckOptions health_check;
  OutlierDetectionOptions outlier_detection;
  CircuitBreakerOptions circuit_breakers;
};

// --- Shared state ---

// What happened to one call on an endpoint, for outlier detection.
enum class EndpointOutcome {
  kSuccess,        // any answer from the backend that is not a failure below
  kConnectFailure, // the connection failed before the call was sent
  kReset,          // the stream or connection was reset / lost mid-call
  kUnavailable,    // the backend answered UNAVAILABLE
  kLocal,          // ended by the gateway (cancel, deadline): not counted
};

// One endpoint of a cluster, shared by all threads. Thread-safe.
class EndpointState {
 public:
  EndpointState(Endpoint endpoint, uint32_t weight)
      : endpoint_(std::move(endpoint)), weight_(weight == 0 ? 1 : weight) {}

  const Endpoint& endpoint() const { return endpoint_; }
  uint32_t weight() const { return weight_; }

  // The active health check's verdict (true while checks are off or before the first).
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  void set_healthy(bool healthy) { healthy_.store(healthy, std::memory_order_relaxed); }
  // Whether outlier detection has this endpoint ejected at `now`.
  bool ejected(absl::Time now) const {
    return absl::ToUnixNanos(now) < ejected_until_ns.load(std::memory_order_relaxed);
  }
  // Healthy and not ejected: may get new calls.
  bool available(absl::Time now) const { return healthy() && !ejected(now); }

  // Calls in flight on this endpoint, all workers (least request reads it).
  std::atomic<int64_t> active_requests{0};
  // Outlier detection state (Cluster::RecordOutcome in cluster.cc).
  std::atomic<uint32_t> consecutive_failures{0};
  std::atomic<uint32_t> ejections{0};          // times ejected so far
  std::atomic<int64_t> ejected_until_ns{0};    // absl::ToUnixNanos
  // Counters for metrics. Cluster::RecordOutcome counts requests_total (every outcome
  // recorded, kLocal included) and connect_failures_total (kConnectFailure); the ejections
  // it makes count in ejections_total.
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> connect_failures_total{0};
  std::atomic<uint64_t> ejections_total{0};

 private:
  friend class Cluster;
  const Endpoint endpoint_;
  const uint32_t weight_;
  std::atomic<bool> healthy_{true};
};

using EndpointSet = std::vector<std::shared_ptr<EndpointState>>;

// The thread that runs every cluster's background work (DNS refresh, health checks).
class UpstreamControl {
 public:
  UpstreamControl();
  ~UpstreamControl();  // stops the thread; clusters must be stopped first
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

class Cluster : public std::enable_shared_from_this<Cluster> {
 public:
  // INVALID_ARGUMENT naming `options.name` for a malformed target or weights that do not
  // match the target's addresses. Static and unix targets have their endpoints at once; a
  // dns target has none until Start() resolved it.
  //
  // Target grammar (the port is required everywhere, 1..65535):
  //   "ipv4:" A.B.C.D ":" port *("," A.B.C.D ":" port)
  //   "ipv6:" "[" v6 "]:" port *("," "[" v6 "]:" port)
  //   "unix:" path            "unix:///abs" and "unix:/abs" both mean "/abs"
  //   "dns:" ["//" "/"] host ":" port, or bare host ":" port (the same)
  // A dns target whose host is an IPv4 literal or a bracketed IPv6 literal has that one
  // address at once (no resolution; it may have one weight). Endpoints resolved from a
  // name send that "host:port" as their :authority.
  // Also INVALID_ARGUMENT naming the option for: a zero dns_refresh_interval, health check
  // interval or timeout, a zero healthy/unhealthy threshold, consecutive_failures of zero or
  // max_ejection_percent above 100.
  static absl::StatusOr<std::shared_ptr<Cluster>> Create(ClusterOptions options);
  // Stops the background work if Start() ran and Stop() did not.
  ~Cluster();

  // Starts the background work on `control` (resolution, health checks). Stop() ends it;
  // both are called once, from any thread. Stop() returns when the background work has
  // ended (it waits for the control thread unless called on it); the cluster may be
  // destroyed right after. `control` must outlive the cluster's Stop().
  void Start(UpstreamControl& control);
  void Stop();

  const ClusterOptions& options() const { return options_; }
  const std::string& name() const { return options_.name; }

  // The current endpoints (a snapshot; replaced as a whole when DNS answers change; an
  // endpoint that stays keeps its EndpointState). Never null.
  std::shared_ptr<const EndpointSet> endpoints() const;
  // Increases each time endpoints() changes.
  uint64_t endpoints_version() const { return version_.load(std::memory_order_acquire); }
  // Why there are no endpoints (DNS failure ...); OK otherwise.
  absl::Status resolution_status() const;

  // Records a call's outcome on `endpoint` (outlier detection; thread-safe). With
  // outlier detection enabled, kConnectFailure, kReset and kUnavailable add one to the
  // endpoint's consecutive failures, kSuccess sets them to zero, kLocal changes nothing.
  // At consecutive_failures the endpoint is ejected until now + min(base_ejection_time x
  // ejections, max_ejection_time) (and its count restarts), unless that would put more
  // than max_ejection_percent of endpoints() out at once while another is already out
  // (then the count stays and the next failure tries again). Failures of an endpoint that
  // is already ejected neither count nor extend its ejection. Each ejection logs one line.
  void RecordOutcome(EndpointState& endpoint, EndpointOutcome outcome, absl::Time now);

  // Circuit breakers: each Try* returns false (and counts an overflow) when the limit is
  // reached; otherwise the caller holds one unit until the matching Release*.
  bool TryAcquireConnection();
  void ReleaseConnection();
  bool TryAcquirePending();
  void ReleasePending();
  bool TryAcquireRequest();
  void ReleaseRequest();
  bool TryAcquireRetry();
  void ReleaseRetry();
  // UNAVAILABLE: 'backend "NAME": too many <what> (circuit_breakers.<key> = N)'.
  absl::Status Overflow(absl::string_view what, absl::string_view key, uint32_t limit) const;

  // Counters (metrics).
  std::atomic<int64_t> connections{0};
  std::atomic<int64_t> pending_requests{0};
  std::atomic<int64_t> active_requests{0};
  std::atomic<int64_t> active_retries{0};
  std::atomic<uint64_t> overflows_total{0};
  // overflows_total by limit (Try* of each counts its own).
  std::atomic<uint64_t> connection_overflows_total{0};
  std::atomic<uint64_t> pending_overflows_total{0};
  std::atomic<uint64_t> request_overflows_total{0};
  std::atomic<uint64_t> retry_overflows_total{0};
  // Retry decisions (BackendCall, backend_call.cc): retries started by the retry policy,
  // transparent retries (attempts the backend never saw, started again), failures the
  // policy would retry that hit the attempt limit, retries refused by the retry budget or
  // circuit_breakers.max_retries, and calls that ended OK after at least one retry.
  std::atomic<uint64_t> retries_total{0};
  std::atomic<uint64_t> transparent_retries_total{0};
  std::atomic<uint64_t> retries_exhausted_total{0};
  std::atomic<uint64_t> retries_budget_exceeded_total{0};
  std::atomic<uint64_t> retries_succeeded_total{0};
  // Where BackendCall observes each call's duration, from Start() to on_done (null: not
  // measured). Set once by whoever exports the metrics; the histogram must outlive the
  // calls of this cluster.
  std::atomic<metrics::Histogram*> call_duration{nullptr};

 private:
  friend class ClusterTestPeer;  // cluster_test.cc
  explicit Cluster(ClusterOptions options);
  // Publishes a new endpoint set: an address already present keeps its EndpointState
  // object (health, ejection, counters); the version increases when the set of addresses
  // changed. Clears resolution_status().
  void SetEndpoints(EndpointSet endpoints);
  void SetResolutionError(absl::Status status);
  bool TryAcquire(std::atomic<int64_t>& counter, uint32_t limit,
                  std::atomic<uint64_t>& overflows);
  // DNS on the control thread. OnResolved publishes an answer (or records the failure)
  // and returns when to resolve again.
  void Resolve();
  absl::Duration OnResolved(const boost::system::error_code& ec,
                            const boost::asio::ip::tcp::resolver::results_type& results);

  // A dns target that needs resolving (empty for static, unix and IP literal targets).
  std::string dns_host_;
  uint16_t dns_port_ = 0;

  const ClusterOptions options_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const EndpointSet> endpoints_ ABSL_GUARDED_BY(mu_);
  absl::Status resolution_status_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> version_{0};
  // Background work (resolver, health checker), defined in cluster.cc.
  struct Background;
  std::unique_ptr<Background> background_;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_CLUSTER_H_
