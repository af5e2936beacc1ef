// GatewayConfig: a Config checked as a whole and compiled into what the servers use (the
// descriptor pool, the backends' channels, the route table).
//
// CompileConfig checks everything that can be checked before listening: required keys,
// backend names, services bound to backends, readable descriptor sets with every import,
// TLS files, limits. Each error names the config key (`services[1].backend`) or the file
// and what is wrong.
//
// Thread-safety: a GatewayConfig is immutable after CompileConfig.
//
// Example:
//   absl::StatusOr<config::v1::Config> proto = LoadConfigFile(path);
//   absl::StatusOr<std::shared_ptr<const GatewayConfig>> config =
//       CompileConfig(*proto, DirName(path));

#ifndef GATEWAY_GATEWAY_CONFIG_H_
#define GATEWAY_GATEWAY_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/access_log/access_log.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/http/cors.h"
#include "gateway/interceptor.h"
#include "gateway/log.h"
#include "gateway/openapi/openapi_endpoint.h"
#include "gateway/route_table.h"
#include "gateway/tracing/exporter.h"
#include "gateway/upstream.h"

namespace gateway {
namespace metrics {
class MetricRegistry;
}  // namespace metrics

struct GatewayConfig {
  config::v1::Config proto;
  // The directory relative paths in the config are resolved against.
  std::string base_dir;
  std::vector<std::shared_ptr<Backend>> backends;
  std::shared_ptr<const RouteTable> routes;
  // Run for every call of every front end (never null; may be empty).
  std::shared_ptr<const InterceptorChain> chain;

  // Effective values (defaults applied).
  int worker_threads = 1;
  absl::Duration shutdown_grace;
  // runtime.busy_poll: how long an event loop polls before it sleeps (zero: it does not).
  absl::Duration busy_poll = absl::ZeroDuration();
  int max_message_bytes = 0;
  int max_concurrent_streams = 0;

  // --- The HTTP front end (http_listener), effective values. ---
  struct Http {
    std::string address;
    int worker_threads = 1;
    uint32_t max_body_bytes = 0;
    uint32_t max_header_bytes = 0;
    uint32_t max_header_count = 0;
    uint32_t max_concurrent_streams = 0;
    absl::Duration header_read_timeout;
    absl::Duration idle_timeout;
    bool allow_encoded_slashes = false;
    // Lower case.
    std::vector<std::string> forwarded_request_headers;
    std::vector<std::string> exposed_response_metadata;
    // InfiniteDuration when unset.
    absl::Duration default_deadline = absl::InfiniteDuration();
    // deadlines.http_timeout_header, lower case.
    std::string timeout_header = "x-request-timeout";
    // PEM files, resolved against base_dir; empty without TLS.
    std::string tls_cert_file;
    std::string tls_key_file;
    // PEM CA bundle for client certificates, resolved; empty without mutual TLS.
    std::string tls_client_ca_file;
    // Null without http_listener.cors.
    std::shared_ptr<const http::CorsPolicy> cors;
    // The OpenAPI documents (http_listener.openapi); null when disabled.
    std::shared_ptr<const openapi::OpenApiEndpoint> openapi;
  };
  // Present when the config has an http_listener.
  bool has_http = false;
  Http http;
  // The gRPC listener (grpc_listener), present when the config has one: the same server as
  // the HTTP listener (every protocol is served on either port), with its own address, TLS,
  // max_concurrent_streams and runtime.worker_threads; its other settings are the
  // http_listener's when there is one, else the defaults (no CORS, no OpenAPI documents).
  bool has_grpc = false;
  Http grpc;

  // --- access_log, effective values (path resolved against base_dir). ---
  bool access_log_enabled = true;
  access_log::AccessLog::Options access_log;
  bool generate_request_id = true;

  // --- logging: the process log's format and level. ---
  LogOptions logging;

  // --- tracing: on when the section is present and enabled is not false. ---
  bool tracing_enabled = false;
  double tracing_sample_ratio = 1.0;
  tracing::SpanExporter::Options tracing_export;
};

// Validates one backend entry (`key` names it in errors, e.g. "backends[0]"): name, target,
// TLS, load balancing, health checks, limits; the one validator of the config's backends
// and of the backends registrations define. Returns `reuse` itself when it has the same name
// and fingerprint (Backend::Fingerprint: its connections, health and outlier state live
// on), else a new Backend. INVALID_ARGUMENT naming the key and the problem.
absl::StatusOr<std::shared_ptr<Backend>> CompileBackend(const config::v1::Backend& backend,
                                                        const config::v1::Limits& limits,
                                                        const std::string& base_dir,
                                                        const std::string& key,
                                                        const std::shared_ptr<Backend>& reuse);

// Validates `proto` and builds the GatewayConfig. Relative paths are resolved against
// `base_dir` (the config file's directory). Parts that count metrics (the Redis quota store)
// count them in `metrics` when it is not null; it must outlive the GatewayConfig. With
// `previous` (the config being replaced by a reload), each backend whose fingerprint
// (Backend::Fingerprint) did not change is taken over from it, not made again. Returns
// INVALID_ARGUMENT naming the key or file and the problem.
absl::StatusOr<std::shared_ptr<const GatewayConfig>> CompileConfig(
    const config::v1::Config& proto, const std::string& base_dir,
    metrics::MetricRegistry* metrics = nullptr, const GatewayConfig* previous = nullptr);

// The directory part of a file path ("." for a bare file name).
std::string DirName(const std::string& path);

}  // namespace gateway

#endif  // GATEWAY_GATEWAY_CONFIG_H_
