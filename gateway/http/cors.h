// CorsPolicy: which browser origins may call the HTTP front end, compiled once from the
// config (exact origins and RE2 patterns), and the CORS headers of preflight and actual
// responses (https://fetch.spec.whatwg.org/#http-cors-protocol).
//
// Immutable after Create; thread-safe.
//
// Example:
//   CorsOptions o;
//   o.allowed_origins = {"https://app.example.com"};
//   o.allowed_origin_patterns = {R"(https://[a-z0-9-]+\.example\.com)"};
//   absl::StatusOr<std::shared_ptr<const CorsPolicy>> cors = CorsPolicy::Create(o);
//   if ((*cors)->AllowsOrigin("https://x.example.com")) ...

#ifndef GATEWAY_HTTP_CORS_H_
#define GATEWAY_HTTP_CORS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "re2/re2.h"

namespace gateway::http {

struct CorsOptions {
  std::vector<std::string> allowed_origins;          // exact, e.g. "https://a.example"
  std::vector<std::string> allowed_origin_patterns;  // RE2, matched against the whole origin
  std::vector<std::string> allowed_methods;          // empty: GET, POST, PUT, PATCH, DELETE
  std::vector<std::string> allowed_headers;          // request headers, case-insensitive
  std::vector<std::string> exposed_headers;          // response headers scripts may read
  absl::Duration max_age = absl::ZeroDuration();     // zero: no Access-Control-Max-Age
  bool allow_credentials = false;
};

class CorsPolicy {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // INVALID_ARGUMENT naming the entry for a pattern that does not compile, an origin that
  // is not scheme://host[:port], or "*" with allow_credentials.
  static absl::StatusOr<std::shared_ptr<const CorsPolicy>> Create(const CorsOptions& options);

  // True when `origin` (the Origin header) is allowed.
  bool AllowsOrigin(absl::string_view origin) const;

  // Checks a preflight (OPTIONS with Access-Control-Request-Method) and fills `out` with
  // the headers of its answer. Allowed request headers (comma-separated `request_headers`):
  // the CORS-safelisted ones (kSafelistedRequestHeaders; content-type whatever its value),
  // the configured ones, and with `grpc_path` (a preflight of a gRPC method path,
  // "/pkg.Service/Method") the headers browser clients of gRPC-Web and Connect send
  // (kGrpcWebRequestHeaders, kConnectRequestHeaders): a preflight does not say which
  // protocol the call will speak, and both only exist on such paths. Returns OK, or
  // PERMISSION_DENIED (and no headers) saying what was refused: 'CORS preflight refused:
  // origin "..." is not allowed', '... method "DELETE" is not allowed (allowed: GET, POST)'
  // or '... header "x-secret" is not allowed (allowed: accept, ...)'.
  absl::Status Preflight(absl::string_view origin, absl::string_view request_method,
                         absl::string_view request_headers, Headers* out,
                         bool grpc_path = false) const;

  // Adds the headers of an actual response to an allowed `origin`. With `grpc_web`, the
  // status headers of trailers-only responses (kGrpcWebExposedHeaders) are exposed in
  // addition to the configured ones.
  void AddResponseHeaders(absl::string_view origin, Headers* out, bool grpc_web = false) const;

  // The same for the response of a Connect call: kConnectExposedHeaders are exposed in
  // addition to the configured ones. (A unary call's trailing metadata arrives as
  // "trailer-NAME" headers: scripts read those only when configured as exposed headers.)
  void AddConnectResponseHeaders(absl::string_view origin, Headers* out) const;

  // "content-type, x-grpc-web, x-user-agent, grpc-timeout".
  static const char kGrpcWebRequestHeaders[];
  // "connect-protocol-version, connect-timeout-ms, content-encoding, accept-encoding,
  // connect-content-encoding, connect-accept-encoding": what Connect clients send besides
  // content-type (the compression headers are unused by browsers today).
  static const char kConnectRequestHeaders[];
  // "accept, accept-language, content-language, content-type, range": the Fetch standard's
  // CORS-safelisted request headers, allowed without configuration.
  static const char kSafelistedRequestHeaders[];
  // "grpc-status, grpc-message".
  static const char kGrpcWebExposedHeaders[];
  // "content-encoding, connect-content-encoding": the compression of a Connect response.
  static const char kConnectExposedHeaders[];

 private:
  CorsPolicy() = default;

  bool any_origin_ = false;
  absl::flat_hash_set<std::string> origins_;
  std::vector<std::unique_ptr<RE2>> patterns_;
  absl::flat_hash_set<std::string> methods_;
  absl::flat_hash_set<std::string> headers_;  // lower case: configured and safelisted
  std::string methods_text_;
  std::string headers_text_;           // headers_ as Access-Control-Allow-Headers
  std::string grpc_path_headers_text_;  // the same plus the gRPC-Web and Connect headers
  std::string exposed_text_;
  std::string grpc_web_exposed_text_;  // kGrpcWebExposedHeaders plus exposed_text_
  std::string connect_exposed_text_;   // kConnectExposedHeaders plus exposed_text_
  std::string max_age_text_;
  bool allow_credentials_ = false;
};

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_CORS_H_
