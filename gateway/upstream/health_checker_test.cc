// HealthChecker (and a Cluster's health checks) against grpc++ servers in this process.
#include "gateway/upstream/health_checker.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testdata/echo.grpc.pb.h"

namespace gateway::upstream {
namespace {

using ::testing::HasSubstr;

// Runs `fn` on the control thread and returns its result.
template <typename F>
auto OnControl(UpstreamControl& control, F fn) -> decltype(fn()) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  boost::asio::post(control.io(), [&task] { task(); });
  return result.get();
}

template <typename F>
bool WaitFor(F cond, absl::Duration limit) {
  const absl::Time end = absl::Now() + limit;
  while (!cond()) {
    if (absl::Now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class EchoService final : public gateway::test::v1::Echo::Service {};

// A grpc++ server on 127.0.0.1, with or without the default health service.
class Backend {
 public:
  explicit Backend(bool health_service) {
    grpc::EnableDefaultHealthCheckService(health_service);
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    grpc::EnableDefaultHealthCheckService(false);
  }
  ~Backend() { server_->Shutdown(std::chrono::system_clock::now()); }
  int port() const { return port_; }
  void SetServing(const std::string& service, bool serving) {
    server_->GetHealthCheckService()->SetServingStatus(service, serving);
  }
  grpc::Server* server() { return server_.get(); }

 private:
  EchoService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

std::shared_ptr<EndpointState> Loopback(int port) {
  return std::make_shared<EndpointState>(Endpoint::Tcp("127.0.0.1", static_cast<uint16_t>(port)),
                                         1);
}

HealthCheckOptions MakeChecks(absl::Duration interval, uint32_t healthy, uint32_t unhealthy,
                          std::string service = "") {
  HealthCheckOptions o;
  o.enabled = true;
  o.service = std::move(service);
  o.interval = interval;
  o.timeout = absl::Seconds(1);
  o.healthy_threshold = healthy;
  o.unhealthy_threshold = unhealthy;
  return o;
}

class HealthCheckerTest : public ::testing::Test {
 protected:
  void Start(HealthCheckOptions options, EndpointSet endpoints) {
    checker_ = std::make_shared<HealthChecker>(control_.io(), "books", options,
                                               ConnectionOptions());
    OnControl(control_, [&] {
      checker_->Update(endpoints);
      return 0;
    });
  }
  uint64_t ChecksDone() {
    return OnControl(control_, [&] { return checker_->checks_total(); });
  }
  void TearDown() override {
    if (checker_) {
      OnControl(control_, [&] {
        checker_->Stop();
        checker_.reset();
        return 0;
      });
    }
  }
  UpstreamControl control_;
  std::shared_ptr<HealthChecker> checker_;
};

TEST(HealthCheckProto, EncodesRequestAndDecodesStatus) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(EncodeHealthCheckRequest("svc"), std::string("\x0a\x03svc"));
  const std::string long_name(200, 'x');
  EXPECT_EQ(EncodeHealthCheckRequest(long_name), std::string("\x0a\xc8\x01") + long_name);

  EXPECT_EQ(DecodeHealthCheckStatus("").value(), 0u);
  EXPECT_EQ(DecodeHealthCheckStatus(std::string("\x08\x01")).value(), kHealthServing);
  EXPECT_EQ(DecodeHealthCheckStatus(std::string("\x08\x02")).value(), 2u);
  // Unknown fields of every wire type are skipped.
  EXPECT_EQ(DecodeHealthCheckStatus(std::string("\x12\x02" "ab" "\x18\x96\x01"
                                                "\x21\x00\x00\x00\x00\x00\x00\x00\x00"
                                                "\x2d\x00\x00\x00\x00" "\x08\x01", 23))
                .value(),
            1u);
  for (const std::string& bad :
       {std::string("\x08"), std::string("\x12\x05" "ab"), std::string("\x0b"),
        std::string("\x21\x00"), std::string("\x00\x01", 2)}) {
    absl::StatusOr<uint64_t> s = DecodeHealthCheckStatus(bad);
    ASSERT_FALSE(s.ok()) << bad.size();
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.status().message(), HasSubstr("HealthCheckResponse"));
  }
}

TEST_F(HealthCheckerTest, ServingEndpointStaysHealthyAndIsCheckedEveryInterval) {
  Backend backend(/*health_service=*/true);
  backend.SetServing("svc", true);
  auto e = Loopback(backend.port());
  const absl::Time start = absl::Now();
  Start(MakeChecks(absl::Milliseconds(50), 1, 1, "svc"), {e});
  ASSERT_TRUE(WaitFor([&] { return ChecksDone() >= 4; }, absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));  // 3 intervals between 4 checks
  EXPECT_TRUE(e->healthy());
}

TEST_F(HealthCheckerTest, NotServingFlipsAfterTheThresholdAndBack) {
  Backend backend(true);
  backend.SetServing("svc", true);
  auto e = Loopback(backend.port());
  const absl::Duration interval = absl::Milliseconds(100);
  ::testing::internal::CaptureStderr();
  Start(MakeChecks(interval, /*healthy=*/2, /*unhealthy=*/3, "svc"), {e});
  ASSERT_TRUE(WaitFor([&] { return ChecksDone() >= 1; }, absl::Seconds(10)));
  ASSERT_TRUE(e->healthy());

  backend.SetServing("svc", false);
  absl::Time flipped = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return !e->healthy(); }, absl::Seconds(10)));
  const absl::Duration to_unhealthy = absl::Now() - flipped;
  // Three failed checks: at least two intervals apart from the first, within about
  // interval x threshold (plus the checks' own time).
  EXPECT_GE(to_unhealthy, interval * 2 - absl::Milliseconds(10));
  EXPECT_LT(to_unhealthy, interval * 3 + absl::Seconds(1));

  backend.SetServing("svc", true);
  flipped = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return e->healthy(); }, absl::Seconds(10)));
  const absl::Duration to_healthy = absl::Now() - flipped;
  EXPECT_GE(to_healthy, interval - absl::Milliseconds(10));
  EXPECT_LT(to_healthy, interval * 2 + absl::Seconds(1));

  // Let a few more checks pass: the verdicts were logged once each.
  const uint64_t checks = ChecksDone();
  ASSERT_TRUE(WaitFor([&] { return ChecksDone() >= checks + 3; }, absl::Seconds(10)));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(CountLines(log, "is unhealthy"), 1) << log;
  EXPECT_EQ(CountLines(log, "is healthy"), 1) << log;
  EXPECT_THAT(log, HasSubstr(absl::StrCat("backend \"books\": endpoint 127.0.0.1:",
                                          backend.port(),
                                          " is unhealthy (health check: NOT_SERVING)")));
}

TEST_F(HealthCheckerTest, ServerWithoutHealthServiceIsUnhealthyAtTheFirstCheck) {
  Backend backend(/*health_service=*/false);
  auto e = Loopback(backend.port());
  ::testing::internal::CaptureStderr();
  // A long interval and threshold: only the first check can have decided.
  Start(MakeChecks(absl::Seconds(30), 1, 5), {e});
  const bool flipped = WaitFor([&] { return !e->healthy(); }, absl::Seconds(5));
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(flipped);
  EXPECT_EQ(ChecksDone(), 1u);
  EXPECT_THAT(log, HasSubstr(absl::StrCat("backend \"books\": endpoint 127.0.0.1:", backend.port(),
                                          " is unhealthy (health check: UNIMPLEMENTED)")));
}

TEST_F(HealthCheckerTest, UnknownServiceIsUnhealthy) {
  Backend backend(true);
  auto e = Loopback(backend.port());
  Start(MakeChecks(absl::Seconds(30), 1, 1, "no.such.Service"), {e});
  EXPECT_TRUE(WaitFor([&] { return !e->healthy(); }, absl::Seconds(5)));
}

TEST_F(HealthCheckerTest, RefusedConnectionIsUnhealthy) {
  int port;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(
        io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  auto e = Loopback(port);
  Start(MakeChecks(absl::Seconds(30), 1, 3), {e});
  EXPECT_TRUE(WaitFor([&] { return !e->healthy(); }, absl::Seconds(5)));
}

TEST_F(HealthCheckerTest, SilentServerTimesOut) {
  // Accepts TCP connections (the kernel's backlog) and never speaks HTTP/2.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  auto e = Loopback(silent.local_endpoint().port());
  HealthCheckOptions o = MakeChecks(absl::Seconds(30), 1, 1);
  o.timeout = absl::Milliseconds(200);
  const absl::Time start = absl::Now();
  Start(o, {e});
  ASSERT_TRUE(WaitFor([&] { return !e->healthy(); }, absl::Seconds(5)));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(190));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST_F(HealthCheckerTest, UpdateAddsAndRemovesChecks) {
  Backend backend(/*health_service=*/false);  // every check fails
  auto a = Loopback(backend.port());
  auto b = Loopback(backend.port());
  Start(MakeChecks(absl::Milliseconds(20), 1, 1), {a});
  ASSERT_TRUE(WaitFor([&] { return !a->healthy(); }, absl::Seconds(5)));
  EXPECT_TRUE(b->healthy());

  OnControl(control_, [&] {
    checker_->Update({b});
    return 0;
  });
  EXPECT_EQ(OnControl(control_, [&] { return checker_->checked_endpoints(); }), 1u);
  ASSERT_TRUE(WaitFor([&] { return !b->healthy(); }, absl::Seconds(5)));
  // `a` is no longer checked: nothing sets it back.
  a->set_healthy(true);
  const uint64_t checks = ChecksDone();
  ASSERT_TRUE(WaitFor([&] { return ChecksDone() >= checks + 5; }, absl::Seconds(10)));
  EXPECT_TRUE(a->healthy());
  EXPECT_FALSE(b->healthy());

  OnControl(control_, [&] {
    checker_->Update({});
    return 0;
  });
  EXPECT_EQ(OnControl(control_, [&] { return checker_->checked_endpoints(); }), 0u);
}

TEST_F(HealthCheckerTest, StopEndsChecksInFlight) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  auto e = Loopback(silent.local_endpoint().port());
  Start(MakeChecks(absl::Seconds(30), 1, 1), {e});  // the check waits for its 1 s timeout
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  OnControl(control_, [&] {
    checker_->Stop();
    checker_->Update({e});  // no effect after Stop
    return checker_->checked_endpoints();
  });
  EXPECT_EQ(OnControl(control_, [&] { return checker_->checked_endpoints(); }), 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_TRUE(e->healthy());  // the stopped check decided nothing
  EXPECT_EQ(ChecksDone(), 0u);
}

// --- Through a Cluster ---

TEST(ClusterHealthCheck, StartedClusterChecksItsEndpoints) {
  Backend good(true);
  Backend bad(false);
  UpstreamControl control;
  ClusterOptions o;
  o.name = "shelves";
  o.target = absl::StrCat("ipv4:127.0.0.1:", good.port(), ",127.0.0.1:", bad.port());
  o.health_check = MakeChecks(absl::Milliseconds(50), 1, 1);
  auto cluster = Cluster::Create(o);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto c = *cluster;
  auto eps = c->endpoints();
  c->Start(control);
  ASSERT_TRUE(WaitFor([&] { return !(*eps)[1]->healthy(); }, absl::Seconds(5)));
  EXPECT_TRUE((*eps)[0]->healthy());
  EXPECT_FALSE((*eps)[1]->available(absl::Now()));

  // The server as a whole ("") stops serving: the good endpoint goes too.
  good.SetServing("", false);
  EXPECT_TRUE(WaitFor([&] { return !(*eps)[0]->healthy(); }, absl::Seconds(5)));
  c->Stop();
  c.reset();
}

TEST(ClusterHealthCheck, EndpointsFoundByDnsAreChecked) {
  Backend bad(/*health_service=*/false);
  UpstreamControl control;
  ClusterOptions o;
  o.name = "shelves";
  o.target = absl::StrCat("localhost:", bad.port());
  o.health_check = MakeChecks(absl::Seconds(30), 1, 1);
  auto c = Cluster::Create(o).value();
  EXPECT_TRUE(c->endpoints()->empty());
  c->Start(control);
  // Every address of localhost (127.0.0.1, perhaps ::1) gets a check, and fails it.
  EXPECT_TRUE(WaitFor(
      [&] {
        auto eps = c->endpoints();
        return !eps->empty() && std::none_of(eps->begin(), eps->end(),
                                             [](const auto& e) { return e->healthy(); });
      },
      absl::Seconds(10)));
  c->Stop();
}

TEST(ClusterHealthCheck, DroppedWithoutStopWhileChecking) {
  // Accepts TCP connections and never answers: the checks stay in flight.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  UpstreamControl control;
  for (int i = 0; i < 10; ++i) {
    ClusterOptions o;
    o.name = "shelves";
    o.target = absl::StrCat("ipv4:127.0.0.1:", silent.local_endpoint().port());
    o.health_check = MakeChecks(absl::Milliseconds(1), 1, 1);
    o.health_check.timeout = absl::Milliseconds(20);
    auto c = Cluster::Create(o).value();
    c->Start(control);
    std::this_thread::sleep_for(std::chrono::milliseconds(i * 5));
    c.reset();  // ~Cluster stops the checks
  }
}

TEST(ClusterHealthCheck, DisabledChecksLeaveEndpointsHealthy) {
  Backend bad(false);
  UpstreamControl control;
  ClusterOptions o;
  o.name = "shelves";
  o.target = absl::StrCat("127.0.0.1:", bad.port());
  auto c = Cluster::Create(o).value();
  c->Start(control);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE((*c->endpoints())[0]->healthy());
  c->Stop();
}

}  // namespace
}  // namespace gateway::upstream
