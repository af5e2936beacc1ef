// ConnectCall: one Connect protocol call (connect.h) received by the HTTP front end, over
// HTTP/1.1 or HTTP/2, translated to a gRPC call of its backend.
//
// Unary calls: POST with content-type application/proto or application/json, the body one
// message; or GET with ?connect=v1&encoding=...&message=... for methods whose
// idempotency_level is NO_SIDE_EFFECTS. The response is the message (200) or the Connect
// error JSON with the spec's HTTP status; the backend's trailing metadata comes back as
// "trailer-" prefixed headers. Streaming calls (application/connect+proto|json, any of the
// four call kinds): enveloped messages both ways, the response always 200, ending with an
// end-of-stream envelope carrying the error (if any) and the trailing metadata.
//
// JSON messages go through the transcoder's codec (the same as REST's); proto messages pass
// as they are. The method is routed by path (RouteTable::Find), the request headers become
// metadata through the metadata policy as for gRPC-Web (connect-* headers are the
// protocol's, not metadata), connect-timeout-ms sets the deadline, and the interceptor chain
// runs as for every front end. Calls are counted in HttpMetrics (http_metrics.h) with the
// HTTP status they were answered with; a call from another origin that the CORS policy
// allows gets the CORS headers (CorsPolicy::AddConnectResponseHeaders). With a tracer, a call
// that reaches the interceptor chain gets a server span (front end "connect") continuing its
// traceparent, and each backend attempt a client span, as REST calls do. Compression: gzip
// both ways (requests inflated with limits.max_message_bytes as the bound, responses of at
// least 1 KiB compressed when the client accepts gzip); any other encoding is refused
// (unimplemented).
//
// Thread-safety: a call runs on its connection's event loop, backend call included;
// asynchronous interceptor results are posted there. Start and Cancel on that loop only.
//
//   auto call = std::make_shared<ConnectCall>(env, table, executor, upstreams, sink,
//                                             body_or_null, connection);
//   call->Start(std::move(request));  // body in request.body when body_or_null is null
#ifndef GATEWAY_HTTP_CONNECT_CALL_H_
#define GATEWAY_HTTP_CONNECT_CALL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "gateway/http/call.h"
#include "gateway/http/connect.h"
#include "gateway/interceptor.h"
#include "gateway/route_table.h"
#include "gateway/tracing/tracer.h"
#include "gateway/upstream/backend_call.h"
#include "gateway/upstream/worker_upstreams.h"

namespace gateway::http {

// Whether `request` (its head) is a Connect call, given the route table: a streaming
// Connect content type (application/connect+proto|json); POST of application/proto to a
// path the table knows as a gRPC method ("/pkg.Service/Method"), or of application/json
// with a connect-protocol-version header (without it, JSON to such a path stays REST, as
// transcoding.expose_grpc_paths serves it); GET of such a path whose query has connect=v1.
// Everything else, REST routes included, is not.
bool IsConnectRequest(const RouteTable& table, const HttpRequest& request);
// True for application/connect+proto|json (a body that streams).
bool IsConnectStreaming(absl::string_view content_type);

class ConnectCall : public std::enable_shared_from_this<ConnectCall> {
 public:
  // `sink` (and `body`, when not null) must stay valid until the call's last response or
  // Cancel(); `sink_owner` is held until then. With `body` null the whole request body is
  // in the request given to Start.
  ConnectCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
              boost::asio::io_context::executor_type executor,
              upstream::WorkerUpstreams* upstreams, CallSink* sink, BodyReader* body,
              std::shared_ptr<void> sink_owner);
  ~ConnectCall();

  void Start(HttpRequest request);
  // The client went away: the backend call is cancelled; the sink hears nothing more.
  void Cancel();

 private:
  void RunInterceptors(absl::Time now);
  void OnIntercepted(absl::Status status);
  void StartBackend();
  void PumpRequest();
  void OnBody(absl::Status status, std::string data, bool last);
  // One request message as the client sent it: converted for the backend, or an error.
  absl::StatusOr<std::string> RequestMessage(std::string data);
  void FailRequest(absl::Status status);
  void OnBackendMessage(std::string message);
  void OnWritten(bool ok);
  void OnBackendDone(const upstream::CallResult& result);
  HeaderList ResponseHeaders(bool unary_trailers);
  // Ends the call with `status` (not OK) before any response went out.
  void Fail(const absl::Status& status, int http_status = 0);
  void FinishUnary();
  void FinishStream();
  void CountResponse(int status);
  void LogAccess(int status, absl::Time now);

  const CallEnv* const env_;
  const std::shared_ptr<const RouteTable> table_;
  const boost::asio::io_context::executor_type executor_;
  upstream::WorkerUpstreams* const upstreams_;
  CallSink* sink_;
  BodyReader* body_;
  std::shared_ptr<void> sink_owner_;

  HttpRequest request_;
  connect::ContentType type_;
  bool get_ = false;
  const Route* route_ = nullptr;
  absl::Time arrival_;
  absl::Time deadline_ = absl::InfiniteFuture();
  absl::Time client_deadline_ = absl::InfiniteFuture();
  upstream::Headers metadata_;
  std::unique_ptr<CallContext> call_ctx_;
  std::shared_ptr<tracing::CallSpan> span_;  // null: tracing off, or refused before the chain
  HeaderList reject_headers_;
  HeaderList cors_headers_;  // every response of a call from an allowed other origin
  std::string request_id_;
  size_t max_message_ = 4 << 20;

  std::shared_ptr<upstream::BackendCall> backend_;
  std::optional<connect::EnvelopeReader> reader_;  // streaming requests
  std::string unary_body_;                         // unary POST: the body so far
  bool request_gzip_ = false;   // the request's messages (or unary body) may be gzip
  bool response_gzip_ = false;  // the client accepts gzip responses
  bool unary_sent_ = false;
  bool cancelled_ = false;
  bool finished_ = false;
  bool backend_done_ = false;
  bool reading_ = false;
  bool body_ended_ = false;
  bool writing_ = false;
  bool writes_done_ = false;
  absl::Status request_error_;
  bool headers_sent_ = false;
  upstream::Headers response_headers_;
  upstream::Headers response_trailers_;
  std::string response_;  // unary: the response message
  bool has_response_ = false;
  absl::Status status_;
  std::string status_details_;
  bool counted_ = false;
  int gateway_code_ = -1;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t messages_in_ = 0;
  absl::Time first_byte_ = absl::InfinitePast();
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_CONNECT_CALL_H_
