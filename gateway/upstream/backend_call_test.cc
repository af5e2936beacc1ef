// BackendCall against real grpc++ backends in this process: the call kinds, back-pressure
// both ways, retries (policy, attempts header, give-up), calls the backend never saw,
// cancellation and deadlines. The "client sink" is the test itself, driving the call as
// the HTTP front end does (RequestNext after each message, Write after on_writable).
#include "gateway/upstream/backend_call.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "gateway/upstream/test_loop.h"
#include "gateway/upstream/cluster.h"
#include "gateway/metrics/metrics.h"
#include "gateway/upstream/cluster_worker.h"
#include "tests/testdata/echo.grpc.pb.h"

namespace gateway::upstream {
namespace {

using ::gateway::test::v1::Echo;
using ::gateway::test::v1::EchoRequest;
using ::gateway::test::v1::EchoResponse;

// Unary fails the first `fail_after` calls with a given `tag` with `fail_code`, then
// answers; it records what it saw of each call.
class FlakyEcho final : public Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* ctx, const EchoRequest* req,
                     EchoResponse* resp) override {
    int seen;
    {
      absl::MutexLock lock(&mu_);
      seen = ++calls_[req->tag()];
      auto it = ctx->client_metadata().find("grpc-previous-rpc-attempts");
      previous_.push_back(it == ctx->client_metadata().end()
                              ? std::string("-")
                              : std::string(it->second.data(), it->second.size()));
      auto tp = ctx->client_metadata().find("traceparent");
      if (tp != ctx->client_metadata().end()) {
        traceparents_.push_back(std::string(tp->second.data(), tp->second.size()));
      }
    }
    for (int i = 0; i < req->sleep_ms() && !ctx->IsCancelled(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (ctx->IsCancelled()) cancelled_++;
    // Response headers before the failure (not a trailers-only answer).
    if (req->fail_message() == "after-headers") ctx->AddInitialMetadata("x-early", "1");
    if (req->fail_code() != 0 && seen <= req->fail_after()) {
      return grpc::Status(static_cast<grpc::StatusCode>(req->fail_code()), req->fail_message());
    }
    resp->set_payload(req->payload());
    resp->set_index(seen);
    ctx->AddTrailingMetadata("x-echo-trailing", "done");
    return grpc::Status::OK;
  }
  grpc::Status ServerStream(grpc::ServerContext*, const EchoRequest* req,
                            grpc::ServerWriter<EchoResponse>* writer) override {
    for (int i = 0; i < req->count(); ++i) {
      EchoResponse r;
      r.set_payload(req->payload());
      r.set_index(i);
      if (!writer->Write(r)) return grpc::Status(grpc::StatusCode::CANCELLED, "gone");
    }
    return grpc::Status::OK;
  }
  grpc::Status ClientStream(grpc::ServerContext*, grpc::ServerReader<EchoRequest>* reader,
                            EchoResponse* resp) override {
    EchoRequest req;
    int n = 0;
    while (reader->Read(&req)) {
      ++n;
      resp->set_payload(resp->payload() + req.payload());
    }
    resp->set_index(n);
    return grpc::Status::OK;
  }

  int calls(const std::string& tag) {
    absl::MutexLock lock(&mu_);
    return calls_[tag];
  }
  std::vector<std::string> previous() {
    absl::MutexLock lock(&mu_);
    return previous_;
  }
  std::vector<std::string> traceparents() {
    absl::MutexLock lock(&mu_);
    return traceparents_;
  }
  std::atomic<int> cancelled_{0};

 private:
  absl::Mutex mu_;
  std::map<std::string, int> calls_;
  std::vector<std::string> previous_;
  std::vector<std::string> traceparents_;
};

// What one BackendCall delivered.
struct Outcome {
  bool headers = false;
  std::vector<EchoResponse> messages;
  std::optional<CallResult> result;
  int writable = 0;
};

class BackendCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    worker_.reset();
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  void MakeWorker(const std::string& target) {
    ClusterOptions options;
    options.name = "echo";
    options.target = target;
    absl::StatusOr<std::shared_ptr<Cluster>> cluster = Cluster::Create(options);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *cluster;
    worker_ = std::make_unique<ClusterWorker>(io_, cluster_);
  }
  std::string Target() const { return absl::StrCat("ipv4:127.0.0.1:", port_); }

  template <typename F>
  bool RunUntil(F done, absl::Duration limit = absl::Seconds(10)) {
    return RunLoopUntil(io_, done, limit);
  }

  // Starts a call whose consumer takes each message at once.
  std::shared_ptr<BackendCall> Start(const std::string& method, BackendCall::Spec spec,
                                     Outcome* out) {
    spec.path = method;
    BackendCall::Callbacks cb;
    auto holder = std::make_shared<std::weak_ptr<BackendCall>>();
    cb.on_headers = [out](const Headers&) { out->headers = true; };
    cb.on_message = [out, holder](std::string m) {
      EchoResponse r;
      EXPECT_TRUE(r.ParseFromString(m));
      out->messages.push_back(r);
      if (auto call = holder->lock()) call->RequestNext();
    };
    cb.on_writable = [out] { out->writable++; };
    cb.on_done = [out](const CallResult& r) {
      EXPECT_FALSE(out->result.has_value()) << "on_done twice";
      out->result = r;
    };
    std::shared_ptr<BackendCall> call = BackendCall::Start(*worker_, std::move(spec), cb);
    *holder = call;
    return call;
  }

  static std::string Request(const std::string& payload, int fail_code = 0, int fail_after = 0,
                             const std::string& tag = "", int sleep_ms = 0, int count = 0) {
    EchoRequest req;
    req.set_payload(payload);
    req.set_fail_code(fail_code);
    req.set_fail_after(fail_after);
    req.set_tag(tag);
    req.set_sleep_ms(sleep_ms);
    req.set_count(count);
    return req.SerializeAsString();
  }

  boost::asio::io_context io_;
  FlakyEcho service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<Cluster> cluster_;
  std::unique_ptr<ClusterWorker> worker_;
};

TEST_F(BackendCallTest, UnaryHeadersMessageTrailers) {
  MakeWorker(Target());
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", {}, &out);
  call->Write(Request("hello"));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  EXPECT_TRUE(out.headers);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].payload(), "hello");
  bool trailer = false;
  for (const auto& [k, v] : out.result->trailers) trailer |= k == "x-echo-trailing" && v == "done";
  EXPECT_TRUE(trailer);
  EXPECT_EQ(call->attempts(), 1u);
  EXPECT_EQ(call->endpoint(), absl::StrCat("127.0.0.1:", port_));
}

TEST_F(BackendCallTest, WriteLastEndsTheRequestWithoutOnWritable) {
  MakeWorker(Target());
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", {}, &out);
  call->WriteLast(Request("last"));
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].payload(), "last");
  RunUntil([] { return false; }, absl::Milliseconds(50));  // whatever was posted runs
  EXPECT_EQ(out.writable, 0);
}

// Three attempts, 1-5 ms apart.
RetryPolicy QuickRetries() {
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(5);
  return policy;
}

TEST_F(BackendCallTest, WriteLastIsReplayedOnARetry) {
  MakeWorker(Target());
  const RetryPolicy policy = QuickRetries();
  BackendCall::Spec spec;
  spec.retry = &policy;
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  call->WriteLast(Request("r", /*fail_code=*/14, /*fail_after=*/2, "write-last"));
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  EXPECT_EQ(service_.calls("write-last"), 3);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].payload(), "r");
  EXPECT_EQ(out.writable, 0);
}

TEST_F(BackendCallTest, ServerStreamWaitsForTheConsumer) {
  MakeWorker(Target());
  Outcome out;
  BackendCall::Callbacks cb;
  std::shared_ptr<BackendCall> call;
  cb.on_message = [&](std::string m) {
    EchoResponse r;
    r.ParseFromString(m);
    out.messages.push_back(r);  // no RequestNext: the consumer is slow
  };
  cb.on_done = [&](const CallResult& r) { out.result = r; };
  BackendCall::Spec spec;
  spec.path = "/gateway.test.v1.Echo/ServerStream";
  call = BackendCall::Start(*worker_, spec, cb);
  call->Write(Request("s", 0, 0, "", 0, 5));
  call->WritesDone();
  RunUntil([&] { return out.messages.size() > 1; }, absl::Milliseconds(300));
  EXPECT_EQ(out.messages.size(), 1u) << "a second message before RequestNext";
  while (!out.result.has_value() && out.messages.size() < 6) {
    const size_t had = out.messages.size();
    call->RequestNext();
    ASSERT_TRUE(RunUntil([&] { return out.messages.size() > had || out.result.has_value(); }));
  }
  ASSERT_TRUE(out.result.has_value());
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  ASSERT_EQ(out.messages.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(out.messages[i].index(), i);
}

TEST_F(BackendCallTest, ClientStreamSendsEachAfterOnWritable) {
  MakeWorker(Target());
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/ClientStream", {}, &out);
  const std::vector<std::string> parts = {"a", "b", "c"};
  call->Write(Request(parts[0]));
  for (size_t i = 1; i < parts.size(); ++i) {
    ASSERT_TRUE(RunUntil([&] { return out.writable >= static_cast<int>(i); }));
    call->Write(Request(parts[i]));
  }
  ASSERT_TRUE(RunUntil([&] { return out.writable >= 3; }));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].index(), 3);
  EXPECT_EQ(out.messages[0].payload(), "abc");
}

TEST_F(BackendCallTest, RetriesUnavailableAndTellsTheBackendTheAttempt) {
  MakeWorker(Target());
  const RetryPolicy policy = QuickRetries();
  BackendCall::Spec spec;
  spec.retry = &policy;
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  call->Write(Request("r", /*fail_code=*/14, /*fail_after=*/2, "retry-ok"));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  EXPECT_EQ(service_.calls("retry-ok"), 3);
  EXPECT_EQ(call->attempts(), 3u);
  EXPECT_EQ(service_.previous(), (std::vector<std::string>{"-", "1", "2"}));
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].index(), 3);
}

TEST_F(BackendCallTest, AttemptHooksGiveEachAttemptItsTraceparent) {
  MakeWorker(Target());
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(5);
  BackendCall::Spec spec;
  spec.retry = &policy;
  spec.metadata.emplace_back("traceparent", "00-11111111111111111111111111111111-2222222222222222-01");
  std::vector<std::string> started;
  std::vector<absl::StatusCode> ended;
  spec.on_attempt_start = [&](absl::string_view path, absl::string_view endpoint) {
    started.push_back(absl::StrCat(path, " ", endpoint));
    return absl::StrCat("00-11111111111111111111111111111111-00000000000000a", started.size(),
                        "-01");
  };
  spec.on_attempt_end = [&](const absl::Status& s) { ended.push_back(s.code()); };
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  call->Write(Request("r", /*fail_code=*/14, /*fail_after=*/1, "trace-retry"));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  const std::string at = absl::StrCat("/gateway.test.v1.Echo/Unary 127.0.0.1:", port_);
  EXPECT_EQ(started, (std::vector<std::string>{at, at}));
  EXPECT_EQ(ended, (std::vector<absl::StatusCode>{absl::StatusCode::kUnavailable,
                                                  absl::StatusCode::kOk}));
  // The client's traceparent is replaced, once per attempt.
  EXPECT_EQ(service_.traceparents(),
            (std::vector<std::string>{"00-11111111111111111111111111111111-00000000000000a1-01",
                                      "00-11111111111111111111111111111111-00000000000000a2-01"}));
}

TEST_F(BackendCallTest, ResponseHeadersAloneDoNotStopARetry) {
  MakeWorker(Target());
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(5);
  BackendCall::Spec spec;
  spec.retry = &policy;
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  EchoRequest req;
  req.set_payload("h");
  req.set_fail_code(14);
  req.set_fail_after(2);
  req.set_fail_message("after-headers");
  req.set_tag("headers-first");
  call->Write(req.SerializeAsString());
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  EXPECT_EQ(service_.calls("headers-first"), 3);
  EXPECT_TRUE(out.headers);
}

TEST_F(BackendCallTest, ARetryGoesToAnotherEndpoint) {
  FlakyEcho other_service;
  int other_port = 0;
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &other_port);
  builder.RegisterService(&other_service);
  std::unique_ptr<grpc::Server> other = builder.BuildAndStart();
  ASSERT_NE(other, nullptr);
  // Pick first: without `avoid` every attempt would go to the first endpoint.
  ClusterOptions options;
  options.name = "echo";
  options.target = absl::StrCat("ipv4:127.0.0.1:", port_, ",127.0.0.1:", other_port);
  options.lb_policy = LbPolicy::kPickFirst;
  absl::StatusOr<std::shared_ptr<Cluster>> cluster = Cluster::Create(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  cluster_ = *cluster;
  worker_ = std::make_unique<ClusterWorker>(io_, cluster_);
  RetryPolicy policy;
  policy.max_attempts = 2;
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(2);
  BackendCall::Spec spec;
  spec.retry = &policy;
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  // Each server fails the first call with this tag.
  call->Write(Request("r", 14, 1, "elsewhere"));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(service_.calls("elsewhere"), 1);
  EXPECT_EQ(other_service.calls("elsewhere"), 1);
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kUnavailable);
  worker_.reset();
  other->Shutdown(std::chrono::system_clock::now());
}

TEST_F(BackendCallTest, GivesUpAfterMaxAttemptsWithTheBackendsStatus) {
  MakeWorker(Target());
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(5);
  BackendCall::Spec spec;
  spec.retry = &policy;
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  call->Write(Request("r", 14, 100, "always", 0));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.calls("always"), 3);
}

TEST_F(BackendCallTest, NoPolicyNoRetryAndCodesNotListedAreNotRetried) {
  MakeWorker(Target());
  Outcome a;
  auto call = Start("/gateway.test.v1.Echo/Unary", {}, &a);
  call->Write(Request("r", 14, 100, "no-policy"));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return a.result.has_value(); }));
  EXPECT_EQ(a.result->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.calls("no-policy"), 1);

  RetryPolicy policy;
  policy.max_attempts = 3;
  BackendCall::Spec spec;
  spec.retry = &policy;
  Outcome b;
  call = Start("/gateway.test.v1.Echo/Unary", spec, &b);
  call->Write(Request("r", /*INTERNAL*/ 13, 100, "not-listed"));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return b.result.has_value(); }));
  EXPECT_EQ(b.result->status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(service_.calls("not-listed"), 1);
}

TEST_F(BackendCallTest, AnEndpointThatRefusesConnectionsIsPassedOver) {
  // A port nobody listens on, beside the live backend.
  int dead_port = 0;
  {
    boost::asio::ip::tcp::acceptor a(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
    dead_port = a.local_endpoint().port();
  }  // closed: connections to it are refused
  MakeWorker(absl::StrCat("ipv4:127.0.0.1:", dead_port, ",127.0.0.1:", port_));
  for (int i = 0; i < 6; ++i) {
    Outcome out;
    auto call = Start("/gateway.test.v1.Echo/Unary", {}, &out);
    call->Write(Request(absl::StrCat("p", i)));
    call->WritesDone();
    ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
    EXPECT_TRUE(out.result->status.ok()) << i << ": " << out.result->status;
  }
}

TEST_F(BackendCallTest, CancelEndsTheCallAndTheBackendSeesIt) {
  MakeWorker(Target());
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", {}, &out);
  call->Write(Request("slow", 0, 0, "", /*sleep_ms=*/3000));
  call->WritesDone();
  RunUntil([] { return false; }, absl::Milliseconds(200));
  call->Cancel();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }, absl::Seconds(2)));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(RunUntil([&] { return service_.cancelled_.load() == 1; }, absl::Seconds(5)));
}

TEST_F(BackendCallTest, DeadlineEndsTheCall) {
  MakeWorker(Target());
  BackendCall::Spec spec;
  spec.deadline = absl::Now() + absl::Milliseconds(200);
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  call->Write(Request("slow", 0, 0, "", 3000));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }, absl::Seconds(3)));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(BackendCallTest, AnEndReachedAtStartRunsOnTheLoopNotInsideStart) {
  MakeWorker(Target());
  BackendCall::Spec spec;
  spec.deadline = absl::Now() - absl::Seconds(1);  // already passed: the call ends at once
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  EXPECT_FALSE(out.result.has_value()) << "on_done ran inside Start()";
  call->Write(Request("late"));  // the caller may still write before the end arrives
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }, absl::Seconds(3)));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(service_.calls(""), 0);
}

TEST_F(BackendCallTest, PerTryTimeoutTriesAgain) {
  MakeWorker(Target());
  RetryPolicy policy;
  policy.max_attempts = 2;
  policy.per_try_timeout = absl::Milliseconds(150);
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(2);
  BackendCall::Spec spec;
  spec.retry = &policy;
  spec.deadline = absl::Now() + absl::Seconds(5);
  Outcome out;
  auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
  call->Write(Request("slow", 0, 0, "per-try", 1000));
  call->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }, absl::Seconds(4)));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(RunUntil([&] { return service_.calls("per-try") == 2; }, absl::Seconds(2)));
}

TEST_F(BackendCallTest, CountsRetryDecisionsAndObservesEachCallsDuration) {
  MakeWorker(Target());
  metrics::Histogram duration(metrics::LatencyBuckets());
  cluster_->call_duration.store(&duration);
  RetryPolicy policy;
  policy.max_attempts = 3;
  policy.backoff_base = absl::Milliseconds(1);
  policy.backoff_max = absl::Milliseconds(2);
  auto run = [&](const RetryPolicy& p, const std::string& request) {
    BackendCall::Spec spec;
    spec.retry = &p;
    Outcome out;
    auto call = Start("/gateway.test.v1.Echo/Unary", spec, &out);
    call->Write(request);
    call->WritesDone();
    EXPECT_TRUE(RunUntil([&] { return out.result.has_value(); }));
    return out.result.has_value() ? out.result->status.code() : absl::StatusCode::kUnknown;
  };
  // Fails twice, then OK: two retries, succeeded after a retry.
  EXPECT_EQ(run(policy, Request("r", 14, 2, "twice")), absl::StatusCode::kOk);
  EXPECT_EQ(cluster_->retries_total.load(), 2u);
  EXPECT_EQ(cluster_->retries_succeeded_total.load(), 1u);
  EXPECT_EQ(cluster_->retries_exhausted_total.load(), 0u);
  // Always fails: two more retries, then the attempt limit.
  EXPECT_EQ(run(policy, Request("r", 14, 100, "always")), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cluster_->retries_total.load(), 4u);
  EXPECT_EQ(cluster_->retries_exhausted_total.load(), 1u);
  EXPECT_EQ(cluster_->retries_succeeded_total.load(), 1u);
  // A code the policy does not retry is no decision at all.
  EXPECT_EQ(run(policy, Request("r", 13, 100, "internal")), absl::StatusCode::kInternal);
  EXPECT_EQ(cluster_->retries_total.load(), 4u);
  EXPECT_EQ(cluster_->retries_exhausted_total.load(), 1u);
  // A budget that allows no retry in flight refuses the retry.
  RetryPolicy no_budget = policy;
  no_budget.budget_percent = 0;
  no_budget.min_retry_concurrency = 0;
  EXPECT_EQ(run(no_budget, Request("r", 14, 100, "no-budget")),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(cluster_->retries_budget_exceeded_total.load(), 1u);
  EXPECT_EQ(cluster_->retries_total.load(), 4u);
  EXPECT_EQ(service_.calls("no-budget"), 1);
  EXPECT_EQ(cluster_->transparent_retries_total.load(), 0u);
  EXPECT_EQ(cluster_->active_retries.load(), 0);
  // Every call observed once, when it ended.
  EXPECT_EQ(duration.Read().count, 4u);
  EXPECT_GT(duration.Read().sum, 0);
}

}  // namespace
}  // namespace gateway::upstream
