// Base64 (RFC 4648) for protobuf `bytes` fields in JSON and in URL parameters:
// a decoder that takes the standard and the URL-safe alphabet, and an encoder
// that writes the standard alphabet with padding, as proto3 JSON prints bytes.
//
// Stateless and thread-safe.
//
// Example:
//   std::string bytes;
//   if (!Base64Decode("aGk=", &bytes)) { ... }  // bytes == "hi"
//   std::string json = "\"";
//   Base64Encode(bytes, &json);                  // json == "\"aGk="
#ifndef GATEWAY_TRANSCODER_BASE64_H_
#define GATEWAY_TRANSCODER_BASE64_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace gateway::transcoder {

// Decodes `in` and appends the bytes to `*out`. Returns false, leaving `*out`
// as it was, when `in` is not base64.
//
// Accepts exactly what `absl::Base64Unescape(in) || absl::WebSafeBase64Unescape(in)`
// accepts, with the same bytes:
//   - data characters of one alphabet: A-Z a-z 0-9 with either '+' '/' (standard)
//     or '-' '_' (URL-safe), never both kinds in one input;
//   - ASCII whitespace (space, \t, \n, \v, \f, \r) anywhere, ignored;
//   - the number of data characters is not 1 more than a multiple of 4;
//   - after the data, padding made of '=' or '.': none, or exactly the count
//     that completes the last group of four (2 after 2 characters, 1 after 3,
//     none after a full group); nothing but whitespace after it;
//   - unused low bits of the last character are ignored ("QR==" decodes as "QQ==").
bool Base64Decode(absl::string_view in, std::string* out);

// The number of bytes Base64Decode(in) appends when `in` holds no whitespace.
// For any `in` that Base64Decode accepts, an upper bound. Cheap: looks only at
// the size and the last two characters.
size_t Base64DecodedSize(absl::string_view in);

// Appends the standard base64 encoding of `in` to `*out`, padded with '=' to
// a multiple of 4 characters (what absl::Base64Escape returns).
void Base64Encode(absl::string_view in, std::string* out);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_BASE64_H_
