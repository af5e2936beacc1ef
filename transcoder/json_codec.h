// JsonCodec: a fast converter between proto3 JSON and protobuf wire format,
// driven by per-message tables compiled once from descriptors. It produces
// the same messages as protobuf's util::JsonToBinaryStream /
// BinaryToJsonStream (which it delegates to for google.protobuf.Any, whose
// contents need type resolution) without building google.protobuf.Type
// objects or an object-writer pipeline on every call.
//
// Immutable after construction and thread-safe. The pool (and the fallback
// resolver) must outlive the codec.
//
// Example:
//   JsonCodec codec(pool, {book_descriptor}, &resolver);
//   std::string bytes;
//   absl::Status s = codec.JsonToProto(book_descriptor, R"({"id":"1"})",
//                                      JsonParseConfig(), &bytes);
//   std::string json;
//   s = codec.ProtoToJson(book_descriptor, bytes, JsonPrintConfig(), &json);
//
// JSON accepted (proto3 JSON mapping): both json_name and proto field names;
// 64-bit integers and floating point as numbers or strings; "NaN",
// "Infinity", "-Infinity"; integers written as 1.0 or 1e3; enums by name
// (optionally case-insensitive) or number; bytes as base64 or base64url;
// null for "unset"; the JSON forms of Timestamp, Duration, FieldMask,
// wrappers, Struct, Value, ListValue, Empty and Any. Rejected: malformed
// JSON, nesting deeper than the configured limit, and a key given twice in
// one object (two names of the same field count as the same key).
#ifndef GATEWAY_TRANSCODER_JSON_CODEC_H_
#define GATEWAY_TRANSCODER_JSON_CODEC_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/type_resolver.h"

namespace gateway::transcoder {

struct JsonParseConfig {
  bool ignore_unknown_fields = false;
  bool case_insensitive_enums = false;
  // Deepest nesting of JSON objects and arrays accepted.
  int max_depth = 64;
};

struct JsonPrintConfig {
  bool emit_default_values = false;
  bool use_proto_field_names = false;
  bool enums_as_ints = false;
  bool int64_as_number = false;
};

class JsonCodec {
 public:
  // Compiles tables for every message reachable from `roots`. Messages met
  // later that were not compiled (inside Any) go through `fallback`.
  JsonCodec(const google::protobuf::DescriptorPool& pool,
            const std::vector<const google::protobuf::Descriptor*>& roots,
            google::protobuf::util::TypeResolver* fallback);
  ~JsonCodec();

  // Appends the wire format of the JSON value `json` (an object, or the JSON
  // form of a well-known type) as message `type` to *out. Returns
  // INVALID_ARGUMENT with a message "(<field path>): <what is wrong>" when
  // the JSON does not fit the message, or "invalid JSON at byte N: <what>"
  // when it is not well-formed. *out may hold partial output on error.
  absl::Status JsonToProto(const google::protobuf::Descriptor* type, absl::string_view json,
                           const JsonParseConfig& config, std::string* out) const;

  // Appends the compact JSON of the serialized message `proto` of `type`.
  // Returns INVALID_ARGUMENT when `proto` is not valid wire format for it.
  absl::Status ProtoToJson(const google::protobuf::Descriptor* type, absl::string_view proto,
                           const JsonPrintConfig& config, std::string* out) const;

  // Compiled per-message tables (defined in json_codec.cc).
  struct MessageInfo;

 private:
  const MessageInfo* Info(const google::protobuf::Descriptor* d) const;

  google::protobuf::util::TypeResolver* fallback_;
  absl::flat_hash_map<const google::protobuf::Descriptor*, std::unique_ptr<MessageInfo>>
      messages_;
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_JSON_CODEC_H_
