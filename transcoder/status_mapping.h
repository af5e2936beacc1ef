// Mapping of gRPC status to HTTP: the status code (the standard mapping of
// google.rpc.Code, as in google/rpc/code.proto and grpc-gateway), and the
// JSON error body {"code": N, "message": "...", "details": [...]}, with the
// details decoded from the grpc-status-details-bin trailer through a
// descriptor pool.
//
// Pure functions (ErrorBodyFormatter is immutable after construction); all
// thread-safe.
//
// Example:
//   int http = HttpStatusFromCode(absl::StatusCode::kNotFound);  // 404
//   ErrorBodyFormatter errors(pool);
//   std::string body = errors.Format(absl::StatusCode::kNotFound, "no book", "");
//   // {"code":5,"message":"no book","details":[]}
#ifndef GATEWAY_TRANSCODER_STATUS_MAPPING_H_
#define GATEWAY_TRANSCODER_STATUS_MAPPING_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/type_resolver.h"

namespace gateway::transcoder {

// The HTTP status for a gRPC status code: OK 200, CANCELLED 499, UNKNOWN 500,
// INVALID_ARGUMENT 400, DEADLINE_EXCEEDED 504, NOT_FOUND 404,
// ALREADY_EXISTS 409, PERMISSION_DENIED 403, UNAUTHENTICATED 401,
// RESOURCE_EXHAUSTED 429, FAILED_PRECONDITION 400, ABORTED 409,
// OUT_OF_RANGE 400, UNIMPLEMENTED 501, INTERNAL 500, UNAVAILABLE 503,
// DATA_LOSS 500; any other value 500.
int HttpStatusFromCode(absl::StatusCode code);

// Same for a raw grpc-status number (0..16; others -> 500).
int HttpStatusFromGrpcStatus(int grpc_status);

class ErrorBodyFormatter {
 public:
  // `pool` resolves the types of the details (Any.type_url); it must outlive
  // the formatter.
  explicit ErrorBodyFormatter(const google::protobuf::DescriptorPool& pool);

  // Returns {"code":<grpc code>,"message":<message>,"details":[...]} as
  // compact JSON. `status_details_bin` is the (already base64-decoded)
  // grpc-status-details-bin value, a serialized google.rpc.Status, or empty.
  // Each detail is printed as JSON with its "@type"; a detail whose type is
  // not in the pool (or that does not parse) is printed as
  // {"@type": <url>, "value": <base64 of the bytes>}. If the details bytes
  // are not a google.rpc.Status, "details" is empty. Never fails; invalid
  // UTF-8 in `message` is replaced.
  std::string Format(absl::StatusCode code, absl::string_view message,
                     absl::string_view status_details_bin) const;

  // Format(status.code(), status.message(), "").
  std::string Format(const absl::Status& status) const;

 private:
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_STATUS_MAPPING_H_
