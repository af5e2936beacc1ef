// GrpcRelayCall: one native gRPC call (HTTP/2, content-type application/grpc or
// application/grpc+<subtype>) received by the HTTP front end and relayed to its backend on
// the same worker, message by message, without gRPC core on the path.
//
// The request headers are checked (POST, grpc-timeout, grpc-encoding), the method is
// routed by :path (RouteTable::Find), the request headers become metadata through the
// metadata policy, and the interceptor chain runs as for every front end (front end
// "grpc"). The request body goes to upstream::BackendCall::Write as it is read, in the
// pieces it arrives in (BackendCall::Spec::framed): only the 5-byte message prefixes are
// read (upstream::GrpcFrameScanner: limits.max_message_bytes is enforced at the prefix,
// before any byte of that message goes on), and more of the body is read only once the
// backend took the piece before. No message is ever held whole, either way. Response
// bytes are written as they arrive, as the backend sent them, the next piece asked for
// only once the client took the one before; the call ends with HTTP/2 trailers
// (grpc-status, grpc-message, grpc-status-details-bin, the backend's trailing metadata), or
// with a trailers-only response when it ends before its first response bytes (errors the
// gateway answers itself included).
//
// Compressed messages (flag byte 1) pass through untouched both ways: the client's
// grpc-encoding and grpc-accept-encoding go to the backend, the backend's come back, and
// the gateway never decompresses (it reads only the prefixes).
//
// Thread-safety: a call runs on its connection's event loop, backend call included;
// asynchronous interceptor results are posted there. Start and Cancel on that loop only.
//
//   auto call = std::make_shared<GrpcRelayCall>(env, table, executor, upstreams, stream,
//                                               stream, session);
//   call->Start(std::move(request_head));   // the body is pulled from `stream`
//   ...
//   call->Cancel();                         // the client reset the stream

#ifndef GATEWAY_HTTP_GRPC_CALL_H_
#define GATEWAY_HTTP_GRPC_CALL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "gateway/http/call.h"
#include "gateway/interceptor.h"
#include "gateway/route_table.h"
#include "gateway/upstream/backend_call.h"
#include "gateway/upstream/grpc_framing.h"
#include "gateway/upstream/worker_upstreams.h"

namespace gateway::http {

// True for a native gRPC request's content type: "application/grpc", optionally followed
// by "+<subtype>" or ";<parameters>" (ASCII case-insensitive). False for gRPC-Web
// ("application/grpc-web...") and anything else.
bool IsGrpcContentType(absl::string_view content_type);

class GrpcRelayCall : public std::enable_shared_from_this<GrpcRelayCall> {
 public:
  // `sink` and `body` (the HTTP/2 stream) must stay valid until the call's last response
  // (CallSink::Finish or RespondTrailersOnly) or Cancel(); `sink_owner` (the connection)
  // is held until then. `upstreams` are the worker's (the event loop of `executor`).
  GrpcRelayCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
                boost::asio::io_context::executor_type executor,
                upstream::WorkerUpstreams* upstreams, CallSink* sink, BodyReader* body,
                std::shared_ptr<void> sink_owner);
  ~GrpcRelayCall();

  // Serves the call whose headers are `head` (body empty: it is pulled from `body`).
  void Start(HttpRequest head);
  // The client went away (RST_STREAM or connection lost): the backend call is cancelled
  // (the backend sees CANCELLED); the sink hears nothing more.
  void Cancel();

 private:
  void RunInterceptors(absl::Time now);
  void OnIntercepted(absl::Status status);
  void StartBackend();
  // Request side: hands what was read of the body to the backend, or reads more, or ends
  // the request stream.
  void PumpRequest();
  void OnBody(absl::Status status, std::string data, bool last);
  // While a body read is pending inside a request message: fails the call if nothing more
  // comes within CallEnv::message_idle_timeout.
  void ArmStallTimer();
  void FailRequest(absl::Status status);
  // Response side.
  void OnBackendMessage(std::string message);
  void OnWritten(bool ok);
  void OnBackendDone(const upstream::CallResult& result);
  HeaderList ResponseHeaders();
  void SendHeaders();
  // Ends the call with `status` before any response message: a trailers-only response
  // (HTTP `http_status`, normally 200) carrying what the backend sent, if anything.
  void TrailersOnly(const absl::Status& status, int http_status = 200);
  void Finish();
  int ClientCode(int http_status) const;
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
  const Route* route_ = nullptr;
  absl::Time arrival_;
  std::shared_ptr<tracing::CallSpan> span_;  // null: tracing off
  absl::Time deadline_ = absl::InfiniteFuture();
  absl::Time client_deadline_ = absl::InfiniteFuture();
  upstream::Headers metadata_;
  std::unique_ptr<CallContext> call_ctx_;
  HeaderList reject_headers_;
  std::string request_id_;
  GrpcMetrics::Series* series_ = nullptr;  // null: no metrics

  std::shared_ptr<upstream::BackendCall> backend_;
  // The request body, passed to the backend as it is read: request_scan_ follows its
  // 5-byte prefixes (limits.max_message_bytes), pending_ holds what was read and not yet
  // written. response_scan_ follows the response's prefixes (for BYTES_OUT).
  std::optional<upstream::GrpcFrameScanner> request_scan_;
  std::optional<upstream::GrpcFrameScanner> response_scan_;
  std::string pending_;
  std::optional<boost::asio::steady_timer> stall_timer_;  // made on first use
  bool cancelled_ = false;
  bool finished_ = false;       // the response ended (or the call was cancelled)
  bool backend_done_ = false;
  bool reading_ = false;        // a body Read is pending
  bool body_ended_ = false;     // the client's END_STREAM was read
  bool writing_ = false;        // bytes are with the backend, on_writable pending
  bool writes_done_ = false;
  absl::Status request_error_;  // a broken request body: the call ends with it
  bool headers_sent_ = false;
  upstream::Headers response_headers_;
  upstream::Headers response_trailers_;
  absl::Status status_;
  std::string status_details_;
  bool counted_ = false;
  int gateway_code_ = -1;  // the gRPC code of an error the gateway answered itself
  absl::Time first_byte_ = absl::InfinitePast();
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_GRPC_CALL_H_
