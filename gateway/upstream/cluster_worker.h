// Per worker thread: the connections to a cluster's endpoints and the choice of an endpoint
// for each call (see cluster.h for the shared half).
//
// A `ClusterWorker` belongs to one worker's `boost::asio::io_context`: the pools of
// `Http2Connection`s to each endpoint (many streams per connection, up to the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS; a new connection when all are full, at most
// ClusterOptions::max_connections_per_endpoint and the cluster's max_connections; reconnect
// backoff with jitter from reconnect_backoff_base, x1.6 per failure, capped at
// reconnect_backoff_max) and the load balancer (round robin, least request with two random
// choices, pick first; weights). Not thread-safe: every method and callback runs on the
// worker's thread.
//
//   ClusterWorker worker(io, cluster);                        // per worker thread
//   worker.Acquire({}, deadline, [](absl::StatusOr<Lease> lease) {
//     if (!lease.ok()) return Fail(lease.status());           // UNAVAILABLE, named
//     auto stream = lease->connection->StartStream(spec, callbacks);
//     ...                                                     // when the call ends:
//     lease->Finish(EndpointOutcome::kSuccess);
//   });
#ifndef GATEWAY_UPSTREAM_CLUSTER_WORKER_H_
#define GATEWAY_UPSTREAM_CLUSTER_WORKER_H_

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/http2_connection.h"

namespace gateway::upstream {

// A connection that may take one new stream now, on an endpoint the balancer chose. Finish
// exactly once (the destructor finishes with kLocal if it was not).
class Lease {
 public:
  Lease() = default;
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  ~Lease();

  // Counts the call's end on the endpoint (active requests, outlier detection).
  void Finish(EndpointOutcome outcome);

  std::shared_ptr<Http2Connection> connection;
  std::shared_ptr<EndpointState> endpoint;

 private:
  friend class ClusterWorker;
  std::shared_ptr<Cluster> cluster_;
};

struct PickOptions {
  // An endpoint to avoid (a retry goes elsewhere when it can); null: none.
  const EndpointState* avoid = nullptr;
};

class ClusterWorker {
 public:
  ClusterWorker(boost::asio::io_context& io, std::shared_ptr<Cluster> cluster);
  ~ClusterWorker();  // closes its connections
  ClusterWorker(const ClusterWorker&) = delete;
  ClusterWorker& operator=(const ClusterWorker&) = delete;

  // Picks an endpoint (the policy of the cluster, among available endpoints; connecting
  // endpoints and those in reconnect backoff only when no other is left) and a connection
  // of it that can take a stream. `done` runs exactly once: inside Acquire when a ready
  // connection has room (the common case), else later on the worker's thread when one
  // is ready. Errors (UNAVAILABLE, each naming the backend, never an address): no
  // endpoints (with the resolution error), none reachable, circuit breaker overflow
  // (max_pending_requests), connect failure of the chosen endpoint; DEADLINE_EXCEEDED if
  // `deadline` passes while waiting.
  void Acquire(const PickOptions& pick, absl::Time deadline,
               std::function<void(absl::StatusOr<Lease>)> done);

  const std::shared_ptr<Cluster>& cluster() const { return cluster_; }
  boost::asio::io_context& io() { return io_; }

 private:
  struct Impl;  // pools, balancer, waiters (cluster_worker.cc)
  boost::asio::io_context& io_;
  std::shared_ptr<Cluster> cluster_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_CLUSTER_WORKER_H_
