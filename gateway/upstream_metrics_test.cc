#include "gateway/upstream_metrics.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::shared_ptr<Backend> MakeBackend(const std::string& name, const std::string& target) {
  config::v1::Backend config;
  config.set_name(name);
  config.set_target(target);
  absl::StatusOr<std::shared_ptr<Backend>> backend =
      Backend::Create(config, config::v1::Limits(), "", "backends[0]");
  EXPECT_TRUE(backend.ok()) << backend.status();
  return *backend;
}

TEST(EndpointLabel, NamesAddressesNotAuthorities) {
  EXPECT_EQ(EndpointLabel(upstream::Endpoint::Tcp("10.0.0.1", 50051)), "10.0.0.1:50051");
  EXPECT_EQ(EndpointLabel(upstream::Endpoint::Tcp("::1", 8443)), "[::1]:8443");
  EXPECT_EQ(EndpointLabel(upstream::Endpoint::Unix("/run/b.sock")), "unix:/run/b.sock");
}

TEST(UpstreamMetrics, ExportsClusterCountersAtScrape) {
  metrics::MetricRegistry registry;
  std::shared_ptr<Backend> shelves = MakeBackend("shelves", "ipv4:127.0.0.1:1,127.0.0.2:2");
  std::shared_ptr<Backend> books = MakeBackend("books", "unix:/tmp/books.sock");
  AddUpstreamMetrics(registry, {shelves, books});

  // Nothing happened yet: every endpoint and backend has its series at 0 (health: 1).
  std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr("# TYPE gateway_upstream_requests_total counter\n"));
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_requests_total{backend=\"shelves\",endpoint=\"127.0.0.1:1\"} 0\n"));
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_requests_total{backend=\"shelves\",endpoint=\"127.0.0.2:2\"} 0\n"));
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_endpoint_healthy{backend=\"books\",endpoint=\"unix:/tmp/books.sock\"} "
      "1\n"));
  EXPECT_THAT(page, HasSubstr("gateway_upstream_pending_requests{backend=\"books\"} 0\n"));
  EXPECT_THAT(page, HasSubstr("# TYPE gateway_upstream_request_duration_seconds histogram\n"));

  // The values are the clusters' own, read at each scrape.
  upstream::Cluster& c = *shelves->cluster();
  upstream::EndpointState& first = *(*c.endpoints())[0];
  upstream::EndpointState& second = *(*c.endpoints())[1];
  first.requests_total += 7;
  second.requests_total += 2;
  second.connect_failures_total += 3;
  second.ejections_total += 1;
  second.ejected_until_ns = absl::ToUnixNanos(absl::Now() + absl::Hours(1));
  first.set_healthy(false);
  first.active_requests += 4;
  c.active_requests += 5;
  c.pending_requests += 6;
  c.connections += 2;
  c.active_retries += 1;
  c.request_overflows_total += 8;
  c.retry_overflows_total += 9;
  c.retries_total += 10;
  c.transparent_retries_total += 11;
  c.retries_exhausted_total += 12;
  c.retries_budget_exceeded_total += 13;
  c.retries_succeeded_total += 14;
  page = registry.Render();
  for (const char* line : {
           "gateway_upstream_requests_total{backend=\"shelves\",endpoint=\"127.0.0.1:1\"} 7\n",
           "gateway_upstream_requests_total{backend=\"shelves\",endpoint=\"127.0.0.2:2\"} 2\n",
           "gateway_upstream_connect_failures_total{backend=\"shelves\",endpoint=\"127.0.0.2:2\"} "
           "3\n",
           "gateway_upstream_ejections_total{backend=\"shelves\",endpoint=\"127.0.0.2:2\"} 1\n",
           "gateway_upstream_endpoint_ejected{backend=\"shelves\",endpoint=\"127.0.0.2:2\"} 1\n",
           "gateway_upstream_endpoint_ejected{backend=\"shelves\",endpoint=\"127.0.0.1:1\"} 0\n",
           "gateway_upstream_endpoint_healthy{backend=\"shelves\",endpoint=\"127.0.0.1:1\"} 0\n",
           "gateway_upstream_endpoint_active_requests{backend=\"shelves\",endpoint=\"127.0.0.1:1\"}"
           " 4\n",
           "gateway_upstream_active_requests{backend=\"shelves\"} 5\n",
           "gateway_upstream_pending_requests{backend=\"shelves\"} 6\n",
           "gateway_upstream_connections{backend=\"shelves\"} 2\n",
           "gateway_upstream_active_retries{backend=\"shelves\"} 1\n",
           "gateway_upstream_overflows_total{backend=\"shelves\",limit=\"max_requests\"} 8\n",
           "gateway_upstream_overflows_total{backend=\"shelves\",limit=\"max_retries\"} 9\n",
           "gateway_upstream_overflows_total{backend=\"shelves\",limit=\"max_connections\"} 0\n",
           "gateway_upstream_retries_total{backend=\"shelves\",outcome=\"retried\"} 10\n",
           "gateway_upstream_retries_total{backend=\"shelves\",outcome=\"transparent\"} 11\n",
           "gateway_upstream_retries_total{backend=\"shelves\",outcome=\"exhausted\"} 12\n",
           "gateway_upstream_retries_total{backend=\"shelves\",outcome=\"budget_exceeded\"} 13\n",
           "gateway_upstream_retries_total{backend=\"shelves\",outcome=\"succeeded_after_retry\"} "
           "14\n",
           "gateway_upstream_active_requests{backend=\"books\"} 0\n",
       }) {
    EXPECT_THAT(page, HasSubstr(line));
  }
  c.active_requests -= 5;
  EXPECT_THAT(registry.Render(),
              HasSubstr("gateway_upstream_active_requests{backend=\"shelves\"} 0\n"));
}

TEST(UpstreamMetrics, AttachesOneDurationSeriesPerBackend) {
  metrics::MetricRegistry registry;
  std::shared_ptr<Backend> shelves = MakeBackend("shelves", "ipv4:127.0.0.1:1");
  std::shared_ptr<Backend> books = MakeBackend("books", "ipv4:127.0.0.1:2");
  EXPECT_EQ(shelves->cluster()->call_duration.load(), nullptr);
  AddUpstreamMetrics(registry, {shelves, books});
  metrics::Histogram* h = shelves->cluster()->call_duration.load();
  ASSERT_NE(h, nullptr);
  ASSERT_NE(books->cluster()->call_duration.load(), nullptr);
  EXPECT_NE(books->cluster()->call_duration.load(), h);
  h->ObserveDuration(absl::Milliseconds(3));
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_request_duration_seconds_count{backend=\"shelves\"} 1\n"));
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_request_duration_seconds_bucket{backend=\"shelves\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_request_duration_seconds_count{backend=\"books\"} 0\n"));
  EXPECT_THAT(page, Not(HasSubstr("backend=\"other\"")));
}

TEST(UpstreamMetrics, ExtraBackendsJoinTheConfiguredOnesEachOnce) {
  metrics::MetricRegistry registry;
  std::shared_ptr<Backend> books = MakeBackend("books", "ipv4:127.0.0.1:1");
  std::shared_ptr<Backend> own = MakeBackend("pay.v1.Pay", "ipv4:127.0.0.1:2");
  std::shared_ptr<UpstreamMetricsTargets> targets = AddUpstreamMetrics(registry, {books});
  EXPECT_THAT(registry.Render(), Not(HasSubstr("backend=\"pay.v1.Pay\"")));
  // A published table serves `books` (again) and a registration's own backend.
  targets->SetExtra({books, own, own});
  EXPECT_EQ(targets->clusters().size(), 2u);
  const std::string page = registry.Render();
  EXPECT_THAT(page, HasSubstr(
      "gateway_upstream_requests_total{backend=\"pay.v1.Pay\",endpoint=\"127.0.0.1:2\"} 0\n"));
  EXPECT_THAT(page, HasSubstr("gateway_upstream_pending_requests{backend=\"books\"} 0\n"));
  // A config reload replaces the configured ones and keeps the extra ones; a table without
  // the registration drops it.
  std::shared_ptr<Backend> shelves = MakeBackend("shelves", "ipv4:127.0.0.1:3");
  targets->Set({shelves});
  EXPECT_EQ(targets->clusters().size(), 3u);
  targets->SetExtra({});
  EXPECT_EQ(targets->clusters().size(), 1u);
  // (Its duration histogram stays, as a config backend's does after a reload.)
  EXPECT_THAT(registry.Render(),
              Not(HasSubstr("gateway_upstream_pending_requests{backend=\"pay.v1.Pay\"}")));
}

}  // namespace
}  // namespace gateway
