// ClusterWorker against real grpc++ backends in this process, on 127.0.0.1.
#include "gateway/upstream/cluster_worker.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "gateway/upstream/test_loop.h"
#include "tests/testdata/echo.grpc.pb.h"

namespace gateway::upstream {

// Publishes an endpoint set as the resolver does (Cluster befriends this name for tests).
class ClusterTestPeer {
 public:
  static void SetEndpoints(Cluster& cluster, EndpointSet set) {
    cluster.SetEndpoints(std::move(set));
  }
};

namespace {

using ::gateway::test::v1::Echo;
using ::gateway::test::v1::EchoRequest;
using ::gateway::test::v1::EchoResponse;

class CountingEcho final : public Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* ctx, const EchoRequest* req,
                     EchoResponse* resp) override {
    calls++;
    for (int i = 0; i < req->sleep_ms() && !ctx->IsCancelled(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    resp->set_payload(req->payload());
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

// One backend; Stop() and Start() again on the same port.
struct Backend {
  void Start(int max_streams = 0) {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    if (max_streams > 0) builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, max_streams);
    int bound = 0;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                             &bound);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
    ASSERT_NE(server, nullptr);
    ASSERT_GT(bound, 0);
    port = bound;
  }
  void Stop() {
    if (!server) return;
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    server.reset();
  }
  ~Backend() { Stop(); }

  CountingEcho service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

// One call through the worker: Acquire, a unary Echo on the lease, Finish.
struct Call {
  std::optional<absl::Status> acquire;  // set when Acquire answered
  bool acquired_inline = false;
  bool returned = false;  // Acquire returned
  std::optional<CallResult> result;     // set when the call ended
  int port = 0;
  Http2Connection* conn = nullptr;
  std::shared_ptr<GrpcStream> stream;
  bool finished() const { return result.has_value() || (acquire && !acquire->ok()); }
};

class ClusterWorkerTest : public ::testing::Test {
 protected:
  void StartBackends(int n, int max_streams = 0) {
    for (int i = 0; i < n; ++i) {
      backends_.push_back(std::make_unique<Backend>());
      backends_.back()->Start(max_streams);
    }
  }

  ClusterOptions Options(LbPolicy policy) {
    ClusterOptions o;
    o.name = "echo";
    std::vector<std::string> addrs;
    for (const auto& b : backends_) addrs.push_back(absl::StrCat("127.0.0.1:", b->port));
    o.target = "ipv4:" + absl::StrJoin(addrs, ",");
    o.lb_policy = policy;
    o.connection.connect_timeout = absl::Seconds(2);
    o.reconnect_backoff_base = absl::Milliseconds(50);
    o.reconnect_backoff_max = absl::Milliseconds(400);
    o.outlier_detection.enabled = false;
    return o;
  }

  void MakeWorker(ClusterOptions o) {
    auto c = Cluster::Create(std::move(o));
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *c;
    worker_ = std::make_unique<ClusterWorker>(io_, cluster_);
  }

  template <typename F>
  bool RunUntil(F done, absl::Duration limit = absl::Seconds(10)) {
    return RunLoopUntil(io_, done, limit, std::chrono::milliseconds(2));
  }
  void RunFor(absl::Duration d) {
    RunUntil([] { return false; }, d);
  }

  std::shared_ptr<Call> Start(int sleep_ms = 0, PickOptions pick = {},
                              absl::Duration timeout = absl::Seconds(5)) {
    auto call = std::make_shared<Call>();
    worker_->Acquire(pick, absl::Now() + timeout, [call, sleep_ms](absl::StatusOr<Lease> lease) {
      call->acquire = lease.status();
      call->acquired_inline = !call->returned;
      if (!lease.ok()) return;
      auto held = std::make_shared<Lease>(std::move(*lease));
      call->port = held->endpoint->endpoint().port;
      call->conn = held->connection.get();
      GrpcStreamCallbacks cb;
      std::weak_ptr<Call> weak = call;
      cb.on_message = [weak](std::string) {
        if (auto c = weak.lock(); c && c->stream) c->stream->RequestNext();
      };
      cb.on_done = [call, held](const CallResult& r) {
        call->result = r;
        call->stream = nullptr;
        held->Finish(r.status.ok() ? EndpointOutcome::kSuccess : EndpointOutcome::kUnavailable);
      };
      auto s = held->connection->StartStream({"/gateway.test.v1.Echo/Unary"}, std::move(cb));
      ASSERT_TRUE(s.ok()) << s.status();
      call->stream = *s;
      EchoRequest req;
      req.set_payload("x");
      req.set_sleep_ms(sleep_ms);
      ASSERT_TRUE(call->stream->Write(req.SerializeAsString()).ok());
      call->stream->WritesDone();
    });
    call->returned = true;
    return call;
  }

  // One call after the other; returns the backend port each went to (0: failed).
  std::vector<int> Sequential(int n) {
    std::vector<int> ports;
    for (int i = 0; i < n; ++i) {
      auto call = Start();
      EXPECT_TRUE(RunUntil([&] { return call->finished(); }));
      const bool ok = call->result && call->result->status.ok();
      EXPECT_TRUE(ok) << (call->acquire && !call->acquire->ok() ? *call->acquire
                                                                 : call->result->status);
      ports.push_back(ok ? call->port : 0);
    }
    return ports;
  }

  std::vector<int> Counts() {
    std::vector<int> n;
    for (const auto& b : backends_) n.push_back(b->service.calls.load());
    return n;
  }

  void TearDown() override {
    worker_.reset();
    RunFor(absl::Milliseconds(20));
    if (cluster_) {
      EXPECT_EQ(cluster_->connections.load(), 0);
      EXPECT_EQ(cluster_->pending_requests.load(), 0);
      EXPECT_EQ(cluster_->active_requests.load(), 0);
    }
  }

  boost::asio::io_context io_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::shared_ptr<Cluster> cluster_;
  std::unique_ptr<ClusterWorker> worker_;
};

TEST_F(ClusterWorkerTest, RoundRobinSpreadsCallsByWeight) {
  StartBackends(3);
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.weights = {1, 2, 3};
  MakeWorker(o);
  Sequential(60);
  EXPECT_EQ(Counts(), (std::vector<int>{10, 20, 30}));
  // One connection per endpoint served them all.
  EXPECT_EQ(cluster_->connections.load(), 3);
}

TEST_F(ClusterWorkerTest, ConcurrentCallsAtStartReachEveryEndpoint) {
  StartBackends(3);
  MakeWorker(Options(LbPolicy::kRoundRobin));
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < 30; ++i) calls.push_back(Start());
  ASSERT_TRUE(RunUntil([&] {
    for (auto& c : calls) {
      if (!c->finished()) return false;
    }
    return true;
  }));
  for (auto& c : calls) ASSERT_TRUE(c->result && c->result->status.ok());
  for (int n : Counts()) EXPECT_GE(n, 5);
}

TEST_F(ClusterWorkerTest, LeaseCountsActiveRequestsUntilFinished) {
  StartBackends(1);
  MakeWorker(Options(LbPolicy::kRoundRobin));
  std::optional<absl::StatusOr<Lease>> got;
  worker_->Acquire({}, absl::Now() + absl::Seconds(5),
                   [&](absl::StatusOr<Lease> l) { got = std::move(l); });
  ASSERT_TRUE(RunUntil([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->status();
  Lease lease = std::move(**got);
  EXPECT_EQ(lease.connection->state(), Http2Connection::State::kReady);
  EXPECT_EQ(lease.endpoint->active_requests.load(), 1);
  EXPECT_EQ(cluster_->active_requests.load(), 1);
  Lease moved = std::move(lease);
  EXPECT_EQ(lease.endpoint, nullptr);
  lease.Finish(EndpointOutcome::kSuccess);  // empty: nothing
  EXPECT_EQ(cluster_->active_requests.load(), 1);
  auto endpoint = moved.endpoint;
  moved.Finish(EndpointOutcome::kSuccess);
  moved.Finish(EndpointOutcome::kSuccess);  // once only
  EXPECT_EQ(endpoint->active_requests.load(), 0);
  EXPECT_EQ(cluster_->active_requests.load(), 0);
  EXPECT_EQ(endpoint->requests_total.load(), 1u);
  // The next Acquire finds the ready connection: inline.
  auto call = Start();
  EXPECT_TRUE(call->acquired_inline);
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  {
    // A Lease dropped without Finish counts as ended locally.
    std::optional<absl::StatusOr<Lease>> dropped;
    worker_->Acquire({}, absl::Now() + absl::Seconds(5),
                     [&](absl::StatusOr<Lease> l) { dropped = std::move(l); });
    ASSERT_TRUE(dropped.has_value() && dropped->ok());
    EXPECT_EQ(cluster_->active_requests.load(), 1);
  }
  EXPECT_EQ(cluster_->active_requests.load(), 0);
  EXPECT_EQ(endpoint->active_requests.load(), 0);
}

TEST_F(ClusterWorkerTest, LeastRequestSendsToTheLessLoaded) {
  StartBackends(2);
  MakeWorker(Options(LbPolicy::kLeastRequest));
  // Warm up: both endpoints connected.
  for (int i = 0; i < 20 && (Counts()[0] == 0 || Counts()[1] == 0); ++i) Sequential(1);
  ASSERT_GT(Counts()[0], 0);
  ASSERT_GT(Counts()[1], 0);
  const std::vector<int> before = Counts();
  // Ten slow calls started one after the other: with two endpoints both are drawn each
  // time, and the one with fewer calls in flight wins, so they split 5 / 5.
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < 10; ++i) {
    calls.push_back(Start(/*sleep_ms=*/300));
    ASSERT_TRUE(calls.back()->acquired_inline);
  }
  std::map<int, int> by_port;
  for (auto& c : calls) by_port[c->port]++;
  EXPECT_EQ(by_port[backends_[0]->port], 5);
  EXPECT_EQ(by_port[backends_[1]->port], 5);
  ASSERT_TRUE(RunUntil([&] {
    for (auto& c : calls) {
      if (!c->finished()) return false;
    }
    return true;
  }));
  EXPECT_EQ(Counts()[0] - before[0], 5);
  EXPECT_EQ(Counts()[1] - before[1], 5);
}

TEST_F(ClusterWorkerTest, PickFirstUsesTheFirstAndMovesOnWhenItStops) {
  StartBackends(3);
  MakeWorker(Options(LbPolicy::kPickFirst));
  for (int port : Sequential(10)) EXPECT_EQ(port, backends_[0]->port);
  EXPECT_EQ(Counts(), (std::vector<int>{10, 0, 0}));
  backends_[0]->Stop();
  RunFor(absl::Milliseconds(200));  // the worker reads the connection's end
  for (int port : Sequential(10)) EXPECT_EQ(port, backends_[1]->port);
  EXPECT_EQ(Counts(), (std::vector<int>{10, 10, 0}));
}

TEST_F(ClusterWorkerTest, GoawayTakesTheConnectionOutWhileItsCallFinishes) {
  StartBackends(2);
  MakeWorker(Options(LbPolicy::kPickFirst));
  Sequential(1);
  auto slow = Start(/*sleep_ms=*/600);
  ASSERT_TRUE(slow->acquired_inline);
  Http2Connection* draining = slow->conn;
  // The backend runs the call (one it had not started yet would be cancelled).
  ASSERT_TRUE(RunUntil([&] { return backends_[0]->service.calls.load() == 2; }));
  // A graceful shutdown: GOAWAY now, the call in flight may finish (Shutdown blocks).
  std::thread shutdown([&] {
    backends_[0]->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  ASSERT_TRUE(RunUntil(
      [&] { return draining->state() != Http2Connection::State::kReady; }, absl::Seconds(3)));
  // New calls go to the other endpoint; the draining connection is not given out.
  for (int port : Sequential(5)) EXPECT_EQ(port, backends_[1]->port);
  ASSERT_TRUE(RunUntil([&] { return slow->finished(); }));
  EXPECT_TRUE(slow->result && slow->result->status.ok()) << slow->result->status;
  shutdown.join();
  backends_[0]->server->Wait();
  backends_[0]->server.reset();
  // Only the other endpoint's connection is left (and maybe a reconnect attempt to the
  // stopped one, which fails).
  ASSERT_TRUE(RunUntil([&] { return cluster_->connections.load() == 1; }, absl::Seconds(3)));
}

TEST_F(ClusterWorkerTest, AvoidGoesToAnotherEndpoint) {
  StartBackends(2);
  MakeWorker(Options(LbPolicy::kPickFirst));
  Sequential(1);
  auto endpoints = cluster_->endpoints();
  PickOptions pick;
  pick.avoid = (*endpoints)[0].get();
  auto call = Start(0, pick);
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  ASSERT_TRUE(call->result && call->result->status.ok());
  EXPECT_EQ(call->port, backends_[1]->port);
}

TEST_F(ClusterWorkerTest, StreamsShareAConnectionUpToMaxConcurrentStreams) {
  StartBackends(1, /*max_streams=*/2);
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.max_connections_per_endpoint = 2;
  MakeWorker(o);
  // Five slow calls at once: two streams on each of two connections, the fifth waits for
  // a stream to be freed (the per-endpoint limit allows no third connection).
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(Start(/*sleep_ms=*/400));
  ASSERT_TRUE(RunUntil([&] {
    int started = 0;
    for (auto& c : calls) started += c->conn != nullptr;
    return started == 4;
  }));
  std::map<Http2Connection*, int> per_conn;
  for (auto& c : calls) {
    if (c->conn != nullptr) per_conn[c->conn]++;
  }
  ASSERT_EQ(per_conn.size(), 2u);
  for (const auto& [conn, n] : per_conn) {
    EXPECT_EQ(n, 2);
    EXPECT_EQ(conn->peer_max_concurrent_streams(), 2u);
    EXPECT_LE(conn->active_streams(), 2u);
  }
  EXPECT_EQ(cluster_->connections.load(), 2);
  EXPECT_EQ(cluster_->pending_requests.load(), 1);
  ASSERT_TRUE(RunUntil([&] {
    for (auto& c : calls) {
      if (!c->finished()) return false;
    }
    return true;
  }));
  for (auto& c : calls) EXPECT_TRUE(c->result && c->result->status.ok());
  // The fifth ran on one of the two connections once a call there ended.
  EXPECT_EQ(per_conn.count(calls[4]->conn), 1u);
  EXPECT_EQ(backends_[0]->service.calls.load(), 5);
}

TEST_F(ClusterWorkerTest, SecondConnectionOpensBeyondMaxConcurrentStreams) {
  StartBackends(1, /*max_streams=*/2);
  MakeWorker(Options(LbPolicy::kRoundRobin));  // 4 connections per endpoint allowed
  std::vector<std::shared_ptr<Call>> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(Start(/*sleep_ms=*/300));
  ASSERT_TRUE(RunUntil([&] {
    for (auto& c : calls) {
      if (c->conn == nullptr) return false;
    }
    return true;
  }));
  std::map<Http2Connection*, int> per_conn;
  for (auto& c : calls) per_conn[c->conn]++;
  EXPECT_EQ(per_conn.size(), 3u);  // 2 + 2 + 1
  for (const auto& [conn, n] : per_conn) EXPECT_LE(n, 2);
  ASSERT_TRUE(RunUntil([&] {
    for (auto& c : calls) {
      if (!c->finished()) return false;
    }
    return true;
  }));
  for (auto& c : calls) EXPECT_TRUE(c->result && c->result->status.ok());
}

TEST_F(ClusterWorkerTest, StoppedBackendGoesToBackoffAndRestartedOneIsFoundAgain) {
  StartBackends(3);
  ClusterOptions o = Options(LbPolicy::kRoundRobin);  // backoff 50 ms .. 400 ms
  // Outlier detection on (as by default): the failed reconnects in the background while
  // the backend is down are not call failures and do not keep it ejected.
  o.outlier_detection = OutlierDetectionOptions();
  o.outlier_detection.consecutive_failures = 2;
  MakeWorker(o);
  Sequential(9);
  EXPECT_EQ(Counts(), (std::vector<int>{3, 3, 3}));
  backends_[1]->Stop();
  RunFor(absl::Milliseconds(200));
  // Every call succeeds on the two others.
  for (int port : Sequential(30)) EXPECT_NE(port, backends_[1]->port);
  EXPECT_EQ(Counts()[0] + Counts()[2], 36);
  auto endpoints = cluster_->endpoints();
  EXPECT_GT((*endpoints)[1]->connect_failures_total.load(), 0u);
  EXPECT_EQ((*endpoints)[1]->ejections_total.load(), 0u);
  // Let the backoff grow to its cap, then restart the backend on its port.
  RunFor(absl::Seconds(2));
  backends_[1]->Start();
  const absl::Time restarted = absl::Now();
  bool used = false;
  while (!used && absl::Now() - restarted < absl::Seconds(5)) {
    Sequential(1);
    used = backends_[1]->service.calls.load() > 3;
    RunFor(absl::Milliseconds(10));
  }
  const absl::Duration took = absl::Now() - restarted;
  EXPECT_TRUE(used);
  EXPECT_LT(took, absl::Milliseconds(400 + 500)) << took;
  std::cerr << "restarted backend used again after " << took << "\n";
}

TEST_F(ClusterWorkerTest, ConnectFailureIsUnavailableWithoutTheAddress) {
  // A port nobody listens on.
  uint16_t port;
  {
    boost::asio::ip::tcp::acceptor a(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.target = absl::StrCat("ipv4:127.0.0.1:", port);
  MakeWorker(o);
  auto call = Start();
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  ASSERT_TRUE(call->acquire.has_value());
  EXPECT_EQ(call->acquire->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(call->acquire->message(), "backend \"echo\": failed to connect");
  auto endpoints = cluster_->endpoints();
  EXPECT_EQ((*endpoints)[0]->connect_failures_total.load(), 1u);
  // The only endpoint is in backoff: the next call waits for the reconnect and gets its
  // failure rather than an immediate error.
  const absl::Time start = absl::Now();
  auto second = Start();
  EXPECT_FALSE(second->acquire.has_value());
  ASSERT_TRUE(RunUntil([&] { return second->finished(); }));
  EXPECT_EQ(second->acquire->message(), "backend \"echo\": failed to connect");
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_F(ClusterWorkerTest, ReconnectBackoffGrowsToItsCap) {
  uint16_t port;
  {
    boost::asio::ip::tcp::acceptor a(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  ClusterOptions o = Options(LbPolicy::kRoundRobin);  // 50 ms x1.6 per failure, cap 400 ms
  o.target = absl::StrCat("ipv4:127.0.0.1:", port);
  MakeWorker(o);
  auto call = Start();
  ASSERT_TRUE(RunUntil([&] { return call->finished(); }));
  // The worker keeps reconnecting by itself. In 3 s: 50+80+128+205+328 ms (+-20%), then
  // every 400 ms at most: 9 to 13 attempts. Without growth it would be ~60, without the
  // cap at most 8.
  RunFor(absl::Seconds(3));
  const uint64_t attempts = (*cluster_->endpoints())[0]->connect_failures_total.load();
  std::cerr << "connect attempts in 3 s after the first failure: " << attempts << "\n";
  EXPECT_GE(attempts, 9u);
  EXPECT_LE(attempts, 14u);
}

TEST_F(ClusterWorkerTest, NewEndpointSetMovesCallsAndClosesRemovedConnections) {
  StartBackends(3);
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.target = absl::StrCat("ipv4:127.0.0.1:", backends_[0]->port, ",127.0.0.1:",
                          backends_[1]->port);
  MakeWorker(o);
  Sequential(4);
  EXPECT_EQ(Counts(), (std::vector<int>{2, 2, 0}));
  EXPECT_EQ(cluster_->connections.load(), 2);
  EndpointSet next;
  for (int i : {1, 2}) {
    next.push_back(
        std::make_shared<EndpointState>(Endpoint::Tcp("127.0.0.1", backends_[i]->port), 1));
  }
  ClusterTestPeer::SetEndpoints(*cluster_, std::move(next));
  for (int port : Sequential(10)) EXPECT_NE(port, backends_[0]->port);
  EXPECT_EQ(Counts(), (std::vector<int>{2, 7, 5}));
  // The connection to the removed endpoint had no streams: closed at once.
  EXPECT_EQ(cluster_->connections.load(), 2);
}

TEST_F(ClusterWorkerTest, CallWaitingOnARemovedEndpointChoosesAgain) {
  Backend slow_backend;
  slow_backend.Start(/*max_streams=*/1);
  StartBackends(1);
  ClusterOptions o = Options(LbPolicy::kPickFirst);
  o.target = absl::StrCat("ipv4:127.0.0.1:", slow_backend.port, ",127.0.0.1:",
                          backends_[0]->port);
  o.max_connections_per_endpoint = 1;
  MakeWorker(o);
  Sequential(1);
  auto slow = Start(/*sleep_ms=*/500);  // holds the first endpoint's only stream
  ASSERT_TRUE(slow->acquired_inline);
  auto waiting = Start();
  ASSERT_FALSE(waiting->acquire.has_value());
  EndpointSet next;
  next.push_back(
      std::make_shared<EndpointState>(Endpoint::Tcp("127.0.0.1", backends_[0]->port), 1));
  ClusterTestPeer::SetEndpoints(*cluster_, std::move(next));
  // The worker sees the new set at its next Acquire (or sweep): the waiting call goes to
  // the endpoint that remains, without waiting for the slow one.
  auto third = Start();
  ASSERT_TRUE(RunUntil([&] { return waiting->finished() && third->finished(); },
                       absl::Milliseconds(400)));
  ASSERT_TRUE(waiting->result && waiting->result->status.ok());
  EXPECT_EQ(waiting->port, backends_[0]->port);
  EXPECT_FALSE(slow->finished());
  // The call on the removed endpoint ends normally; its connection is closed afterwards.
  ASSERT_TRUE(RunUntil([&] { return slow->finished(); }));
  EXPECT_TRUE(slow->result && slow->result->status.ok());
  ASSERT_TRUE(RunUntil([&] { return cluster_->connections.load() == 1; }, absl::Seconds(3)));
  EXPECT_EQ(cluster_->pending_requests.load(), 0);
  worker_.reset();
  slow_backend.Stop();
}

TEST_F(ClusterWorkerTest, PendingOverflowAnswersAtOnce) {
  StartBackends(1, /*max_streams=*/1);
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.max_connections_per_endpoint = 1;
  o.circuit_breakers.max_pending_requests = 2;
  MakeWorker(o);
  Sequential(1);
  auto slow = Start(/*sleep_ms=*/500);
  ASSERT_TRUE(slow->acquired_inline);
  auto p1 = Start();
  auto p2 = Start();
  EXPECT_FALSE(p1->acquire.has_value());
  EXPECT_FALSE(p2->acquire.has_value());
  EXPECT_EQ(cluster_->pending_requests.load(), 2);
  auto over = Start();
  ASSERT_TRUE(over->acquire.has_value());
  EXPECT_TRUE(over->acquired_inline);
  EXPECT_EQ(over->acquire->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(over->acquire->message(),
            "backend \"echo\": too many pending requests "
            "(circuit_breakers.max_pending_requests = 2)");
  // The waiting ones run when the slow call frees the stream.
  ASSERT_TRUE(RunUntil([&] { return p1->finished() && p2->finished() && slow->finished(); }));
  EXPECT_TRUE(p1->result && p1->result->status.ok());
  EXPECT_TRUE(p2->result && p2->result->status.ok());
  EXPECT_EQ(backends_[0]->service.calls.load(), 4);
}

TEST_F(ClusterWorkerTest, ConnectionLimitWithNothingToWaitForAnswersAtOnce) {
  StartBackends(2);
  ClusterOptions o = Options(LbPolicy::kPickFirst);
  o.circuit_breakers.max_connections = 1;
  MakeWorker(o);
  Sequential(1);
  EXPECT_EQ(cluster_->connections.load(), 1);
  // The second endpoint has no connection and may not open one.
  PickOptions pick;
  pick.avoid = (*cluster_->endpoints())[0].get();
  auto call = Start(0, pick);
  ASSERT_TRUE(call->acquire.has_value());
  EXPECT_EQ(call->acquire->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(call->acquire->message(),
            "backend \"echo\": too many connections (circuit_breakers.max_connections = 1)");
  EXPECT_EQ(cluster_->pending_requests.load(), 0);
  // The first endpoint's connection still serves.
  EXPECT_EQ(Sequential(1)[0], backends_[0]->port);
}

TEST_F(ClusterWorkerTest, DeadlineWhileWaitingIsDeadlineExceeded) {
  StartBackends(1, /*max_streams=*/1);
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.max_connections_per_endpoint = 1;
  MakeWorker(o);
  Sequential(1);
  auto slow = Start(/*sleep_ms=*/800);
  auto waiting = Start(0, {}, absl::Milliseconds(100));
  ASSERT_TRUE(RunUntil([&] { return waiting->finished(); }, absl::Milliseconds(600)));
  EXPECT_EQ(waiting->acquire->code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(cluster_->pending_requests.load(), 0);
  ASSERT_TRUE(RunUntil([&] { return slow->finished(); }));
}

TEST_F(ClusterWorkerTest, NoEndpointsNamesTheResolution) {
  ClusterOptions o = Options(LbPolicy::kRoundRobin);
  o.target = "dns:///localhost:1";  // not resolved: the cluster was not started
  MakeWorker(o);
  auto call = Start();
  ASSERT_TRUE(call->acquire.has_value());
  EXPECT_EQ(call->acquire->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(call->acquire->message(),
            "backend \"echo\": no endpoints (\"localhost\" not resolved yet)");
}

TEST_F(ClusterWorkerTest, DestroyingTheWorkerAnswersWaitingCalls) {
  StartBackends(1);
  MakeWorker(Options(LbPolicy::kRoundRobin));
  auto call = Start();  // waits for the connection
  ASSERT_FALSE(call->acquire.has_value());
  worker_.reset();
  ASSERT_TRUE(call->acquire.has_value());
  EXPECT_EQ(call->acquire->message(), "backend \"echo\": the worker stopped");
}

}  // namespace
}  // namespace gateway::upstream
