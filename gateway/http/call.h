// HttpCall: one REST call, whatever the HTTP version that carried it. Checks the request
// target, answers /healthz and /readyz, matches the route, translates the request, runs the
// interceptor chain, calls the backend (unary, server or client streaming) through the
// worker's own upstream (upstream::BackendCall, on this same event loop), and hands the
// response to a CallSink: the HTTP/1.1 connection or the HTTP/2 stream that received the
// request.
//
// Internal to the HTTP front end (see http_server.h for the behavior clients see).
//
// Thread-safety: a call runs on its connection's event loop (`executor`), backend call
// included; asynchronous interceptor results are posted there. Start and Cancel on that
// executor only.

#ifndef GATEWAY_HTTP_CALL_H_
#define GATEWAY_HTTP_CALL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "boost/asio/io_context.hpp"
#include "gateway/access_log/access_log.h"
#include "gateway/http/cors.h"
#include "gateway/http/http_metrics.h"
#include "gateway/http/grpc_web.h"
#include "gateway/interceptor.h"
#include "gateway/route_table.h"
#include "gateway/tracing/tracer.h"
#include "gateway/upstream/backend_call.h"
#include "gateway/upstream/worker_upstreams.h"
#include "transcoder/transcoder.h"

namespace gateway::openapi {
class OpenApiEndpoint;
}  // namespace gateway::openapi

namespace gateway::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// What every call of one server shares. Immutable while the server runs.
struct CallEnv {
  uint32_t max_body_bytes = 4 << 20;
  bool allow_encoded_slashes = false;
  absl::Duration default_deadline = absl::InfiniteDuration();
  // A native gRPC call whose client sent part of a request message and then nothing for
  // this long fails with DEADLINE_EXCEEDED (limits.idle_timeout). Between messages a
  // stream may stay quiet as long as it likes.
  absl::Duration message_idle_timeout = absl::InfiniteDuration();
  // The header REST and gRPC-Web clients may set their timeout with, besides grpc-timeout
  // (deadlines.http_timeout_header, lower case); empty: none.
  std::string timeout_header = "x-request-timeout";
  absl::flat_hash_set<std::string> forwarded;  // lower case
  absl::flat_hash_set<std::string> exposed;    // lower case
  std::shared_ptr<const CorsPolicy> cors;  // null: no CORS headers, no preflight answers
  // The OpenAPI documents, answered next to /healthz; null: not served.
  const openapi::OpenApiEndpoint* openapi = nullptr;
  // Null: no metrics.
  HttpMetrics* metrics = nullptr;
  // Native gRPC calls' metrics (GrpcRelayCall); null: none.
  GrpcMetrics* grpc_metrics = nullptr;
  // More of /readyz (HttpServer::Options::readiness); null: none.
  std::function<void(bool* ready, std::string* detail)> readiness;
  // A line per call (HttpServer::Options::access_log); null: none.
  access_log::AccessLog* access_log = nullptr;
  // A request without x-request-id gets a generated one, sent to the backend; the call's id
  // goes back in the x-request-id response header either way.
  bool generate_request_id = true;
  // Spans of every call and backend attempt (HttpServer::Options::tracer); null: none.
  const tracing::Tracer* tracer = nullptr;
};

// A request as received (HTTP/1.1 or HTTP/2).
struct HttpRequest {
  std::string method;  // "GET", ...
  std::string target;  // path and query, as received
  HeaderList headers;  // names lower case, in arrival order
  std::string body;
  std::string peer;    // "ipv4:127.0.0.1:5000"
  const char* protocol = "HTTP/1.1";  // or "HTTP/2" (a literal)
  // The verified client certificate's identity (mutual TLS; see tls_identity.h), or empty.
  std::string peer_identity;

  // The first value of header `name` (lower case), or empty.
  absl::string_view Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
};

// Where a call's response goes. Exactly one of: Respond(); or StartStream() followed by
// Write()s, the last with last=true.
class CallSink {
 public:
  virtual ~CallSink() = default;
  // A whole response (Content-Length known).
  virtual void Respond(int status, HeaderList headers, std::string body) = 0;
  // The head of a response whose body follows in Write()s.
  virtual void StartStream(int status, HeaderList headers) = 0;
  // Part of a streamed body; `last` ends the response. `written` runs once the client
  // took the bytes (true) or is gone (false); the call reads the next message from the
  // backend only then.
  virtual void Write(std::string data, bool last, std::function<void(bool)> written) = 0;
  // Takes `data` (more of a body begun with StartStream) at once when the sink has room
  // for it below its buffer's bound, and returns true: the call may send more now. False:
  // nothing taken (no room, or a sink that cannot), and the call uses Write.
  virtual bool TryWrite(std::string& data) { return false; }

  // gRPC over HTTP/2 (GrpcRelayCall, grpc_call.h). Ends a response begun with
  // StartStream(), after the bytes of the earlier Write()s, with a trailer block (HTTP/2
  // trailers: grpc-status, ...). A sink without trailers (HTTP/1.1) ends the body instead.
  virtual void Finish(HeaderList trailers) { Write(std::string(), true, [](bool) {}); }
  // A response of headers only that ends the stream: gRPC's trailers-only response (no
  // body, no content-length).
  virtual void RespondTrailersOnly(int status, HeaderList headers) {
    Respond(status, std::move(headers), std::string());
  }
};

// For a gRPC-Web request (by its Content-Type), fills `headers` with those of a
// trailers-only response carrying `status` (sent with HTTP 200) and returns true; false
// for other requests. Used for errors found before a call exists (body over the limit).
bool GrpcWebErrorHeaders(absl::string_view content_type, const absl::Status& status,
                         HeaderList* headers);

// The body of a request that is still arriving, pulled piece by piece by a client-streaming
// call: the connection reads the socket (HTTP/1.1) or opens the stream's flow-control window
// (HTTP/2) only when asked, so a client that sends faster than the backend takes is paced.
// Methods run on the connection's event loop.
class BodyReader {
 public:
  // (status, bytes, last): bytes that arrived (possibly empty when `last`), `last` at the end
  // of the body; or an error (RESOURCE_EXHAUSTED: over max_body_bytes; INVALID_ARGUMENT: a
  // malformed body encoding), after which nothing more comes.
  using Callback = std::function<void(absl::Status, std::string, bool)>;

  virtual ~BodyReader() = default;

  // Asks for the next piece; `done` runs once, on the event loop, not inside Read(). At most
  // one Read at a time. A client that goes away cancels the call instead (HttpCall::Cancel),
  // and `done` is dropped.
  virtual void Read(Callback done) = 0;
  // Takes the next piece at once when it has arrived (or the body ended, or failed) and
  // returns true with what Read's callback would get; false when it has not (use Read).
  // Not while a Read is pending.
  virtual bool ReadNow(absl::Status* status, std::string* data, bool* last) { return false; }
};

// The id of a call of `request`: the client's x-request-id (empty when it cannot be a header
// value: the metadata policy refuses a call that forwards it), else, when
// `env.generate_request_id`, a fresh one, and *generated is set (the call sends it to the
// backend). The call returns its id in the x-request-id response header unless empty.
std::string CallRequestId(const CallEnv& env, const HttpRequest& request, bool* generated);

// The access-log line of a call of the HTTP front end (docs/config.md, "access_log"), the
// same fields filled the same way for every call class: what the class knows goes in
// `entry`, the request's own fields (time, protocol, method, path without the query,
// user agent, trace id, peer) come from `request`. The line is kept or dropped by the
// log's sampling rules (errors kept). TTFB: `first_byte` when a response head went out
// before the end, else the whole duration (a response sent at once); none for a client
// that left first (status 0) before any byte.
struct AccessLogEntry {
  const char* front_end = "";  // a literal
  int status = 0;              // HTTP status; 0: the client went away first
  int grpc_status = -1;        // -1: none
  absl::Time arrival;
  absl::Time now;
  absl::Time first_byte = absl::InfinitePast();
  const Route* route = nullptr;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  const upstream::BackendCall* backend = nullptr;  // upstream endpoint and attempts
  const CallContext* call_ctx = nullptr;           // caller id
  std::string request_id;
};
void LogCall(access_log::AccessLog* log, const HttpRequest& request, AccessLogEntry entry);

// The client's own deadline of a REST, gRPC-Web or WebSocket call: grpc-timeout, or
// CallEnv::timeout_header (the earlier when both); InfiniteFuture when neither. Returns
// INVALID_ARGUMENT naming the header for a malformed value.
absl::StatusOr<absl::Time> ClientDeadline(const CallEnv& env, const HttpRequest& request,
                                          absl::Time now);

// The deadline a call starts with: the client's, else now + http_listener.default_deadline.
// The listener's default is not the client's: a deadline rule's default_timeout still applies
// (the earlier wins; see the deadline interceptor).
absl::Time StartDeadline(const CallEnv& env, absl::Time now, absl::Time client_deadline);

// The CallContext of a front-end call of `route` (CallContext::Make with the request's peer,
// TLS identity and header count): `client_deadline` is the client's own deadline, `deadline`
// the one the interceptors start from (the listener's default may bound it), `query` the
// request's query string (REST).
std::unique_ptr<CallContext> MakeCallContext(FrontEnd front_end, const Route& route,
                                             const HttpRequest& request,
                                             absl::Time client_deadline, absl::Time deadline,
                                             absl::Time now, absl::string_view query = {});

// What every call does between an accepting verdict and its backend call: `*deadline`
// becomes the one the interceptors left and their metadata edits apply to `metadata` (`ctx`
// null: no chain ran), then limits.max_metadata_bytes is checked and a deadline already
// past refused. Returns OK, or the error and in `*http_status` the HTTP status a REST client
// gets for it (500 for an edit that failed, 431, 504).
absl::Status PrepareBackendCall(const CallContext* ctx, const Route& route,
                                upstream::Headers* metadata, absl::Time* deadline,
                                int* http_status);

// The interceptor part every call of the HTTP front end shares: copies the request headers
// into `ctx` (already made with CallContext::Make), runs `chain`, and hands the verdict to
// `done` on `executor` (an asynchronous interceptor may answer on another thread). `done`
// holds whatever must stay alive until then.
void RunInterceptorChain(const InterceptorChain& chain, CallContext* ctx,
                         const HeaderList& headers,
                         boost::asio::io_context::executor_type executor,
                         std::function<void(absl::Status)> done);

class HttpCall : public std::enable_shared_from_this<HttpCall> {
 public:
  // `sink` must stay valid until the call's last Respond/Write, or until Cancel();
  // `sink_owner` (the connection that owns the sink) is held until then. `upstreams` are
  // the worker's (the event loop of `executor`).
  HttpCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
           boost::asio::io_context::executor_type executor,
           upstream::WorkerUpstreams* upstreams, CallSink* sink,
           std::shared_ptr<void> sink_owner)
      : env_(env),
        table_(std::move(table)),
        executor_(executor),
        upstreams_(upstreams),
        sink_(sink),
        sink_owner_(std::move(sink_owner)) {}

  ~HttpCall();

  // Serves `request`.
  void Start(HttpRequest request);

  // For a request whose head arrived and whose body has not (yet) fully: when it goes to a
  // client-streaming REST method, takes *head (its body empty), starts the call and returns
  // true; the call then pulls the body from `body` (which must stay valid until the call's
  // response, or Cancel()) and sends each message to the backend as soon as it is complete,
  // reading on only once the backend took the previous one. Otherwise returns false and
  // leaves *head alone: read the whole body and call Start().
  bool StartStreaming(HttpRequest* head, BodyReader* body);

  // The client went away: cancels the backend call; the sink hears nothing more.
  void Cancel();

 private:
  void Dispatch();
  void RunInterceptors(absl::Time now, absl::string_view query);
  void Ready();
  absl::Status SplitClientStream(absl::string_view query, absl::string_view content_type);
  void OnIntercepted(absl::Status status);
  void StartBackend();
  // The backend call's events.
  void OnBackendMessage(std::string message);
  void OnBackendFinished(const upstream::CallResult& result);
  void WriteNextMessage();
  void PumpBody();
  void OnBody(absl::Status status, std::string data, bool last);
  void FailStream(absl::Status status);
  void OnBackendDone();
  void SendStreamMessage(std::string message);
  void OnWritten(bool ok);
  std::string BackendErrorBody();
  void AddExposedMetadata(HeaderList* headers);

  void SendError(int http_status, const absl::Status& status);
  // Counts the response (once) with `status`; 0: the client went away first.
  void CountResponse(int status);
  // A call refused before a response started: SendError for REST, a trailers-only
  // response for gRPC-Web.
  void Reject(int http_status, const absl::Status& status);

  // gRPC-Web (grpc_web_call.cc): the request's messages are relayed as they are.
  void DispatchGrpcWeb(absl::string_view path, absl::string_view query,
                       grpc_web::GrpcWebType type);
  absl::Status GrpcWebMetadata();
  // client_deadline_ and deadline_ from the request (ClientDeadline, StartDeadline).
  absl::Status SetDeadline(absl::Time now);
  HeaderList GrpcWebHeaders(bool with_trailing);
  void GrpcWebTrailersOnly(const absl::Status& status);
  void GrpcWebSendMessage(const std::string& message);
  void GrpcWebFinish();
  void Respond(int status, HeaderList headers, std::string body);
  // Access log and x-request-id (call.cc).
  void AssignRequestId();
  void AddRequestIdHeader(HeaderList* headers);
  void StreamStarted();
  void LogAccess(int status, absl::Time now);

  const CallEnv* const env_;
  const std::shared_ptr<const RouteTable> table_;
  const boost::asio::io_context::executor_type executor_;
  upstream::WorkerUpstreams* const upstreams_;
  CallSink* sink_;
  std::shared_ptr<void> sink_owner_;

  HttpRequest request_;
  const Route* route_ = nullptr;
  transcoder::RouteMatch match_;
  absl::Time deadline_ = absl::InfiniteFuture();
  absl::Time client_deadline_ = absl::InfiniteFuture();  // what the client asked for
  HeaderList metadata_;
  std::vector<std::string> messages_;
  std::size_t next_message_ = 0;
  transcoder::StreamFormat stream_format_ = transcoder::StreamFormat::kJsonArray;
  std::unique_ptr<CallContext> call_ctx_;
  HeaderList reject_headers_;
  HeaderList cors_headers_;  // added to the response of an allowed cross-origin request

  std::shared_ptr<upstream::BackendCall> backend_;
  bool backend_done_ = false;
  bool has_response_ = false;
  bool cancelled_ = false;
  bool headers_sent_ = false;
  absl::Time arrival_;
  std::shared_ptr<tracing::CallSpan> span_;  // null: tracing off
  bool counted_ = false;
  // The backend's answer: the status (for the client: Backend::UpstreamClientStatus), its
  // details (grpc-status-details-bin, decoded), the response headers and trailers as
  // received, and the single response message of a unary or client-streaming call.
  absl::Status status_;
  std::string status_details_;
  upstream::Headers response_headers_;
  upstream::Headers response_trailers_;
  std::string response_;
  // A status the gateway ends the call with in place of the backend's (a response message
  // it could not translate); OK: none.
  absl::Status status_override_;
  std::optional<transcoder::StreamFramer> framer_;
  // Client streams read as the body arrives (StartStreaming).
  BodyReader* body_ = nullptr;
  std::optional<transcoder::JsonStreamReader> stream_reader_;
  std::string stream_common_;  // the path and query fields, appended to every message
  bool body_reading_ = false;
  bool body_done_ = false;
  bool stream_finished_ = false;  // JsonStreamReader::Finish() passed
  std::size_t messages_sent_ = 0;
  absl::Status stream_error_;  // a broken message found after the backend call started
  int stream_error_http_ = 0;  // its HTTP status when not the status code's mapping
  bool grpc_web_ = false;
  grpc_web::Encoding web_encoding_ = grpc_web::Encoding::kBinary;
  // The call's x-request-id (the client's, or generated when request_id_generated_);
  // returned unless empty. For the access log: the gRPC status of an error the gateway
  // answered itself (-1: none), body bytes each way, when a streamed response started.
  std::string request_id_;
  bool request_id_generated_ = false;
  int gateway_code_ = -1;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  absl::Time first_byte_ = absl::InfinitePast();
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_CALL_H_
