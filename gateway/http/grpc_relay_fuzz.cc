// Fuzz target: arbitrary client bytes against the HTTP front end's HTTP/2 server session
// (http2_session.cc) and the gRPC relay (grpc_call.cc), over real loopback sockets.
//
// Once per process: an in-process gRPC backend that answers every call, after the client's
// last message, with one message and OK; and an HttpServer (one worker) compiled from a
// config whose only service (gateway.test.v1.Echo, tests/testdata/echo_proto.pb) goes to
// that backend, with limits.max_message_bytes at 4096 so inputs reach the limit.
//
// Per input, the first byte picks the variant:
//   odd:  the rest is written after the client connection preface on a fresh connection,
//         so it is read as HTTP/2 frames (headers, windows, resets, ... of any shape); the
//         answer is read until the server closes the connection or goes quiet.
//   even: the rest is the DATA payload of a well-formed gRPC request (so the header checks
//         pass and the deframer and the relay see arbitrary message bytes); the call must
//         end with a grpc-status within a bound, whatever the bytes.
// After each input a well-formed call on a new connection must be answered with OK: the
// server neither crashed nor wedged. A failure aborts with what was wrong.
//
// The whole server runs per input, so each takes milliseconds (the quiet wait dominates).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/config/config_loader.h"
#include "gateway/gateway_config.h"
#include "gateway/http/http_server.h"
#include "gateway/snapshot.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"

namespace {

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr absl::string_view kPath = "/gateway.test.v1.Echo/Unary";
constexpr absl::string_view kDescriptorSet = "tests/testdata/echo_proto.pb";

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "grpc_relay_fuzz: %s\n", what.c_str());
  std::abort();
}

// The backend: reads every request message, then answers one message "ok" and OK.
class AnswerEveryCall final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Reactor();
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    Reactor() {
      grpc::Slice slice(std::string("ok"));
      response_ = grpc::ByteBuffer(&slice, 1);
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (ok) {
        request_.Clear();
        StartRead(&request_);
        return;
      }
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
  };
};

// The process-wide servers; never destroyed (the fuzz driver exits with them running).
struct Fixture {
  AnswerEveryCall service;
  std::unique_ptr<grpc::Server> backend;
  std::shared_ptr<const gateway::GatewayConfig> config;
  std::unique_ptr<gateway::Snapshot<gateway::RouteTable>> routes;
  std::unique_ptr<gateway::http::HttpServer> server;
  int port = 0;
};

Fixture* Start() {
  auto* f = new Fixture();
  int backend_port = 0;
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &backend_port);
  builder.RegisterCallbackGenericService(&f->service);
  f->backend = builder.BuildAndStart();
  if (f->backend == nullptr || backend_port == 0) Fail("the in-process backend did not start");

  const std::string yaml = absl::StrCat(R"(
grpc_listener: {address: "127.0.0.1:0"}
descriptor_sets: [")", kDescriptorSet, R"("]
backends:
  - {name: echo, target: "ipv4:127.0.0.1:)", backend_port, R"("}
services:
  - {name: gateway.test.v1.Echo, backend: echo}
limits: {max_message_bytes: 4096}
runtime: {worker_threads: 1}
)");
  absl::StatusOr<gateway::config::v1::Config> proto =
      gateway::ParseConfigText(yaml, "grpc_relay_fuzz");
  if (!proto.ok()) Fail(std::string(proto.status().message()));
  absl::StatusOr<std::shared_ptr<const gateway::GatewayConfig>> config =
      gateway::CompileConfig(*proto, ".");
  if (!config.ok()) Fail(std::string(config.status().message()));
  f->config = *config;
  f->routes = std::make_unique<gateway::Snapshot<gateway::RouteTable>>(f->config->routes);

  const gateway::GatewayConfig::Http& g = f->config->grpc;
  gateway::http::HttpServer::Options o;
  o.address = g.address;
  o.worker_threads = 1;
  o.max_body_bytes = g.max_body_bytes;
  o.max_header_bytes = g.max_header_bytes;
  o.max_header_count = g.max_header_count;
  o.max_concurrent_streams = g.max_concurrent_streams;
  o.header_read_timeout = g.header_read_timeout;
  o.idle_timeout = g.idle_timeout;
  o.forwarded_request_headers = g.forwarded_request_headers;
  o.default_deadline = g.default_deadline;
  absl::StatusOr<std::unique_ptr<gateway::http::HttpServer>> server =
      gateway::http::HttpServer::Start(o, f->routes.get());
  if (!server.ok()) Fail(std::string(server.status().message()));
  f->server = *std::move(server);
  f->port = f->server->port();
  return f;
}

// A connected loopback socket (TCP_NODELAY), or -1.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Writes all of `bytes`; false once the peer is gone.
bool WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Variant 1: the preface and `frames`, then reads until the server closes the connection,
// sends nothing for `quiet`, or `limit` passed.
void SendRawFrames(int port, absl::string_view frames, absl::Duration quiet,
                   absl::Duration limit) {
  const int fd = Connect(port);
  if (fd < 0) Fail("cannot connect to the server");
  std::string out(kPreface);
  out.append(frames.data(), frames.size());
  if (WriteAll(fd, out)) {
    const absl::Time end = absl::Now() + limit;
    char buffer[16 << 10];
    while (absl::Now() < end) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(quiet))) <= 0) break;
      if (recv(fd, buffer, sizeof(buffer), 0) <= 0) break;
    }
  }
  close(fd);
}

// One gRPC call as an nghttp2 client sees it.
struct Outcome {
  bool closed = false;       // the stream ended (response complete or reset)
  uint32_t reset_code = 0;   // its RST_STREAM code, if any
  bool connection_lost = false;
  std::string grpc_status;   // from the headers or trailers
  std::string grpc_message;
};

struct ClientState {
  Outcome outcome;
  absl::string_view body;
  int32_t stream_id = 0;
};

ssize_t ReadRequestBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                        uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
  auto* state = static_cast<ClientState*>(user_data);
  const size_t n = std::min(length, state->body.size());
  std::memcpy(buf, state->body.data(), n);
  state->body.remove_prefix(n);
  if (state->body.empty()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int OnClientHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                   size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                   void* user_data) {
  auto* state = static_cast<ClientState*>(user_data);
  if (frame->hd.stream_id != state->stream_id) return 0;
  const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
  const absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == "grpc-status") state->outcome.grpc_status = std::string(v);
  if (n == "grpc-message") state->outcome.grpc_message = std::string(v);
  return 0;
}

int OnClientStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                        void* user_data) {
  auto* state = static_cast<ClientState*>(user_data);
  if (stream_id != state->stream_id) return 0;
  state->outcome.closed = true;
  state->outcome.reset_code = error_code;
  return 0;
}

// Variant 2 and the health check: a POST of `body` (the DATA payload, END_STREAM) to the
// Echo service's Unary method with grpc-timeout 2S, on a new connection, read for at most
// `limit`.
Outcome GrpcCall(int port, absl::string_view body, absl::Duration limit) {
  ClientState state;
  state.body = body;
  const int fd = Connect(port);
  if (fd < 0) Fail("cannot connect to the server");
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, OnClientHeader);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, OnClientStreamClose);
  nghttp2_session* session;
  nghttp2_session_client_new(&session, callbacks, &state);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  auto nv = [](absl::string_view name, absl::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
  };
  const nghttp2_nv headers[] = {
      nv(":method", "POST"),        nv(":scheme", "http"),
      nv(":path", kPath),           nv(":authority", "fuzz"),
      nv("content-type", "application/grpc"), nv("te", "trailers"),
      nv("grpc-timeout", "2S"),
  };
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = ReadRequestBody;
  state.stream_id = nghttp2_submit_request(session, nullptr, headers,
                                           sizeof(headers) / sizeof(headers[0]), &provider,
                                           nullptr);
  const absl::Time end = absl::Now() + limit;
  char buffer[16 << 10];
  while (!state.outcome.closed) {
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session, &data)) > 0) {
      if (!WriteAll(fd, absl::string_view(reinterpret_cast<const char*>(data), n))) break;
    }
    const absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) break;
    const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0 || nghttp2_session_mem_recv(session, reinterpret_cast<uint8_t*>(buffer),
                                             static_cast<size_t>(got)) < 0) {
      state.outcome.connection_lost = true;
      break;
    }
  }
  nghttp2_session_del(session);
  close(fd);
  return state.outcome;
}

std::string Describe(const Outcome& o) {
  return absl::StrCat("closed=", o.closed, " reset_code=", o.reset_code,
                      " connection_lost=", o.connection_lost, " grpc-status=", o.grpc_status,
                      " grpc-message=", o.grpc_message);
}

// A well-formed call: one empty message. The server must answer it with OK.
void CheckServing(int port) {
  const Outcome o = GrpcCall(port, absl::string_view("\0\0\0\0\0", 5), absl::Seconds(5));
  if (!o.closed || o.reset_code != 0 || o.grpc_status != "0") {
    Fail("the server no longer serves a well-formed call: " + Describe(o));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* const fixture = Start();
  if (size == 0) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    SendRawFrames(fixture->port, rest, absl::Milliseconds(10), absl::Milliseconds(300));
  } else {
    // Whatever the message bytes, the relay answers with a gRPC status (OK from the
    // backend, or the gateway's error for a truncated, oversized or badly flagged message).
    const Outcome o = GrpcCall(fixture->port, rest, absl::Seconds(4));
    if (!o.closed || o.reset_code != 0 || o.grpc_status.empty()) {
      Fail("a gRPC request body got no gRPC status: " + Describe(o));
    }
  }
  CheckServing(fixture->port);
  return 0;
}
