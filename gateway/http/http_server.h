// HttpServer: the HTTP/JSON front end. REST clients call the google.api.http routes of the
// served gRPC methods over HTTP/1.1 (keep-alive, chunked responses); each call is matched
// and translated by the route table's transcoder, runs the table's interceptor chain
// (RouteTable::chain()), and is sent to the method's backend with a deadline; the
// response (or the gRPC status) is turned back into JSON (or an HTTP error with a JSON
// error body {code, message, details}).
//
// Threads: `worker_threads` event loops (one boost::asio::io_context and thread each)
// own the connections, which are spread over them round robin; nothing blocks on them.
// Each loop also owns its connections to the backends (upstream::WorkerUpstreams): a call
// runs on its connection's loop from the first request byte to the last response byte.
//
// Native gRPC (grpc_call.h): an HTTP/2 request with content-type application/grpc* is
// relayed to its backend frame by frame (GrpcRelayCall); the same server serves the
// gateway's grpc_listener and http_listener, so either port takes every protocol.
//
// Calls by kind: unary; server streaming (messages are written as chunks as they arrive,
// framed per the Accept header: JSON array, NDJSON or SSE; the next message is read from
// the backend only after the previous chunk was written, so a slow client slows the
// backend instead of filling memory); client streaming (the body, a JSON array or NDJSON,
// is read as it arrives and each message goes to the backend as soon as it is complete; the
// next piece of body is read from the socket, or the HTTP/2 stream window opened, only once
// the backend took the previous message, so a fast client is paced by a slow backend;
// max_body_bytes bounds the whole body; a broken message after the first ones cancels the
// backend call and is answered 400). Bidi streaming methods are answered 501.
//
// A client that goes away cancels its backend call: HTTP/2 sees the stream reset or the
// connection close; HTTP/1.1 keeps a read pending on the socket while a call is in flight
// (bytes of a pipelined request that arrive meanwhile are kept for it).
//
// gRPC-Web (grpc_web.h, grpc_web_call.cc): a POST whose Content-Type is
// application/grpc-web[-text][+proto] is routed by its gRPC path (RouteTable::Find), not by
// HTTP rules; its one message frame is relayed to the backend as it is, request headers
// become metadata (no grpc-*, hop-by-hop or browser headers; grpc-timeout is the deadline),
// and the interceptor chain runs as for REST calls. The response is data frames as messages
// arrive (same back-pressure as server streams) and a trailer frame with grpc-status,
// grpc-message and the trailing metadata, all base64 for -text; a call that fails before its
// first message gets a trailers-only response (status in the HTTP headers, HTTP 200).
// Client and bidi streaming methods get UNIMPLEMENTED. With CORS, preflights of gRPC paths
// allow the gRPC-Web headers and responses expose grpc-status / grpc-message.
//
// Also served: GET /healthz (200 while the process runs) and GET /readyz (200 when every
// backend's channel is connected and Options::readiness agrees, 503 otherwise, with a line
// per problem; asking connects idle channels).
//
// Limits: request bodies over max_body_bytes get 413; request line + headers over
// max_header_bytes or more than max_header_count fields get 431; a client that does not
// send its request head within header_read_timeout, or leaves a keep-alive connection
// without a request for idle_timeout, is disconnected; unparsable requests and request
// targets that fail CheckRequestTarget (dot segments, %00, encoded slashes, ...) get 400.
//
// Thread-safety: Start/Shutdown from one thread; port() from any.
//
// Example:
//   HttpServer::Options options;
//   options.address = "127.0.0.1:8080";
//   absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(options, &routes);
//   ...
//   (*server)->Shutdown(absl::Seconds(10));

#ifndef GATEWAY_HTTP_HTTP_SERVER_H_
#define GATEWAY_HTTP_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/access_log/access_log.h"
#include "gateway/http/cors.h"
#include "gateway/interceptor.h"
#include "gateway/metrics/metrics.h"
#include "gateway/route_table.h"
#include "gateway/snapshot.h"
#include "gateway/tracing/tracer.h"

namespace gateway::openapi {
class OpenApiEndpoint;
}  // namespace gateway::openapi

namespace gateway::http {

class HttpServer {
 public:
  struct Options {
    // "HOST:PORT"; port 0 picks a free port (see port()).
    std::string address;
    // PEM files; both set: TLS (1.2+, ALPN h2 or http/1.1), else plaintext.
    std::string tls_cert_file;
    std::string tls_key_file;
    // PEM CA bundle: with TLS, clients must present a certificate it signed; its identity
    // (tls_identity.h) is what auth rules' `identities` match. Empty: no client certificates.
    std::string tls_client_ca_file;
    // Event loops (io_context + thread each); at least 1.
    int worker_threads = 1;
    // The event loops' thread names are `thread_name` and the loop's index (at most 15
    // characters in all; longer names are cut).
    std::string thread_name = "gw-worker";
    // After it last ran a handler, a loop keeps polling (epoll_wait with no timeout) for
    // this long before it sleeps. Zero: it sleeps at once.
    absl::Duration busy_poll = absl::ZeroDuration();
    uint32_t max_body_bytes = 4 << 20;
    uint32_t max_header_bytes = 16 << 10;
    uint32_t max_header_count = 100;
    // HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS.
    uint32_t max_concurrent_streams = 100;
    absl::Duration header_read_timeout = absl::Seconds(10);
    absl::Duration idle_timeout = absl::Seconds(60);
    bool allow_encoded_slashes = false;
    // Lower-case request header names sent to the backend as metadata (x-request-id and
    // traceparent always are).
    std::vector<std::string> forwarded_request_headers;
    // Lower-case backend metadata names sent back as response headers.
    std::vector<std::string> exposed_response_metadata;
    // The deadline of calls without grpc-timeout.
    absl::Duration default_deadline = absl::InfiniteDuration();
    // The timeout header besides grpc-timeout (lower case; empty: none).
    std::string timeout_header = "x-request-timeout";
    // Cross-origin requests: null answers no preflight and adds no CORS headers.
    std::shared_ptr<const CorsPolicy> cors;
    // GET/HEAD of the OpenAPI paths (gateway/openapi/openapi_endpoint.h); null: not served.
    std::shared_ptr<const openapi::OpenApiEndpoint> openapi;
    // Where the HTTP front end's metrics are kept (http_metrics.h); null: none. Must
    // outlive the server.
    metrics::MetricRegistry* metrics = nullptr;
    // More of /readyz (e.g. the registry's state): called on an event loop per request,
    // must not block; sets *ready to false to answer 503, appends lines ending in "\n" to
    // *detail. Null: backends only.
    std::function<void(bool* ready, std::string* detail)> readiness;
    // A line per call (gateway/access_log/access_log.h); null: none. Must outlive the
    // server.
    access_log::AccessLog* access_log = nullptr;
    // A request without x-request-id gets a generated one (sent to the backend); the
    // call's id is returned in the x-request-id response header either way.
    bool generate_request_id = true;
    // Spans of every call and backend attempt (gateway/tracing/tracer.h); null: none. Must
    // outlive the server.
    const tracing::Tracer* tracer = nullptr;
  };

  // Binds, starts the threads and returns the running server. `routes` must outlive the
  // server. Returns UNAVAILABLE naming the address when it cannot be bound,
  // INVALID_ARGUMENT when it is not HOST:PORT.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const Options& options,
                                                           const Snapshot<RouteTable>* routes);

  ~HttpServer();

  // The bound TCP port.
  int port() const;

  // Stops accepting connections, closes idle ones, lets requests in flight finish for up
  // to `grace`, cancels the rest and joins the threads. Idempotent.
  void Shutdown(absl::Duration grace);

  // For a server started with TLS: reads the PEM files again and gives new connections the
  // new certificate, key and client CA bundle (connections already open keep theirs).
  // Returns the error of a file that cannot be read or used (the old context stays), or
  // FAILED_PRECONDITION for a server started without TLS. Thread-safe.
  absl::Status ReplaceTls(const std::string& cert_file, const std::string& key_file,
                          const std::string& client_ca_file);

  // Whether the PEM files make a usable server TLS context (the error ReplaceTls or Start
  // would give, naming the file).
  static absl::Status CheckTls(const std::string& cert_file, const std::string& key_file,
                               const std::string& client_ca_file);

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_HTTP_SERVER_H_
