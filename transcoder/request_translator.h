// RequestTranslator: turns an HTTP request that matched a route (path
// variable bindings, query string, body) into the protobuf wire bytes of the
// method's input message, following google.api.http and the proto3 JSON
// mapping.
//
// Immutable after construction and thread-safe; it keeps a pointer to the
// RouteSet (and through it the DescriptorPool), which must outlive it.
//
// Example:
//   RequestTranslator translator(*routes);
//   absl::StatusOr<RouteMatch> m = routes->Match("POST", "/v1/shelves/1/books");
//   absl::StatusOr<std::string> bytes = translator.Translate(
//       *m, "request_id=abc", R"({"title":"Dune"})", "application/json",
//       RequestOptions());
//   // bytes: a serialized CreateBookRequest {shelf: 1, book {title: "Dune"},
//   //        request_id: "abc"}
//
// Where values come from:
// - Path variables set the (nested) scalar fields they name.
// - Query parameters set fields not bound by the path or the body:
//   "a.b.c=v" for nested fields (proto or JSON names), repeated fields by
//   repetition, map entries by "labels[key]=v", enums by name or number,
//   bytes as base64 or base64url, wrappers, Timestamp (RFC 3339), Duration
//   ("1.5s") and FieldMask ("a,b.c") by their JSON string forms. With body
//   "*" the body is the whole message, so there are no fields left for
//   query parameters: they count as unknown.
// - The body: none, "*" (the whole message) or one top-level field, in the
//   proto3 JSON mapping (json_name and proto field names are both accepted).
//   A google.api.HttpBody target takes the raw bytes and the content type.
// - PATCH with a body field and a google.protobuf.FieldMask field that the
//   request leaves empty: the mask is filled with the body's JSON keys,
//   nested objects as dotted paths (proto field names).
// When a singular field is set twice, the path wins over the query, which
// wins over the body.
#ifndef GATEWAY_TRANSCODER_REQUEST_TRANSLATOR_H_
#define GATEWAY_TRANSCODER_REQUEST_TRANSLATOR_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "transcoder/cached_type_resolver.h"
#include "transcoder/json_codec.h"
#include "transcoder/route_set.h"

namespace gateway::transcoder {

struct RequestOptions {
  // Unknown query parameters (naming no field, or a field the body owns) are
  // rejected with INVALID_ARGUMENT instead of ignored.
  bool reject_unknown_query_parameters = false;
  // Unknown JSON fields in the body are ignored instead of rejected.
  bool ignore_unknown_json_fields = false;
  // Enum names match case-insensitively (in the body and the query).
  bool case_insensitive_enums = false;
  // '+' in the query string means a space (HTML form encoding).
  bool query_plus_as_space = true;
  // Fill the update mask of PATCH requests from the body's keys.
  bool fill_update_mask = true;
  // Deepest nesting of JSON objects and arrays accepted in a body.
  int max_json_depth = 64;
  // Query parameters that are never mapped nor rejected (e.g. "access_token").
  absl::flat_hash_set<std::string> ignored_query_parameters;
};

class RequestTranslator {
 public:
  explicit RequestTranslator(const RouteSet& routes);

  // Builds the input message of match.plan->method from the path bindings in
  // `match`, the raw query string (without '?'), and `body` (interpreted per
  // the rule's body; ignored when the rule has none). `content_type` is only
  // used for google.api.HttpBody bodies.
  //
  // Returns the serialized message, or INVALID_ARGUMENT whose message names
  // the path variable, query parameter or JSON field and what was wrong.
  // The result does not refer to the arguments.
  absl::StatusOr<std::string> Translate(const RouteMatch& match,
                                        absl::string_view query,
                                        absl::string_view body,
                                        absl::string_view content_type,
                                        const RequestOptions& options) const;

  // The part of Translate that comes from the path and the query only. For a
  // client stream, append this to each message from TranslateStreamMessage
  // so that the bindings apply to every message.
  absl::StatusOr<std::string> TranslatePathAndQuery(
      const RouteMatch& match, absl::string_view query,
      const RequestOptions& options) const;

  // Converts one JSON message of a client stream (a whole input message, as
  // body "*") to protobuf bytes. Errors as for Translate.
  absl::StatusOr<std::string> TranslateStreamMessage(
      const MethodPlan& plan, absl::string_view json,
      const RequestOptions& options) const;

 private:
  // Members of oneofs set by query parameters, path variables and a body field.
  class OneofMembers;

  absl::Status JsonToBinary(const google::protobuf::Descriptor* type,
                            absl::string_view json, const RequestOptions& options,
                            std::string* out) const;
  absl::Status AppendBody(const MethodPlan& plan, absl::string_view body,
                          absl::string_view content_type, const RequestOptions& options,
                          bool mask_given, std::string* out) const;
  absl::Status AppendQuery(const MethodPlan& plan, absl::string_view query,
                           const RequestOptions& options, bool* mask_given,
                           OneofMembers* members, std::string* out) const;

  const RouteSet& routes_;
  std::unique_ptr<CachedTypeResolver> resolver_;
  std::unique_ptr<JsonCodec> codec_;
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_REQUEST_TRANSLATOR_H_
