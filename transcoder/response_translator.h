// ResponseTranslator: turns the protobuf bytes of a method's response message
// into the HTTP response body: JSON per the proto3 JSON mapping (with
// options), the field selected by response_body, or the raw bytes and
// content type of a google.api.HttpBody.
//
// Immutable after construction and thread-safe; keeps a pointer to the
// RouteSet (and its DescriptorPool), which must outlive it.
//
// Example:
//   ResponseTranslator translator(*routes);
//   absl::StatusOr<HttpResponseBody> body =
//       translator.Translate(*match.plan, response_bytes, ResponseOptions());
//   // body->content_type == "application/json", body->body == R"({"id":"1"})"
//
// For server streams call Translate for each message and frame the JSON with
// a StreamFramer (json_stream.h); HttpBody messages pass raw, chunk by chunk.
#ifndef GATEWAY_TRANSCODER_RESPONSE_TRANSLATOR_H_
#define GATEWAY_TRANSCODER_RESPONSE_TRANSLATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "transcoder/cached_type_resolver.h"
#include "transcoder/json_codec.h"
#include "transcoder/route_set.h"

namespace gateway::transcoder {

struct ResponseOptions {
  // Print fields that hold their default value (0, "", false, empty lists).
  bool emit_default_values = false;
  // Use proto field names ("page_token") instead of lowerCamelCase / json_name.
  bool use_proto_field_names = false;
  // Print enums as their numbers instead of their names.
  bool enums_as_ints = false;
  // Print 64-bit integers (int64, uint64, sint64, fixed64, sfixed64 and their
  // wrappers) as JSON numbers instead of strings. Values above 2^53 lose
  // precision in JavaScript clients; that is why the standard mapping quotes
  // them. Not applied inside google.protobuf.Any values.
  bool int64_as_number = false;
  // Indent the output.
  bool pretty_print = false;
};

struct HttpResponseBody {
  std::string content_type;  // "application/json" unless from an HttpBody
  std::string body;
};

class ResponseTranslator {
 public:
  explicit ResponseTranslator(const RouteSet& routes);

  // Translates a response message of plan.method. With response_body, only
  // that field is returned (as the JSON of its value: an object, array,
  // string, number ...; the field's default when it is unset). A
  // google.api.HttpBody response (or response_body field) returns its data
  // and content_type unchanged (an empty content_type stays empty).
  //
  // Returns INVALID_ARGUMENT (really a backend fault: the caller should
  // answer 500) when `proto` does not parse as the output type.
  absl::StatusOr<HttpResponseBody> Translate(const MethodPlan& plan,
                                             absl::string_view proto,
                                             const ResponseOptions& options) const;

  // The JSON of a serialized message of type `type`: the input or output
  // type of a routed method, or a type reachable from one. Errors as for
  // Translate.
  absl::StatusOr<std::string> MessageToJson(const google::protobuf::Descriptor* type,
                                            absl::string_view proto,
                                            const ResponseOptions& options) const;

 private:
  std::unique_ptr<CachedTypeResolver> resolver_;
  std::unique_ptr<JsonCodec> codec_;
};

// Indents compact JSON (2 spaces, one member or element per line).
std::string PrettyPrintJson(absl::string_view json);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_RESPONSE_TRANSLATOR_H_
