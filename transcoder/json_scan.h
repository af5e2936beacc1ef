// Small JSON scanning helpers: skipping and checking a JSON value (nesting
// depth, duplicate keys), walking the members of an object (to fill a
// FieldMask from a PATCH body) or the elements of an array, and writing JSON
// string literals.
//
// The scanners check structure (brackets, strings, escapes, literals, number
// characters) but are not a full validator: they do not check number syntax
// or escape sequences in detail; the JSON codec rejects those. Thread-safe
// (stateless).
//
// Example:
//   size_t pos = 0;
//   absl::Status s = SkipJsonValue(R"({"a":[1,2]} x)", &pos, /*max_depth=*/64);
//   // s.ok(), pos == 11
#ifndef GATEWAY_TRANSCODER_JSON_SCAN_H_
#define GATEWAY_TRANSCODER_JSON_SCAN_H_

#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace gateway::transcoder {

// Skips JSON whitespace (space, tab, CR, LF) from *pos.
void SkipJsonWhitespace(absl::string_view in, size_t* pos);

// Skips leading whitespace and one JSON value starting at *pos, leaving *pos
// just after it. Returns INVALID_ARGUMENT naming the byte offset when the
// value is malformed or truncated, nests deeper than `max_depth` arrays and
// objects, or has an object with the same key twice (compared as written,
// before unescaping).
absl::Status SkipJsonValue(absl::string_view in, size_t* pos, int max_depth);

// Checks that `in` is exactly one JSON value (plus whitespace) nested at most
// `max_depth` deep. Errors as for SkipJsonValue; trailing bytes are an error.
absl::Status CheckJsonDocument(absl::string_view in, int max_depth);

// Calls fn(key, value) for every member of the JSON object `in` (which must
// be well-formed JSON, e.g. accepted by CheckJsonDocument or JsonCodec), in
// document order. `key` is unescaped;
// `value` is the raw JSON text of the member's value. Returns
// INVALID_ARGUMENT if `in` is not an object.
absl::Status ForEachJsonMember(
    absl::string_view in,
    absl::FunctionRef<void(absl::string_view key, absl::string_view value)> fn);

// Calls fn(element) with the raw JSON text of every element of the JSON array
// `in` (which must be well-formed JSON). Returns INVALID_ARGUMENT
// if `in` is not an array.
absl::Status ForEachJsonElement(absl::string_view in,
                                absl::FunctionRef<void(absl::string_view element)> fn);

// Appends `s` to *out as a quoted JSON string. Invalid UTF-8 bytes are
// replaced with U+FFFD so that the output is always valid JSON.
void AppendJsonString(absl::string_view s, std::string* out);

// True when `s` is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_JSON_SCAN_H_
