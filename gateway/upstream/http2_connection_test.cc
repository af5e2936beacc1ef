// Http2Connection and GrpcStream against a real grpc++ backend in this process.
#include "gateway/upstream/http2_connection.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "gateway/upstream/test_loop.h"
#include "tests/testdata/echo.grpc.pb.h"

namespace gateway::upstream {
namespace {

using ::gateway::test::v1::Echo;
using ::gateway::test::v1::EchoRequest;
using ::gateway::test::v1::EchoResponse;

class EchoService final : public Echo::Service {
 public:
  grpc::Status Unary(grpc::ServerContext* ctx, const EchoRequest* req,
                     EchoResponse* resp) override {
    if (req->sleep_ms() > 0) {
      for (int i = 0; i < req->sleep_ms() && !ctx->IsCancelled(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (ctx->IsCancelled()) cancelled_seen++;
    }
    for (const auto& [k, v] : ctx->client_metadata()) {
      resp->add_metadata(absl::StrCat(std::string(k.data(), k.size()), "=",
                                      std::string(v.data(), v.size())));
    }
    if (req->fail_code() != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(req->fail_code()), req->fail_message(),
                          "raw-details\x01\x02");
    }
    ctx->AddTrailingMetadata("x-echo-trailing", "done");
    resp->set_payload(req->payload());
    return grpc::Status::OK;
  }
  grpc::Status ServerStream(grpc::ServerContext*, const EchoRequest* req,
                            grpc::ServerWriter<EchoResponse>* writer) override {
    for (int i = 0; i < req->count(); ++i) {
      EchoResponse r;
      r.set_payload(req->payload());
      r.set_index(i);
      if (!writer->Write(r)) return grpc::Status(grpc::StatusCode::CANCELLED, "gone");
      stream_written++;
    }
    return grpc::Status::OK;
  }
  grpc::Status ClientStream(grpc::ServerContext*, grpc::ServerReader<EchoRequest>* reader,
                            EchoResponse* resp) override {
    EchoRequest req;
    int n = 0;
    while (reader->Read(&req)) {
      ++n;
      resp->set_payload(req.payload());
    }
    resp->set_index(n);
    return grpc::Status::OK;
  }
  grpc::Status Bidi(grpc::ServerContext*,
                    grpc::ServerReaderWriter<EchoResponse, EchoRequest>* stream) override {
    EchoRequest req;
    int n = 0;
    while (stream->Read(&req)) {
      EchoResponse r;
      r.set_payload(req.payload());
      r.set_index(n++);
      stream->Write(r);
    }
    return grpc::Status::OK;
  }
  std::atomic<int> stream_written{0};
  std::atomic<int> cancelled_seen{0};
};

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    // sun_path holds 107 bytes; the test tmpdir can be longer.
    unix_path_ = absl::StrCat("/tmp/gw_upstream_test_", getpid(), ".sock");
    unlink(unix_path_.c_str());
    builder.AddListeningPort("unix:" + unix_path_, grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    unlink(unix_path_.c_str());
  }

  // Runs the loop until `done()` or 10 s; returns whether `done()` held.
  template <typename F>
  bool RunUntil(F done, absl::Duration limit = absl::Seconds(10)) {
    return RunLoopUntil(io_, done, limit);
  }
  void RunFor(absl::Duration d) { RunLoopFor(io_, d); }

  static std::string Req(const EchoRequest& r) { return r.SerializeAsString(); }

  std::shared_ptr<Http2Connection> Connect(ConnectionOptions options = {}) {
    return Http2Connection::Create(io_, Endpoint::Tcp("127.0.0.1", port_), std::move(options));
  }

  // A finished call: its messages and result.
  struct Outcome {
    std::vector<EchoResponse> messages;
    std::vector<std::pair<std::string, std::string>> headers;
    std::optional<CallResult> result;
  };
  GrpcStreamCallbacks Collect(Outcome* out, std::shared_ptr<GrpcStream>* stream) {
    GrpcStreamCallbacks cb;
    cb.on_headers = [out](const auto& h) { out->headers = h; };
    cb.on_message = [out, stream](std::string m) {
      EchoResponse r;
      EXPECT_TRUE(r.ParseFromString(m));
      out->messages.push_back(r);
      (*stream)->RequestNext();
    };
    cb.on_done = [out](const CallResult& r) { out->result = r; };
    return cb;
  }

  boost::asio::io_context io_;
  EchoService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string unix_path_;
};

TEST_F(UpstreamTest, ConnectsAndLearnsPeerSettings) {
  auto conn = Connect();
  std::optional<absl::Status> connected;
  conn->Connect([&](absl::Status s) { connected = s; });
  ASSERT_TRUE(RunUntil([&] { return connected.has_value(); }));
  EXPECT_TRUE(connected->ok()) << *connected;
  EXPECT_EQ(conn->state(), Http2Connection::State::kReady);
  EXPECT_GT(conn->peer_max_concurrent_streams(), 0u);
  EXPECT_TRUE(conn->CanTakeStream());
}

TEST_F(UpstreamTest, UnaryCall) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  EchoRequest req;
  req.set_payload("hello");
  auto s = conn->StartStream({"/gateway.test.v1.Echo/Unary", absl::Now() + absl::Seconds(5),
                              {{"x-user", "alice"}}},
                             Collect(&out, &stream));
  ASSERT_TRUE(s.ok()) << s.status();
  stream = *s;
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].payload(), "hello");
  // The backend saw the metadata as given, and a grpc-timeout it turned into a deadline.
  bool saw_user = false;
  for (const auto& m : out.messages[0].metadata()) saw_user |= m == "x-user=alice";
  EXPECT_TRUE(saw_user);
  bool saw_trailer = false;
  for (const auto& [k, v] : out.result->trailers) saw_trailer |= k == "x-echo-trailing" && v == "done";
  EXPECT_TRUE(saw_trailer);
  EXPECT_EQ(conn->active_streams(), 0u);
  // A second call reuses the connection.
  Outcome out2;
  std::shared_ptr<GrpcStream> stream2;
  stream2 = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out2, &stream2));
  ASSERT_TRUE(stream2->Write(Req(req)).ok());
  stream2->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out2.result.has_value(); }));
  EXPECT_TRUE(out2.result->status.ok()) << out2.result->status;
  EXPECT_EQ(stream2->stream_id(), 3);
}

TEST(AfterUpstreamReadTest, DeferredWorkRunsWhenTheOutermostScopeEnds) {
  EXPECT_FALSE(AfterUpstreamRead::Active());
  std::vector<std::string> order;
  {
    const AfterUpstreamRead::Scope outer;
    EXPECT_TRUE(AfterUpstreamRead::Active());
    AfterUpstreamRead::Defer([&] {
      order.push_back("first");
      // Work deferred by deferred work runs in the same end.
      AfterUpstreamRead::Defer([&] { order.push_back("third"); });
    });
    {
      const AfterUpstreamRead::Scope inner;
      AfterUpstreamRead::Defer([&] { order.push_back("second"); });
    }
    order.push_back("handler");
  }
  EXPECT_EQ(order, (std::vector<std::string>{"handler", "first", "second", "third"}));
  EXPECT_FALSE(AfterUpstreamRead::Active());
  // A later scope starts empty.
  { const AfterUpstreamRead::Scope again; }
  EXPECT_EQ(order.size(), 4u);
}

// A response is delivered inside the read handler that brought it, so what its consumer
// defers (the front end's flush) runs in that handler, before anything else of the loop.
TEST_F(UpstreamTest, ResponsesAreDeliveredInsideAnUpstreamReadScope) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  GrpcStreamCallbacks cb = Collect(&out, &stream);
  std::vector<std::string> order;
  auto on_message = cb.on_message;
  cb.on_message = [&, on_message](std::string m) {
    EXPECT_TRUE(AfterUpstreamRead::Active());
    AfterUpstreamRead::Defer([&] { order.push_back("deferred"); });
    boost::asio::post(io_, [&] { order.push_back("posted"); });
    order.push_back("message");
    on_message(std::move(m));
  };
  EchoRequest req;
  req.set_payload("scoped");
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, std::move(cb));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value() && order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<std::string>{"message", "deferred", "posted"}));
  EXPECT_FALSE(AfterUpstreamRead::Active());
}

TEST_F(UpstreamTest, UnixSocket) {
  auto conn = Http2Connection::Create(io_, Endpoint::Unix(unix_path_), {});
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  EchoRequest req;
  req.set_payload("over unix");
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out, &stream));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].payload(), "over unix");
}

TEST_F(UpstreamTest, ErrorStatusWithDetailsAndPercentEncodedMessage) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  EchoRequest req;
  req.set_fail_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  req.set_fail_message("100% broken: caf\xc3\xa9");
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out, &stream));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(out.result->status.message(), "100% broken: caf\xc3\xa9");
  EXPECT_EQ(out.result->details_bin, "raw-details\x01\x02");
  EXPECT_TRUE(out.messages.empty());
  EXPECT_FALSE(out.result->unprocessed);
}

TEST_F(UpstreamTest, UnknownMethodIsTrailersOnlyUnimplemented) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Nope"}, Collect(&out, &stream));
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kUnimplemented) << out.result->status;
  EXPECT_TRUE(out.headers.empty());  // trailers-only: no separate response headers
}

TEST_F(UpstreamTest, ServerStreamingWithSlowConsumerStopsTheBackend) {
  auto conn = Connect();
  EchoRequest req;
  req.set_payload(std::string(16 << 10, 'x'));
  req.set_count(200);  // 3.2 MB in all
  std::vector<EchoResponse> got;
  std::optional<CallResult> result;
  std::shared_ptr<GrpcStream> stream;
  GrpcStreamCallbacks cb;
  cb.on_message = [&](std::string m) {
    EchoResponse r;
    r.ParseFromString(m);
    got.push_back(r);  // no RequestNext(): the consumer holds
  };
  cb.on_done = [&](const CallResult& r) { result = r; };
  stream = *conn->StartStream({"/gateway.test.v1.Echo/ServerStream"}, std::move(cb));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  RunFor(absl::Milliseconds(500));
  EXPECT_EQ(got.size(), 1u);
  const int written_while_held = service_.stream_written.load();
  // One stream window (1 MiB by default: 64 of these messages) plus what gRPC buffers on
  // its side: far fewer than 200.
  EXPECT_LT(written_while_held, 100) << "the backend was not held back by flow control";
  while (!result.has_value()) {
    const size_t before = got.size();
    stream->RequestNext();
    ASSERT_TRUE(RunUntil([&] { return got.size() > before || result.has_value(); }));
  }
  EXPECT_TRUE(result->status.ok()) << result->status;
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[i].index(), i);
  std::printf("backend wrote %d of 200 messages while the consumer held\n", written_while_held);
}

TEST_F(UpstreamTest, ClientStreaming) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  stream = *conn->StartStream({"/gateway.test.v1.Echo/ClientStream"}, Collect(&out, &stream));
  for (int i = 0; i < 5; ++i) {
    EchoRequest req;
    req.set_payload(absl::StrCat("m", i));
    ASSERT_TRUE(stream->Write(Req(req)).ok());
    RunFor(absl::Milliseconds(10));
  }
  stream->WritesDone();
  EXPECT_FALSE(stream->Write("late").ok());
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].index(), 5);
  EXPECT_EQ(out.messages[0].payload(), "m4");
}

TEST_F(UpstreamTest, BidiPingPong) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Bidi"}, Collect(&out, &stream));
  for (int i = 0; i < 3; ++i) {
    EchoRequest req;
    req.set_payload(absl::StrCat("p", i));
    ASSERT_TRUE(stream->Write(Req(req)).ok());
    // Each answer arrives before the next request is sent.
    ASSERT_TRUE(RunUntil([&] { return out.messages.size() == static_cast<size_t>(i + 1); }));
    EXPECT_EQ(out.messages[i].payload(), absl::StrCat("p", i));
  }
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
}

TEST_F(UpstreamTest, DeadlineExceededLocallyAndAtTheBackend) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  EchoRequest req;
  req.set_sleep_ms(3000);
  const absl::Time start = absl::Now();
  stream = *conn->StartStream(
      {"/gateway.test.v1.Echo/Unary", absl::Now() + absl::Milliseconds(200)},
      Collect(&out, &stream));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kDeadlineExceeded)
      << out.result->status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(UpstreamTest, PastDeadlineNeverReachesTheBackend) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary", absl::Now() - absl::Seconds(1)},
                              Collect(&out, &stream));
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(UpstreamTest, CancelReachesTheBackend) {
  auto conn = Connect();
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  EchoRequest req;
  req.set_sleep_ms(5000);
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out, &stream));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  RunFor(absl::Milliseconds(100));
  stream->Cancel();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(RunUntil([&] { return service_.cancelled_seen.load() == 1; }));
}

TEST_F(UpstreamTest, MessageOverTheLimitIsResourceExhausted) {
  ConnectionOptions options;
  options.max_message_size = 1000;
  auto conn = Connect(options);
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  EchoRequest req;
  req.set_payload(std::string(5000, 'y'));
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out, &stream));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(out.messages.empty());
  // The connection still serves other calls.
  Outcome out2;
  std::shared_ptr<GrpcStream> stream2;
  req.set_payload("small");
  stream2 = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out2, &stream2));
  ASSERT_TRUE(stream2->Write(Req(req)).ok());
  stream2->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out2.result.has_value(); }));
  EXPECT_TRUE(out2.result->status.ok()) << out2.result->status;
}

TEST_F(UpstreamTest, UnreadBytesOfClosedStreamsGoBackToTheConnectionWindow) {
  // A connection window of 64 KiB (the HTTP/2 minimum) and streams that each leave about
  // 40 KiB received but unread when they end: without giving those bytes back, the second
  // or third stream would already stall the connection.
  ConnectionOptions options;
  options.connection_window = 65535;
  auto conn = Connect(options);
  EchoRequest req;
  req.set_payload(std::string(20 << 10, 'u'));
  req.set_count(3);
  for (int i = 0; i < 8; ++i) {
    std::shared_ptr<GrpcStream> stream;
    int got = 0;
    std::optional<CallResult> result;
    GrpcStreamCallbacks cb;
    cb.on_message = [&](std::string) { ++got; };  // holds: never RequestNext()
    cb.on_done = [&](const CallResult& r) { result = r; };
    stream = *conn->StartStream({"/gateway.test.v1.Echo/ServerStream"}, std::move(cb));
    ASSERT_TRUE(stream->Write(Req(req)).ok());
    stream->WritesDone();
    // The backend finishes the stream (all 60 KiB fit the stream window) while the consumer
    // holds the first message.
    ASSERT_TRUE(RunUntil([&] { return got == 1 && conn->active_streams() == 0; }))
        << "stream " << i << " did not finish at the backend";
    EXPECT_FALSE(result.has_value());
    stream->Cancel();
    ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
    EXPECT_EQ(result->status.code(), absl::StatusCode::kCancelled) << result->status;
    EXPECT_EQ(got, 1);
  }
  // Streams cancelled while the backend is still sending, with unread data.
  for (int i = 0; i < 4; ++i) {
    std::shared_ptr<GrpcStream> stream;
    int got = 0;
    std::optional<CallResult> result;
    GrpcStreamCallbacks cb;
    cb.on_message = [&](std::string) { ++got; };
    cb.on_done = [&](const CallResult& r) { result = r; };
    EchoRequest many = req;
    many.set_count(50);
    stream = *conn->StartStream({"/gateway.test.v1.Echo/ServerStream"}, std::move(cb));
    ASSERT_TRUE(stream->Write(Req(many)).ok());
    stream->WritesDone();
    ASSERT_TRUE(RunUntil([&] { return got == 1; }));
    RunFor(absl::Milliseconds(50));
    stream->Cancel();
    ASSERT_TRUE(RunUntil([&] { return result.has_value(); }));
    EXPECT_EQ(result->status.code(), absl::StatusCode::kCancelled) << result->status;
  }
  // A normal call on the same connection still completes.
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  stream = *conn->StartStream({"/gateway.test.v1.Echo/ServerStream"}, Collect(&out, &stream));
  ASSERT_TRUE(stream->Write(Req(req)).ok());
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }, absl::Seconds(5)))
      << "the connection stalled: its window was not given back";
  EXPECT_TRUE(out.result->status.ok()) << out.result->status;
  EXPECT_EQ(out.messages.size(), 3u);
}

TEST_F(UpstreamTest, InvalidMetadataIsRejected) {
  auto conn = Connect();
  GrpcStreamCallbacks cb;
  cb.on_done = [](const CallResult&) {};
  auto s = conn->StartStream({"/gateway.test.v1.Echo/Unary", absl::InfiniteFuture(),
                              {{"Bad Name", "v"}}},
                             cb);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  s = conn->StartStream({"/gateway.test.v1.Echo/Unary", absl::InfiniteFuture(),
                         {{"x-ok", "line\r\nbreak"}}},
                        cb);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(UpstreamTest, RefusedConnectionIsUnavailableAndUnprocessed) {
  // A port that was just free: nothing listens there.
  boost::asio::ip::tcp::acceptor probe(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const uint16_t dead_port = probe.local_endpoint().port();
  probe.close();
  auto conn = Http2Connection::Create(io_, Endpoint::Tcp("127.0.0.1", dead_port), {});
  Outcome out;
  std::shared_ptr<GrpcStream> stream;
  stream = *conn->StartStream({"/gateway.test.v1.Echo/Unary"}, Collect(&out, &stream));
  stream->WritesDone();
  ASSERT_TRUE(RunUntil([&] { return out.result.has_value(); }));
  EXPECT_EQ(out.result->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(out.result->unprocessed);
  EXPECT_EQ(conn->state(), Http2Connection::State::kClosed);
  EXPECT_FALSE(conn->CanTakeStream());
}

}  // namespace
}  // namespace gateway::upstream
