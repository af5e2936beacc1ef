#include "gateway/http/gzip.h"

#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace gateway::http::gzip {

namespace {
constexpr int kGzipWindowBits = 15 + 16;  // zlib: 15-bit window, gzip header and trailer
constexpr size_t kChunk = 16 * 1024;
}  // namespace

std::string Compress(absl::string_view data) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
  std::string out;
  out.resize(deflateBound(&z, data.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);  // deflateBound leaves room for all of it
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

absl::StatusOr<std::string> Decompress(absl::string_view data, size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, kGzipWindowBits) != Z_OK) {
    return absl::InternalError("gzip: cannot initialize zlib");
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  int rc = Z_OK;
  while (rc == Z_OK) {
    const size_t room = std::min(kChunk, max_bytes + 1 - out.size());
    const size_t before = out.size();
    out.resize(before + room);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    z.avail_out = static_cast<uInt>(room);
    rc = inflate(&z, Z_NO_FLUSH);
    out.resize(before + room - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      return absl::ResourceExhaustedError(absl::StrCat(
          "gzip data inflates to more than the limit of ", max_bytes,
          " bytes (limits.max_message_bytes)"));
    }
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // truncated
    if (rc == Z_BUF_ERROR && z.avail_out == 0) rc = Z_OK;
  }
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0;
  inflateEnd(&z);
  if (!whole) {
    return absl::InvalidArgumentError(
        rc == Z_STREAM_END ? "gzip: bytes after the end of the compressed data"
                           : "gzip: malformed or truncated compressed data");
  }
  return out;
}

}  // namespace gateway::http::gzip
