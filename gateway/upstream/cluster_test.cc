// Cluster (targets, weights, circuit breakers, outlier detection, DNS) and UpstreamControl.
#include "gateway/upstream/cluster.h"

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::upstream {

// Reaches the resolver's private entry points, to feed it answers the system's DNS cannot
// be made to give on demand.
class ClusterTestPeer {
 public:
  // Feeds an answer (or a failure) to the resolver's handler, as the control thread would;
  // returns the delay until the next resolution.
  static absl::Duration Resolved(Cluster& c, boost::system::error_code ec,
                                 const std::vector<std::string>& ips) {
    std::vector<boost::asio::ip::tcp::endpoint> eps;
    for (const auto& ip : ips) eps.emplace_back(boost::asio::ip::make_address(ip), c.dns_port_);
    auto results = boost::asio::ip::tcp::resolver::results_type::create(
        eps.begin(), eps.end(), c.dns_host_, std::to_string(c.dns_port_));
    return c.OnResolved(ec, results);
  }
};

namespace {

using ::testing::HasSubstr;

ClusterOptions Options(std::string target, std::string name = "b1") {
  ClusterOptions o;
  o.name = std::move(name);
  o.target = std::move(target);
  return o;
}

std::shared_ptr<Cluster> MustCreate(ClusterOptions o) {
  absl::StatusOr<std::shared_ptr<Cluster>> c = Cluster::Create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : nullptr;
}

// Waits (polling) up to `limit` for `cond`.
template <typename F>
bool WaitFor(F cond, absl::Duration limit) {
  const absl::Time end = absl::Now() + limit;
  while (!cond()) {
    if (absl::Now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// --- Targets ---

TEST(ClusterTarget, Ipv4ListHasItsAddressesAtOnce) {
  auto c = MustCreate(Options("ipv4:127.0.0.1:5000,10.1.2.3:6000"));
  ASSERT_NE(c, nullptr);
  auto eps = c->endpoints();
  ASSERT_EQ(eps->size(), 2u);
  EXPECT_EQ((*eps)[0]->endpoint().host, "127.0.0.1");
  EXPECT_EQ((*eps)[0]->endpoint().port, 5000);
  EXPECT_EQ((*eps)[1]->endpoint().host, "10.1.2.3");
  EXPECT_EQ((*eps)[1]->endpoint().port, 6000);
  EXPECT_EQ((*eps)[0]->weight(), 1u);
  EXPECT_EQ(c->endpoints_version(), 1u);
  EXPECT_TRUE(c->resolution_status().ok());
}

TEST(ClusterTarget, Ipv6ListHasBracketedAddresses) {
  auto c = MustCreate(Options("ipv6:[::1]:5000,[fe80::2]:6000"));
  ASSERT_NE(c, nullptr);
  auto eps = c->endpoints();
  ASSERT_EQ(eps->size(), 2u);
  EXPECT_EQ((*eps)[0]->endpoint().host, "::1");
  EXPECT_EQ((*eps)[0]->endpoint().port, 5000);
  EXPECT_EQ((*eps)[0]->endpoint().authority, "[::1]:5000");
  EXPECT_EQ((*eps)[1]->endpoint().host, "fe80::2");
}

TEST(ClusterTarget, UnixPathForms) {
  for (const char* target : {"unix:/tmp/a.sock", "unix:///tmp/a.sock"}) {
    auto c = MustCreate(Options(target));
    ASSERT_NE(c, nullptr) << target;
    ASSERT_EQ(c->endpoints()->size(), 1u) << target;
    EXPECT_EQ((*c->endpoints())[0]->endpoint().unix_path, "/tmp/a.sock") << target;
  }
  auto rel = MustCreate(Options("unix:rel.sock"));
  ASSERT_NE(rel, nullptr);
  EXPECT_EQ((*rel->endpoints())[0]->endpoint().unix_path, "rel.sock");
}

TEST(ClusterTarget, IpLiteralInDnsFormResolvesToItselfAtOnce) {
  for (const char* target :
       {"127.0.0.1:7000", "dns:///127.0.0.1:7000", "dns:127.0.0.1:7000"}) {
    auto c = MustCreate(Options(target));
    ASSERT_NE(c, nullptr) << target;
    ASSERT_EQ(c->endpoints()->size(), 1u) << target;
    EXPECT_EQ((*c->endpoints())[0]->endpoint().host, "127.0.0.1") << target;
    EXPECT_EQ((*c->endpoints())[0]->endpoint().port, 7000) << target;
    EXPECT_TRUE(c->resolution_status().ok()) << target;
  }
  auto v6 = MustCreate(Options("[::1]:7001"));
  ASSERT_NE(v6, nullptr);
  ASSERT_EQ(v6->endpoints()->size(), 1u);
  EXPECT_EQ((*v6->endpoints())[0]->endpoint().host, "::1");
}

TEST(ClusterTarget, DnsNameHasNoEndpointsBeforeStart) {
  for (const char* target : {"dns:///backend.example:443", "backend.example:443"}) {
    auto c = MustCreate(Options(target, "books"));
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(c->endpoints()->empty());
    EXPECT_EQ(c->endpoints_version(), 0u);
    EXPECT_EQ(c->resolution_status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(c->resolution_status().message(),
                HasSubstr("backend \"books\": \"backend.example\" not resolved yet"));
  }
}

TEST(ClusterTarget, MalformedTargetsAreInvalidArgumentNamingTheBackend) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty target"},
      {"ipv4:", "no addresses"},
      {"ipv4:1.2.3.4:80,", "empty address"},
      {"ipv4:1.2.3:80", "is not an IPv4 address"},
      {"ipv4:[::1]:80", "is not an IPv4 address"},
      {"ipv4:1.2.3.4", "missing port"},
      {"ipv4:1.2.3.4:0", "bad port \"0\""},
      {"ipv4:1.2.3.4:65536", "bad port \"65536\""},
      {"ipv4:1.2.3.4:8x", "bad port \"8x\""},
      {"ipv6:::1:80", "needs brackets"},
      {"ipv6:[::1]", "missing port"},
      {"ipv6:[zz]:80", "is not an IPv6 address"},
      {"ipv6:127.0.0.1:80", "is not an IPv6 address"},
      {"unix:", "empty unix socket path"},
      {"unix://tmp/x", "absolute path"},
      {"dns:///", "empty host and port"},
      {"dns:///:80", "empty host in"},
      {"dns://8.8.8.8/host:53", "authority is not supported"},
      {"dns:///host", "missing port"},
      {"host:", "bad port"},
      {"bad host:80", "is not a host name"},
      {"[nope]:80", "is not an IPv6 address"},
  };
  for (const auto& [target, want] : cases) {
    absl::StatusOr<std::shared_ptr<Cluster>> c = Cluster::Create(Options(target, "shelf"));
    ASSERT_FALSE(c.ok()) << target;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << target;
    EXPECT_THAT(c.status().message(), HasSubstr("backend \"shelf\"")) << target;
    EXPECT_THAT(c.status().message(), HasSubstr(want)) << target;
  }
}

TEST(ClusterTarget, WeightsApplyInOrder) {
  ClusterOptions o = Options("ipv4:127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
  o.weights = {5, 1, 0};
  auto c = MustCreate(o);
  ASSERT_NE(c, nullptr);
  auto eps = c->endpoints();
  EXPECT_EQ((*eps)[0]->weight(), 5u);
  EXPECT_EQ((*eps)[1]->weight(), 1u);
  EXPECT_EQ((*eps)[2]->weight(), 1u);  // 0 counts as 1
}

TEST(ClusterTarget, WeightsThatDoNotMatchTheAddressesAreRefused) {
  ClusterOptions o = Options("ipv4:127.0.0.1:1,127.0.0.1:2", "x");
  o.weights = {1, 2, 3};
  absl::StatusOr<std::shared_ptr<Cluster>> c = Cluster::Create(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(), "backend \"x\": 3 weights for 2 addresses");

  ClusterOptions dns = Options("dns:///svc.local:80", "x");
  dns.weights = {1};
  c = Cluster::Create(dns);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "backend \"x\": 1 weights for a dns target (its addresses all weigh 1)");

  ClusterOptions literal = Options("127.0.0.1:80", "x");
  literal.weights = {4};
  auto ok = MustCreate(literal);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ((*ok->endpoints())[0]->weight(), 4u);
}

TEST(ClusterOptionsCheck, BadDurationsAndThresholdsAreNamed) {
  ClusterOptions o = Options("127.0.0.1:80", "y");
  o.dns_refresh_interval = absl::ZeroDuration();
  EXPECT_EQ(Cluster::Create(o).status().message(),
            "backend \"y\": dns_refresh_interval must be positive");
  o = Options("127.0.0.1:80", "y");
  o.health_check.enabled = true;
  o.health_check.unhealthy_threshold = 0;
  EXPECT_EQ(Cluster::Create(o).status().message(),
            "backend \"y\": health_check.unhealthy_threshold must be at least 1");
  o = Options("127.0.0.1:80", "y");
  o.outlier_detection.max_ejection_percent = 101;
  EXPECT_EQ(Cluster::Create(o).status().message(),
            "backend \"y\": outlier_detection.max_ejection_percent must be at most 100");
}

// --- Circuit breakers ---

TEST(ClusterCircuitBreaker, LimitIsHeldAndReleased) {
  ClusterOptions o = Options("127.0.0.1:80");
  o.circuit_breakers.max_requests = 2;
  o.circuit_breakers.max_connections = 1;
  o.circuit_breakers.max_pending_requests = 1;
  o.circuit_breakers.max_retries = 0;
  auto c = MustCreate(o);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->TryAcquireRequest());
  EXPECT_TRUE(c->TryAcquireRequest());
  EXPECT_FALSE(c->TryAcquireRequest());
  EXPECT_EQ(c->active_requests.load(), 2);
  EXPECT_EQ(c->overflows_total.load(), 1u);
  c->ReleaseRequest();
  EXPECT_TRUE(c->TryAcquireRequest());

  EXPECT_TRUE(c->TryAcquireConnection());
  EXPECT_FALSE(c->TryAcquireConnection());
  c->ReleaseConnection();
  EXPECT_EQ(c->connections.load(), 0);
  EXPECT_TRUE(c->TryAcquirePending());
  EXPECT_FALSE(c->TryAcquirePending());
  c->ReleasePending();
  EXPECT_EQ(c->pending_requests.load(), 0);
  EXPECT_FALSE(c->TryAcquireRetry());
  EXPECT_EQ(c->active_retries.load(), 0);
  EXPECT_EQ(c->overflows_total.load(), 4u);
}

TEST(ClusterCircuitBreaker, ConcurrentAcquiresNeverExceedTheLimit) {
  ClusterOptions o = Options("127.0.0.1:80");
  o.circuit_breakers.max_requests = 3;
  auto c = MustCreate(o);
  ASSERT_NE(c, nullptr);
  std::atomic<int> held{0}, max_held{0};
  std::atomic<int> granted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (!c->TryAcquireRequest()) {
          refused++;
          continue;
        }
        granted++;
        const int now = ++held;
        int m = max_held.load();
        while (now > m && !max_held.compare_exchange_weak(m, now)) {
        }
        EXPECT_LE(c->active_requests.load(), 3);
        --held;
        c->ReleaseRequest();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_held.load(), 3);
  EXPECT_EQ(c->active_requests.load(), 0);
  EXPECT_EQ(granted.load() + refused.load(), 80000);
  EXPECT_EQ(c->overflows_total.load(), static_cast<uint64_t>(refused.load()));
}

TEST(ClusterCircuitBreaker, OverflowMessageNamesBackendAndLimit) {
  auto c = MustCreate(Options("127.0.0.1:80", "books"));
  ASSERT_NE(c, nullptr);
  absl::Status s = c->Overflow("requests", "max_requests", 10000);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(),
            "backend \"books\": too many requests (circuit_breakers.max_requests = 10000)");
}

// --- Outlier detection ---

class OutlierTest : public ::testing::Test {
 protected:
  std::shared_ptr<Cluster> Make(int endpoints, uint32_t percent = 50) {
    std::string target = "ipv4:";
    for (int i = 0; i < endpoints; ++i) {
      absl::StrAppend(&target, i ? "," : "", "127.0.0.1:", 1000 + i);
    }
    ClusterOptions o = Options(target, "od");
    o.outlier_detection.consecutive_failures = 3;
    o.outlier_detection.base_ejection_time = absl::Seconds(1);
    o.outlier_detection.max_ejection_time = absl::Seconds(3);
    o.outlier_detection.max_ejection_percent = percent;
    return MustCreate(o);
  }
  void Fail(Cluster& c, EndpointState& e, int n,
            EndpointOutcome outcome = EndpointOutcome::kUnavailable) {
    for (int i = 0; i < n; ++i) c.RecordOutcome(e, outcome, now_);
  }
  absl::Time now_ = absl::FromUnixSeconds(1000000);
};

TEST_F(OutlierTest, ConsecutiveFailuresEjectForBaseTime) {
  auto c = Make(2);
  EndpointState& e = *(*c->endpoints())[0];
  Fail(*c, e, 2, EndpointOutcome::kConnectFailure);
  EXPECT_FALSE(e.ejected(now_));
  ::testing::internal::CaptureStderr();
  Fail(*c, e, 1, EndpointOutcome::kReset);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(e.ejected(now_));
  EXPECT_FALSE(e.available(now_));
  EXPECT_TRUE(e.ejected(now_ + absl::Milliseconds(999)));
  EXPECT_FALSE(e.ejected(now_ + absl::Seconds(1)));
  EXPECT_EQ(e.ejections_total.load(), 1u);
  EXPECT_EQ(e.consecutive_failures.load(), 0u);
  EXPECT_EQ(e.requests_total.load(), 3u);
  EXPECT_EQ(e.connect_failures_total.load(), 2u);
  EXPECT_THAT(log, HasSubstr("backend \"od\": endpoint 127.0.0.1:1000 ejected for 1s after 3 "
                             "consecutive failures (ejection 1)"));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1);
}

TEST_F(OutlierTest, SuccessResetsAndLocalOutcomesDoNotCount) {
  auto c = Make(2);
  EndpointState& e = *(*c->endpoints())[0];
  Fail(*c, e, 2);
  c->RecordOutcome(e, EndpointOutcome::kSuccess, now_);
  Fail(*c, e, 2);
  EXPECT_FALSE(e.ejected(now_));
  Fail(*c, e, 5, EndpointOutcome::kLocal);
  EXPECT_EQ(e.consecutive_failures.load(), 2u);
  EXPECT_FALSE(e.ejected(now_));
  Fail(*c, e, 1);
  EXPECT_TRUE(e.ejected(now_));
}

TEST_F(OutlierTest, EjectionTimeGrowsWithEjectionsUpToTheMax) {
  auto c = Make(2);
  EndpointState& e = *(*c->endpoints())[0];
  const std::vector<absl::Duration> want = {absl::Seconds(1), absl::Seconds(2), absl::Seconds(3),
                                            absl::Seconds(3)};
  for (absl::Duration d : want) {
    Fail(*c, e, 3);
    ASSERT_TRUE(e.ejected(now_));
    EXPECT_EQ(absl::FromUnixNanos(e.ejected_until_ns.load()) - now_, d);
    // Failures of calls still in flight do not extend the ejection.
    Fail(*c, e, 10);
    EXPECT_EQ(absl::FromUnixNanos(e.ejected_until_ns.load()) - now_, d);
    now_ += d;
    EXPECT_FALSE(e.ejected(now_));
  }
  EXPECT_EQ(e.ejections_total.load(), 4u);
}

TEST_F(OutlierTest, MaxEjectionPercentHoldsButOneIsAlwaysAllowed) {
  auto two = Make(2, /*percent=*/50);
  EndpointState& a = *(*two->endpoints())[0];
  EndpointState& b = *(*two->endpoints())[1];
  Fail(*two, a, 3);
  EXPECT_TRUE(a.ejected(now_));
  Fail(*two, b, 3);
  EXPECT_FALSE(b.ejected(now_));  // 2 of 2 would be 100% > 50%
  EXPECT_EQ(b.consecutive_failures.load(), 3u);
  now_ += absl::Seconds(1);  // a is back
  Fail(*two, b, 1);
  EXPECT_TRUE(b.ejected(now_));

  auto four = Make(4, 50);
  for (int i = 0; i < 4; ++i) Fail(*four, *(*four->endpoints())[i], 3);
  int ejected = 0;
  for (const auto& e : *four->endpoints()) ejected += e->ejected(now_);
  EXPECT_EQ(ejected, 2);

  auto none = Make(3, /*percent=*/0);
  Fail(*none, *(*none->endpoints())[0], 3);
  Fail(*none, *(*none->endpoints())[1], 3);
  EXPECT_TRUE((*none->endpoints())[0]->ejected(now_));
  EXPECT_FALSE((*none->endpoints())[1]->ejected(now_));
}

TEST_F(OutlierTest, DisabledDetectionNeverEjectsButCounts) {
  ClusterOptions o = Options("127.0.0.1:1");
  o.outlier_detection.enabled = false;
  auto c = MustCreate(o);
  ASSERT_NE(c, nullptr);
  EndpointState& e = *(*c->endpoints())[0];
  Fail(*c, e, 100, EndpointOutcome::kConnectFailure);
  EXPECT_FALSE(e.ejected(now_));
  EXPECT_EQ(e.requests_total.load(), 100u);
  EXPECT_EQ(e.connect_failures_total.load(), 100u);
}

TEST_F(OutlierTest, ConcurrentFailuresEjectOnceWithinThePercent) {
  auto c = Make(4, 25);
  auto eps = c->endpoints();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        c->RecordOutcome(*(*eps)[(t + i) % 4], EndpointOutcome::kReset, now_);
      }
    });
  }
  for (auto& t : threads) t.join();
  int ejected = 0;
  for (const auto& e : *eps) ejected += e->ejected(now_);
  EXPECT_EQ(ejected, 1);
}

// --- UpstreamControl ---

TEST(UpstreamControl, RunsPostedWorkOnItsOwnThread) {
  UpstreamControl control;
  std::promise<std::thread::id> ran;
  boost::asio::post(control.io(), [&] { ran.set_value(std::this_thread::get_id()); });
  auto f = ran.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_NE(f.get(), std::this_thread::get_id());
}

// --- Start / Stop and DNS ---

TEST(ClusterLifecycle, StaticTargetStartsAndStops) {
  UpstreamControl control;
  auto c = MustCreate(Options("ipv4:127.0.0.1:1"));
  ASSERT_NE(c, nullptr);
  c->Start(control);
  c->Stop();
  EXPECT_EQ(c->endpoints()->size(), 1u);
  EXPECT_EQ(c->endpoints_version(), 1u);
}

TEST(ClusterDns, LocalhostResolvesToLoopback) {
  UpstreamControl control;
  ClusterOptions o = Options("localhost:4321", "local");
  o.dns_refresh_interval = absl::Milliseconds(50);
  auto c = MustCreate(o);
  ASSERT_NE(c, nullptr);
  c->Start(control);
  ASSERT_TRUE(WaitFor([&] { return !c->endpoints()->empty(); }, absl::Seconds(10)));
  EXPECT_TRUE(c->resolution_status().ok()) << c->resolution_status();
  const uint64_t version = c->endpoints_version();
  EXPECT_GE(version, 1u);
  auto first = c->endpoints();
  std::set<std::string> hosts;
  for (const auto& e : *first) {
    hosts.insert(e->endpoint().host);
    EXPECT_EQ(e->endpoint().port, 4321);
    EXPECT_EQ(e->endpoint().authority, "localhost:4321");
  }
  for (const std::string& h : hosts) EXPECT_TRUE(h == "127.0.0.1" || h == "::1") << h;
  EXPECT_EQ(hosts.size(), first->size());  // no duplicates (one per address)

  // State kept on an endpoint survives the refreshes; the same answer is not a new version.
  (*first)[0]->ejections.store(7);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(c->endpoints_version(), version);
  EXPECT_EQ((*c->endpoints())[0].get(), (*first)[0].get());
  EXPECT_EQ((*c->endpoints())[0]->ejections.load(), 7u);
  c->Stop();
}

TEST(ClusterDns, UnresolvableNameIsUnavailableNamingTheBackend) {
  UpstreamControl control;
  auto c = MustCreate(Options("nonexistent.invalid:1", "ghost"));
  ASSERT_NE(c, nullptr);
  c->Start(control);
  ASSERT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(c->resolution_status().message(), "cannot resolve host");
      },
      absl::Seconds(20)))
      << c->resolution_status();
  EXPECT_EQ(c->resolution_status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c->resolution_status().message(),
              HasSubstr("backend \"ghost\": cannot resolve host \"nonexistent.invalid\": "));
  EXPECT_TRUE(c->endpoints()->empty());
  c->Stop();
}

TEST(ClusterDns, NewAnswersKeepTheStateOfAddressesThatStay) {
  // Not started: the test is the only resolver.
  ClusterOptions o = Options("svc.test:80", "svc");
  o.dns_refresh_interval = absl::Hours(1);
  auto c = MustCreate(o);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(ClusterTestPeer::Resolved(*c, {}, {"10.0.0.1", "10.0.0.2", "10.0.0.1"}),
            absl::Hours(1));
  auto first = c->endpoints();
  ASSERT_EQ(first->size(), 2u);  // duplicates dropped
  EXPECT_EQ((*first)[0]->endpoint().authority, "svc.test:80");
  const uint64_t v1 = c->endpoints_version();
  (*first)[1]->set_healthy(false);
  (*first)[1]->ejections.store(3);

  // Same addresses in another order: nothing changes.
  ClusterTestPeer::Resolved(*c, {}, {"10.0.0.2", "10.0.0.1"});
  EXPECT_EQ(c->endpoints_version(), v1);
  EXPECT_EQ(c->endpoints().get(), first.get());

  // 10.0.0.1 goes, 10.0.0.3 comes: a new version; 10.0.0.2 keeps its state.
  ClusterTestPeer::Resolved(*c, {}, {"10.0.0.3", "10.0.0.2"});
  EXPECT_GT(c->endpoints_version(), v1);
  auto second = c->endpoints();
  ASSERT_EQ(second->size(), 2u);
  EXPECT_EQ((*second)[0]->endpoint().host, "10.0.0.3");
  EXPECT_EQ((*second)[1].get(), (*first)[1].get());
  EXPECT_FALSE((*second)[1]->healthy());
  EXPECT_EQ((*second)[1]->ejections.load(), 3u);
  EXPECT_TRUE((*second)[0]->healthy());

  // A failure keeps the last good endpoints and says why.
  const uint64_t v2 = c->endpoints_version();
  EXPECT_EQ(ClusterTestPeer::Resolved(*c, boost::asio::error::host_not_found, {}),
            absl::Seconds(1));  // retried sooner
  EXPECT_EQ(c->endpoints_version(), v2);
  EXPECT_EQ(c->endpoints()->size(), 2u);
  EXPECT_EQ(c->resolution_status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c->resolution_status().message(),
              HasSubstr("backend \"svc\": cannot resolve host \"svc.test\": "));
  // An answer again clears it.
  ClusterTestPeer::Resolved(*c, {}, {"10.0.0.3", "10.0.0.2"});
  EXPECT_TRUE(c->resolution_status().ok());
  EXPECT_EQ(c->endpoints_version(), v2);
}

TEST(ClusterDns, DestroyedRightAfterStopWhileResolving) {
  UpstreamControl control;
  for (int i = 0; i < 20; ++i) {
    ClusterOptions o = Options(i % 2 ? "localhost:80" : "nonexistent.invalid:1");
    o.dns_refresh_interval = absl::Milliseconds(1);
    auto c = MustCreate(o);
    ASSERT_NE(c, nullptr);
    c->Start(control);
    std::this_thread::sleep_for(std::chrono::milliseconds(i % 5));
    c->Stop();
    c.reset();
  }
  // Dropping a started cluster without Stop() stops it too.
  auto c = MustCreate(Options("localhost:80"));
  c->Start(control);
  c.reset();
}

}  // namespace
}  // namespace gateway::upstream
