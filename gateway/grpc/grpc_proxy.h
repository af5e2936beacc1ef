// GrpcProxyServer: the gRPC front end. It accepts calls to any method, looks the method up
// in the current RouteTable and relays the call to the method's backend, all four call
// kinds, messages passed through as ByteBuffers without being parsed.
//
// How a call runs: each worker thread owns one completion queue and drives both sides of
// every call it accepts on it (the incoming server call and the outgoing GenericStub call),
// so a call's events never hop threads and need no lock. Messages are relayed one at a
// time in each direction: the next message is read from one side only after the other side
// has taken the previous one, so a slow peer applies back-pressure instead of making the
// gateway buffer. Unary calls use the backend's unary call path (one batch each way).
//
// What reaches the backend: the request metadata the metadata policy forwards (minus
// hop-by-hop and reserved headers, `:*`, `grpc-*`, `te`, `content-type`, `host`, ..., and
// the headers the gateway owns; gateway/metadata/metadata_policy.h), every entry checked
// against gRPC's rules; the client's deadline and cancellation (gRPC's call propagation).
// What comes back: initial and trailing metadata (same policy), the status code, message
// and error details. Errors of the gateway itself: UNIMPLEMENTED "method not found:
// /pkg.Svc/M" for a method no route serves; INVALID_ARGUMENT naming a forwarded header
// whose value gRPC does not allow; the backend's own UNAVAILABLE when it cannot be reached.
//
// Before a call goes to its backend it runs the interceptor chain of the route table it was
// routed by (authentication, quotas, deadlines; RouteTable::chain()): a rejection ends the call with the interceptor's status, its response
// headers sent as trailing metadata; otherwise the interceptors' metadata edits apply and
// their deadline (if earlier than the client's) is set on the backend call.
//
// With Options::metrics every call is counted (started, finished by status code, duration,
// rejections by the interceptor chain; docs/config.md, "Metrics"): a method's series are
// resolved once per route table and worker, then a call only adds to atomic cells.
//
// Thread-safety: Start/Shutdown from one thread; port() from any.
//
// Example:
//   Snapshot<RouteTable> routes(config->routes);
//   absl::StatusOr<std::unique_ptr<GrpcProxyServer>> server =
//       GrpcProxyServer::Start(options, &routes);
//   ...
//   (*server)->Shutdown(absl::Seconds(10));

#ifndef GATEWAY_GRPC_GRPC_PROXY_H_
#define GATEWAY_GRPC_GRPC_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/interceptor.h"
#include "gateway/route_table.h"
#include "gateway/snapshot.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"

namespace gateway {
namespace metrics {
class MetricRegistry;
}  // namespace metrics
namespace access_log {
class AccessLog;
}  // namespace access_log

class GrpcProxyServer {
 public:
  struct Options {
    // "HOST:PORT" or "unix:/path"; port 0 picks a free port (see port()).
    std::string address;
    // Defaults to plaintext.
    std::shared_ptr<grpc::ServerCredentials> credentials;
    // One completion queue and thread each; at least 1.
    int worker_threads = 1;
    int max_message_bytes = 16 * 1024 * 1024;
    int max_concurrent_streams = 1000;
    // Incoming calls kept requested per worker (accept backlog inside gRPC).
    int requests_per_worker = 8;
    // Where calls are counted (gateway_grpc_calls_started_total, ..._finished_total,
    // gateway_grpc_call_duration_seconds, gateway_interceptor_rejections_total); null: not
    // counted. Must outlive the server.
    metrics::MetricRegistry* metrics = nullptr;
    // Where a line per call goes (gateway/access_log/access_log.h); null: none. Must
    // outlive the server.
    access_log::AccessLog* access_log = nullptr;
    // A call without x-request-id metadata gets a generated one (sent to the backend);
    // the call's id is returned in the initial metadata either way.
    bool generate_request_id = true;
  };

  // Binds, starts the workers and returns the running server. `routes` must outlive the
  // server. Returns UNAVAILABLE naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<GrpcProxyServer>> Start(
      const Options& options, const Snapshot<RouteTable>* routes);

  ~GrpcProxyServer();

  // The bound TCP port (the chosen one when the address asked for port 0).
  int port() const { return port_; }

  // Stops accepting calls, waits up to `grace` for calls in flight, cancels the rest, and
  // joins the workers. Idempotent.
  void Shutdown(absl::Duration grace);

  // Internal: a worker thread and its queue; the metrics of calls (grpc_proxy.cc).
  class Worker;
  class CallMetrics;

 private:
  GrpcProxyServer() = default;

  grpc::AsyncGenericService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<CallMetrics> metrics_;  // outlives the workers
  std::vector<std::unique_ptr<Worker>> workers_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace gateway

#endif  // GATEWAY_GRPC_GRPC_PROXY_H_
