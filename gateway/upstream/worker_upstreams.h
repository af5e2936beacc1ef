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

  // This worker's pool and balancer for `cluster`, created on first use (a cluster may
  // appear at any time: a reloaded config brings new backends). Creating one first drops
  // the ClusterWorkers (and their connections) of clusters nobody else holds any more: a
  // backend that left the served config once its last call ended. The returned worker
  // stays valid while `cluster` is held elsewhere (by a Backend, a call, a Lease).
  ClusterWorker& For(const std::shared_ptr<Cluster>& cluster) {
    auto it = workers_.find(cluster.get());
    if (it != workers_.end()) return *it->second;
    DropUnreferenced();
    std::unique_ptr<ClusterWorker>& worker = workers_[cluster.get()];
    worker = std::make_unique<ClusterWorker>(io_, cluster);
    return *worker;
  }

  // How many clusters this worker holds a ClusterWorker for.
  size_t size() const { return workers_.size(); }

 private:
  // A ClusterWorker holds its cluster twice (itself and its pools); any other holder is a
  // Backend (in a route table or a call in flight) or a Lease of a call in flight.
  static constexpr long kOwnReferences = 2;

  void DropUnreferenced() {
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->second->cluster().use_count() <= kOwnReferences) {
        workers_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  boost::asio::io_context& io_;
  // Keyed by the cluster the ClusterWorker holds a reference to, so the key stays valid.
  absl::flat_hash_map<const Cluster*, std::unique_ptr<ClusterWorker>> workers_;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_WORKER_UPSTREAMS_H_
