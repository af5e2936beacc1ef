// gzip (RFC 1952) bodies and messages through zlib, with the decompressed size bounded so
// a small "decompression bomb" is refused before it is inflated.
//
// Thread-safe (no shared state).
//
//   std::string packed = gzip::Compress(message);
//   absl::StatusOr<std::string> m = gzip::Decompress(packed, limits.max_message_bytes);
#ifndef GATEWAY_HTTP_GZIP_H_
#define GATEWAY_HTTP_GZIP_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::http::gzip {

// `data` in the gzip format (default compression level).
std::string Compress(absl::string_view data);

// The bytes `data` (one gzip member) inflates to. RESOURCE_EXHAUSTED as soon as the output
// would exceed `max_bytes` (saying the limit; inflating stops there); INVALID_ARGUMENT for
// data that is not gzip, is truncated, or has bytes after the member.
absl::StatusOr<std::string> Decompress(absl::string_view data, size_t max_bytes);

}  // namespace gateway::http::gzip

#endif  // GATEWAY_HTTP_GZIP_H_
