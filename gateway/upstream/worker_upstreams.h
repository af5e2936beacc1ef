// WorkerUpstreams: one worker thread's ClusterWorkers, one per cluster it has called,
// created on first use. Belongs to the worker's io_context thread (not thread-safe).
//
//   WorkerUpstreams upstreams(io);
//   auto call = BackendCall::Start(upstreams.For(backend.cluster()), spec, callbacks);
#ifndef GATEWAY_UPSTREAM_WORKER_UPSTREAMS_H_
#define GATEWAY_UPSTREAM_WORKER_UPSTREAMS_H_

#include <memory>

#include <boost/asio/io_context.hpp>

#include "absl/container/flat_hash_map.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/cluster_worker.h"

namespace gateway::upstream {

class WorkerUpstreams {
 public:
  explicit WorkerUpstreams(boost::asio::io_context& io) : io_(io) {}
  WorkerUpstreams(const WorkerUpstreams&) = delete;
  WorkerUpstreams& operator=(const WorkerUpstreams&) = delete;

  // This worker's pool and balancer for `cluster` (kept alive while this object is).
  ClusterWorker& For(const std::shared_ptr<Cluster>& cluster) {
    std::unique_ptr<ClusterWorker>& worker = workers_[cluster.get()];
    if (worker == nullptr) worker = std::make_unique<ClusterWorker>(io_, cluster);
    return *worker;
  }

 private:
  boost::asio::io_context& io_;
  // Keyed by the cluster the ClusterWorker holds a reference to, so the key stays valid.
  absl::flat_hash_map<const Cluster*, std::unique_ptr<ClusterWorker>> workers_;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_WORKER_UPSTREAMS_H_
