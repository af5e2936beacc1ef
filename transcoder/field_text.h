// Conversions of text values (path variables, query parameters) into
// protobuf wire format, with the same forms as the proto3 JSON mapping:
// numbers (64-bit ones too), "NaN"/"Infinity", bools, enums by name or
// number, bytes as base64 or base64url, and the well-known types that have a
// string form (wrappers, Timestamp, Duration, FieldMask). Also small
// descriptor helpers shared by the translators.
//
// Pure functions; thread-safe.
//
// Example:
//   std::string out;
//   absl::Status s = AppendFieldFromText(page_size_field, "25", false, &out);
//   // out == tag(page_size) + varint(25)
#ifndef GATEWAY_TRANSCODER_FIELD_TEXT_H_
#define GATEWAY_TRANSCODER_FIELD_TEXT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace gateway::transcoder {

// Appends the field `f` (tag and value) with `text` converted per the field's
// type. A singular message field accepts only the well-known types with a
// string form. Returns INVALID_ARGUMENT saying why the text is not a valid
// value (without naming the field: callers add where it came from).
absl::Status AppendFieldFromText(const google::protobuf::FieldDescriptor* f,
                                 absl::string_view text, bool case_insensitive_enums,
                                 std::string* out);

// Appends the payload (no tag) of well-known type `d` (a wrapper, Timestamp,
// Duration or FieldMask) given by its JSON string form.
absl::Status WellKnownPayloadFromText(const google::protobuf::Descriptor* d,
                                      absl::string_view text, bool case_insensitive_enums,
                                      std::string* payload);

// Finds the number of enum value `text` (a name, or a decimal number).
absl::Status ParseEnumText(const google::protobuf::EnumDescriptor* e, absl::string_view text,
                           bool case_insensitive, int32_t* value);

// A field of `d` by proto name, lowerCamelCase name or json_name; nullptr if
// none.
const google::protobuf::FieldDescriptor* FindFieldByAnyName(
    const google::protobuf::Descriptor* d, absl::string_view name);

// True for types in package google.protobuf.
bool IsWellKnownType(const google::protobuf::Descriptor* d);

// True for google.protobuf.{Double,Float,Int64,UInt64,Int32,UInt32,Bool,
// String,Bytes}Value.
bool IsWrapperType(const google::protobuf::Descriptor* d);

// `text` as a quoted JSON string for error messages, cut at 64 bytes.
std::string QuoteForError(absl::string_view text);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_FIELD_TEXT_H_
