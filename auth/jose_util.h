// Small JOSE helpers shared by the JWKS and JWT parsers: strict base64url
// (RFC 7515 section 2: the URL-safe alphabet, no padding, no whitespace) and
// parsing a JSON object into google.protobuf.Struct with an error message that
// never echoes the input.
//
// Thread-safe (stateless).
//
// Example:
//   absl::StatusOr<std::string> bytes = DecodeBase64Url("eyJhbGciOiJFUzI1NiJ9");
//   // *bytes == R"({"alg":"ES256"})"
//   absl::StatusOr<google::protobuf::Struct> obj = ParseJsonObject(*bytes, "header");
#ifndef GATEWAY_AUTH_JOSE_UTIL_H_
#define GATEWAY_AUTH_JOSE_UTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace gateway::auth {

// Decodes unpadded base64url.
//
// Grammar: base64url = *( ALPHA / DIGIT / "-" / "_" ), whose length modulo 4
// is 0, 2 or 3 (a length of 1 modulo 4 cannot encode whole bytes). The
// unused low bits of the last character must be zero (canonical encoding), so
// every byte string has exactly one accepted encoding.
//
// Returns INVALID_ARGUMENT naming the offset of the first bad character
// ('=' padding, '+', '/', whitespace, ...) or the bad length.
absl::StatusOr<std::string> DecodeBase64Url(absl::string_view in);

// Encodes `in` as unpadded base64url.
std::string EncodeBase64Url(absl::string_view in);

// Deepest nesting of arrays and objects ParseJsonObject accepts (the
// outermost object is level 1).
inline constexpr int kMaxJsonDepth = 32;

// Parses `json` (RFC 8259) into a Struct with protobuf's JSON parser. Returns
// INVALID_ARGUMENT, naming `what` (e.g. "header"), when the text is not JSON,
// is not an object (an array, a string, ...), repeats a key within one object,
// holds a number outside the range of a double, is not UTF-8, nests deeper
// than kMaxJsonDepth, or has trailing bytes. The message carries at most a
// short, escaped excerpt of the parser's own diagnosis, not the input.
//
// Leniency inherited from protobuf's parser, accepted on purpose: unquoted
// object keys, single-quoted strings and trailing commas ({a:'x',}). Signed
// JOSE objects come from the key holder, and the bytes passed on
// (VerifiedJwt::payload_json) are exactly the signed ones.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json,
                                                          absl::string_view what);

// Quotes an untrusted string for an error message: C-escaped, cut to at most
// `max_len` bytes of input (with "..." appended when cut).
std::string QuoteForMessage(absl::string_view s, size_t max_len = 64);

}  // namespace gateway::auth

#endif  // GATEWAY_AUTH_JOSE_UTIL_H_
