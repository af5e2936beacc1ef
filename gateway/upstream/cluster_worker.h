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

struct ClusterWorkerImpl;  // cluster_worker.cc
struct PooledConnection;   // cluster_worker.cc

// A connection that may take one new stream now, on an endpoint the balancer chose. Finish
// exactly once (the destructor finishes with kLocal if it was not). While it is held, the
// call counts in the endpoint's and the cluster's active_requests (max_requests) and in the
// worker's count of streams on `connection`. Move-only; a moved-from or finished Lease is
// empty (Finish does nothing). Finish and the destructor run on the worker's thread (a
// Lease may outlive its ClusterWorker).
class Lease {
 public:
  Lease() = default;
  Lease(Lease&&) noexcept;
  Lease& operator=(Lease&&) noexcept;
  ~Lease();

  // Counts the call's end on the endpoint (active requests, outlier detection through
  // Cluster::RecordOutcome) and lets waiting calls of the worker use the freed stream.
  void Finish(EndpointOutcome outcome);

  std::shared_ptr<Http2Connection> connection;
  std::shared_ptr<EndpointState> endpoint;

 private:
  friend struct ClusterWorkerImpl;
  std::shared_ptr<Cluster> cluster_;
  std::shared_ptr<PooledConnection> slot_;
  std::weak_ptr<ClusterWorkerImpl> worker_;
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
  // (max_pending_requests; max_requests; max_connections when the chosen endpoint has no
  // connection to wait for), connect failure of the chosen endpoint; DEADLINE_EXCEEDED if
  // `deadline` passes while waiting (a call that gets a stream at once is not checked
  // against `deadline`: its stream ends it).
  //
  // A call that cannot have a stream at once waits (and counts as a pending request of
  // the cluster): for a connection being opened, or for a stream of a full connection to
  // be freed (a Lease finished), or for the end of the chosen endpoint's reconnect
  // backoff. When every pending slot is taken, Acquire answers at once with the overflow.
  // A connect failure fails the calls waiting for that connection with
  // 'backend "NAME": failed to connect' (the address goes to the log, rate-limited) and
  // puts the endpoint in reconnect backoff in this worker; after the backoff the worker
  // reconnects on its own, so a restarted backend is used again within about
  // reconnect_backoff_max. A connection the backend closed or sent GOAWAY on takes no new
  // calls and is replaced in the background. If the worker is destroyed, calls still
  // waiting get UNAVAILABLE ('backend "NAME": the worker stopped').
  void Acquire(const PickOptions& pick, absl::Time deadline,
               std::function<void(absl::StatusOr<Lease>)> done);

  const std::shared_ptr<Cluster>& cluster() const { return cluster_; }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<Cluster> cluster_;
  // Pools, balancer, waiters (cluster_worker.cc); shared with timers and Leases by weak_ptr.
  std::shared_ptr<ClusterWorkerImpl> impl_;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_CLUSTER_WORKER_H_
