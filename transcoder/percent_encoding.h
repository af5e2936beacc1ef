// Percent-decoding of URL path segments and query strings (RFC 3986).
//
// Pure functions; thread-safe.
//
// Example:
//   PercentDecode("a%20b%2Fc", PercentDecodeMode::kAll)          == "a b/c"
//   PercentDecode("a%20b%2Fc", PercentDecodeMode::kKeepSlash)    == "a b%2Fc"
//   PercentDecode("a+b", PercentDecodeMode::kQueryPlusAsSpace)   == "a b"
#ifndef GATEWAY_TRANSCODER_PERCENT_ENCODING_H_
#define GATEWAY_TRANSCODER_PERCENT_ENCODING_H_

#include <string>

#include "absl/strings/string_view.h"

namespace gateway::transcoder {

enum class PercentDecodeMode {
  kAll,               // decode every %XX (single-segment path variables)
  kKeepSlash,         // leave %2F / %2f encoded (multi-segment path variables)
  kQueryPlusAsSpace,  // decode every %XX and turn '+' into ' ' (form encoding)
};

// Returns `in` with valid %XX escapes decoded per `mode`. An invalid or
// truncated escape ("%zz", "%4") is kept as written: decoding never fails.
// The result may contain any byte, including NUL and invalid UTF-8; callers
// that need UTF-8 validate it.
std::string PercentDecode(absl::string_view in, PercentDecodeMode mode);

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_PERCENT_ENCODING_H_
