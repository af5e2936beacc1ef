#include "gateway/upstream/worker_upstreams.h"

#include <memory>

#include <boost/asio/io_context.hpp>

#include "gateway/upstream/cluster.h"
#include "gtest/gtest.h"

namespace gateway::upstream {
namespace {

std::shared_ptr<Cluster> MakeCluster(const std::string& name) {
  ClusterOptions options;
  options.name = name;
  options.target = "ipv4:127.0.0.1:1";
  absl::StatusOr<std::shared_ptr<Cluster>> cluster = Cluster::Create(options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *cluster : nullptr;
}

TEST(WorkerUpstreams, SameClusterSameWorker) {
  boost::asio::io_context io;
  WorkerUpstreams upstreams(io);
  std::shared_ptr<Cluster> a = MakeCluster("a");
  ClusterWorker& first = upstreams.For(a);
  EXPECT_EQ(&upstreams.For(a), &first);
  EXPECT_EQ(first.cluster(), a);
  EXPECT_EQ(upstreams.size(), 1u);
}

TEST(WorkerUpstreams, ClusterAppearingLaterGetsAWorkerAndDroppedOnesAreReleased) {
  boost::asio::io_context io;
  WorkerUpstreams upstreams(io);
  std::shared_ptr<Cluster> a = MakeCluster("a");
  std::shared_ptr<Cluster> b = MakeCluster("b");
  upstreams.For(a);
  ClusterWorker& for_b = upstreams.For(b);
  EXPECT_EQ(for_b.cluster(), b);
  EXPECT_EQ(upstreams.size(), 2u);

  // "a" leaves the config: once nobody else holds it, the next new cluster drops its
  // worker, which releases the cluster.
  std::weak_ptr<Cluster> weak_a = a;
  a.reset();
  EXPECT_FALSE(weak_a.expired());  // still held by its ClusterWorker
  std::shared_ptr<Cluster> c = MakeCluster("c");
  EXPECT_EQ(upstreams.For(c).cluster(), c);
  EXPECT_EQ(upstreams.size(), 2u);
  EXPECT_TRUE(weak_a.expired());
  // "b" is still held, so its worker is kept.
  EXPECT_EQ(&upstreams.For(b), &for_b);
}

}  // namespace
}  // namespace gateway::upstream
