// Checks of untrusted HTTP request pieces that the HTTP front end runs before routing:
// the request target (path safety), header values headed for gRPC metadata, and the
// grpc-timeout header.
//
// Pure functions; thread-safe.
//
// Example:
//   absl::StatusOr<RequestTarget> t = CheckRequestTarget("/v1/shelves/1?x=2", false);
//   // t->path == "/v1/shelves/1", t->query == "x=2"
//   absl::StatusOr<absl::Duration> d = ParseGrpcTimeout("250m");  // 250 ms
//
// Request target grammar accepted (RFC 9112 origin-form, stricter):
//   target  = path [ "?" query ]
//   path    = 1*( "/" segment )        ; starts with '/', no empty inner segment ("//")
//   segment = *( pchar )               ; not "." or ".." (also when percent-encoded)
//   pchar   = visible ASCII except '?', '#', '\'; '%' only as "%" HEXDIG HEXDIG,
//             never %00, and %2F only when encoded slashes are allowed
//   query   = *( visible ASCII except '#' )
#ifndef GATEWAY_HTTP_REQUEST_CHECKS_H_
#define GATEWAY_HTTP_REQUEST_CHECKS_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway::http {

struct RequestTarget {
  absl::string_view path;   // a view into the checked target
  absl::string_view query;  // without '?', empty when absent
};

// Splits and checks `target`. Returns INVALID_ARGUMENT naming the problem ("path
// segment \"..\" is not allowed", "encoded NUL (%00) in path", ...). The views point into
// `target`.
absl::StatusOr<RequestTarget> CheckRequestTarget(absl::string_view target,
                                                 bool allow_encoded_slashes);

// Parses a grpc-timeout value: 1 to 8 digits and a unit (H, M, S, m, u, n). Returns
// INVALID_ARGUMENT for anything else.
absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value);

// Parses the value of the REST timeout header (deadlines.http_timeout_header, named
// `header` in errors): a duration in the form absl::ParseDuration reads, restricted to
//   timeout = 1*( number unit )        ; e.g. "2.5s", "250ms", "1m30s"
//   number  = 1*DIGIT [ "." 1*DIGIT ]
//   unit    = "h" / "m" / "s" / "ms" / "us" / "ns"
// at most 32 characters, not negative, not infinite; "0s" is allowed (already expired).
// Returns INVALID_ARGUMENT naming the header and the value for anything else.
absl::StatusOr<absl::Duration> ParseHttpTimeout(absl::string_view header,
                                                absl::string_view value);

// True when `value` may be sent as the value of (non-binary) gRPC metadata: printable
// ASCII and spaces only (so no CR, LF or NUL can reach the backend).
bool IsValidMetadataValue(absl::string_view value);

}  // namespace gateway::http

#endif  // GATEWAY_HTTP_REQUEST_CHECKS_H_
