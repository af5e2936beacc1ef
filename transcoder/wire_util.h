// Helpers for writing and scanning protobuf wire format directly, used to
// build request messages from path and query values without a
// DynamicMessage, and to pick one field out of a response.
//
// Stateless and thread-safe.
//
// Example:
//   std::string out;
//   AppendTag(1, WireType::kVarint, &out);
//   AppendVarint(150, &out);  // out == "\x08\x96\x01"
#ifndef GATEWAY_TRANSCODER_WIRE_UTIL_H_
#define GATEWAY_TRANSCODER_WIRE_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::transcoder {

enum class WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kFixed32 = 5,
};

void AppendVarint(uint64_t value, std::string* out);
void AppendTag(int field_number, WireType type, std::string* out);
void AppendFixed32(uint32_t value, std::string* out);
void AppendFixed64(uint64_t value, std::string* out);
// Appends tag, length and `payload`.
void AppendLengthDelimited(int field_number, absl::string_view payload, std::string* out);

// Checks that the top level of `message` is well-formed wire format (tags,
// varints and lengths that fit). Returns INVALID_ARGUMENT naming the byte
// offset otherwise. Nested messages are not checked.
absl::Status CheckWireFormat(absl::string_view message);

// Scans the serialized message `message` and returns the concatenated
// occurrences (tags included) of field `field_number`, in order. Parsing the
// result as the same message type yields a message with only that field.
// Returns INVALID_ARGUMENT if `message` is not well-formed wire format.
absl::StatusOr<std::string> ExtractField(absl::string_view message, int field_number);

// Like ExtractField for a singular message field: returns the concatenated
// payloads (without tags), which parse as the merged sub-message.
absl::StatusOr<std::string> ExtractMessagePayload(absl::string_view message,
                                                  int field_number);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_WIRE_UTIL_H_
