#include "transcoder/status_mapping.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver_util.h"
#include "google/rpc/status.pb.h"
#include "transcoder/json_scan.h"

namespace gateway::transcoder {

int HttpStatusFromGrpcStatus(int grpc_status) {
  switch (grpc_status) {
    case 0: return 200;    // OK
    case 1: return 499;    // CANCELLED
    case 2: return 500;    // UNKNOWN
    case 3: return 400;    // INVALID_ARGUMENT
    case 4: return 504;    // DEADLINE_EXCEEDED
    case 5: return 404;    // NOT_FOUND
    case 6: return 409;    // ALREADY_EXISTS
    case 7: return 403;    // PERMISSION_DENIED
    case 8: return 429;    // RESOURCE_EXHAUSTED
    case 9: return 400;    // FAILED_PRECONDITION
    case 10: return 409;   // ABORTED
    case 11: return 400;   // OUT_OF_RANGE
    case 12: return 501;   // UNIMPLEMENTED
    case 13: return 500;   // INTERNAL
    case 14: return 503;   // UNAVAILABLE
    case 15: return 500;   // DATA_LOSS
    case 16: return 401;   // UNAUTHENTICATED
    default: return 500;
  }
}

int HttpStatusFromCode(absl::StatusCode code) {
  return HttpStatusFromGrpcStatus(static_cast<int>(code));
}

ErrorBodyFormatter::ErrorBodyFormatter(const google::protobuf::DescriptorPool& pool)
    : resolver_(google::protobuf::util::NewTypeResolverForDescriptorPool(
          "type.googleapis.com", &pool)) {}

std::string ErrorBodyFormatter::Format(const absl::Status& status) const {
  return Format(status.code(), status.message(), "");
}

std::string ErrorBodyFormatter::Format(absl::StatusCode code, absl::string_view message,
                                       absl::string_view status_details_bin) const {
  std::string out = absl::StrCat("{\"code\":", static_cast<int>(code), ",\"message\":");
  AppendJsonString(message, &out);
  out += ",\"details\":[";
  google::rpc::Status details;
  if (!status_details_bin.empty() &&
      details.ParseFromArray(status_details_bin.data(),
                             static_cast<int>(status_details_bin.size()))) {
    bool first = true;
    for (const google::protobuf::Any& any : details.details()) {
      if (!first) out += ',';
      first = false;
      std::string json;
      google::protobuf::util::Status s = google::protobuf::util::BinaryToJsonString(
          resolver_.get(), any.type_url(), any.value(), &json);
      // Well-known types have a special JSON form that goes under "value".
      bool well_known = any.type_url().find("/google.protobuf.") != std::string::npos;
      if (s.ok() && !well_known && json.size() >= 2 && json[0] == '{') {
        out += "{\"@type\":";
        AppendJsonString(any.type_url(), &out);
        if (json.size() > 2) {
          out += ',';
          out.append(json, 1, std::string::npos);
        } else {
          out += '}';
        }
      } else if (s.ok()) {
        out += "{\"@type\":";
        AppendJsonString(any.type_url(), &out);
        out += ",\"value\":";
        out += json;
        out += '}';
      } else {
        out += "{\"@type\":";
        AppendJsonString(any.type_url(), &out);
        out += ",\"value\":";
        AppendJsonString(absl::Base64Escape(any.value()), &out);
        out += '}';
      }
    }
  }
  out += "]}";
  return out;
}

}  // namespace gateway::transcoder
