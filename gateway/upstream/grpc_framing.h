// gRPC-over-HTTP/2 wire pieces used by the upstream client: the 5-byte message prefix
// (framing and incremental de-framing), the `grpc-timeout` header, `grpc-message`
// percent-decoding, and the HTTP status -> gRPC code table.
//
// Pure functions and one value type; no I/O. `GrpcDeframer` is not thread-safe (one
// instance per stream, used by the thread that owns the stream).
//
//   GrpcDeframer d(/*max_message_size=*/4 << 20);
//   absl::Status s = d.Feed(chunk);            // any split of the DATA payload
//   while (auto m = d.Next()) Consume(*m);     // whole messages, prefix removed
#ifndef GATEWAY_UPSTREAM_GRPC_FRAMING_H_
#define GATEWAY_UPSTREAM_GRPC_FRAMING_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway::upstream {

// Appends `message` to `out` with the 5-byte gRPC prefix (flag 0 = uncompressed,
// big-endian length). Precondition: message.size() < 2^32.
void AppendGrpcFrame(absl::string_view message, std::string* out);

// Splits a stream of DATA payload bytes into gRPC messages. Messages whose prefix
// announces more than `max_message_size` bytes are refused with RESOURCE_EXHAUSTED before
// any of their body is buffered. Messages come out without their prefix; a
// compressed-flag message is refused with INTERNAL (the upstream never asks for
// compression). After an error the deframer stays failed.
class GrpcDeframer {
 public:
  explicit GrpcDeframer(size_t max_message_size) : max_message_size_(max_message_size) {}

  // Takes the next bytes of the stream. Returns OK, or the error described above.
  absl::Status Feed(absl::string_view bytes);
  // The next complete message (prefix removed), or nullopt when none is complete yet.
  std::optional<std::string> Next();
  // Whether a message is ready for Next().
  bool HasMessage() const { return !ready_.empty(); }
  // Bytes buffered of a message not yet complete (prefix included).
  size_t partial_bytes() const { return header_.size() + body_.size(); }
  // OK unless a message was partly received; for the end of the stream: a prefix or body
  // cut short is INTERNAL ("message truncated: ...").
  absl::Status CheckComplete() const;

 private:
  const size_t max_message_size_;
  absl::Status error_;
  std::string header_;  // 0..5 bytes of the current prefix
  std::string body_;
  uint32_t body_size_ = 0;
  std::deque<std::string> ready_;
};

// Follows a stream of gRPC frames passed through as they arrive (a relay: any split, whole
// or partial frames, nothing buffered or copied here): reads only the 5-byte prefixes. A
// prefix whose flag byte is neither 0 nor 1 (compressed) is INTERNAL; one that announces
// more than `max_message_size` bytes is RESOURCE_EXHAUSTED, so the caller stops before
// passing any of that message on. After an error the scanner stays failed.
//
//   GrpcFrameScanner scan(/*max_message_size=*/4 << 20);
//   if (absl::Status s = scan.Scan(chunk); !s.ok()) return Fail(s);
//   Forward(std::move(chunk));
class GrpcFrameScanner {
 public:
  explicit GrpcFrameScanner(size_t max_message_size) : max_message_size_(max_message_size) {}

  // Checks the prefixes that start in `bytes`, the next bytes of the stream.
  absl::Status Scan(absl::string_view bytes);
  // OK unless a frame was partly seen; for the end of the stream: a prefix or body cut
  // short is INTERNAL ("message truncated: ...").
  absl::Status CheckComplete() const;
  // Frames seen whole, and their message bytes (prefixes not counted) plus those of the
  // frame under way.
  uint64_t frames() const { return frames_; }
  uint64_t message_bytes() const { return message_bytes_; }
  // Whether the bytes so far end inside a frame (its prefix or body partly seen).
  bool mid_frame() const { return header_size_ > 0; }

 private:
  const size_t max_message_size_;
  absl::Status error_;
  unsigned char header_[5] = {};
  size_t header_size_ = 0;  // prefix bytes of the current frame seen (0..5)
  uint32_t body_size_ = 0;
  uint32_t body_seen_ = 0;
  uint64_t frames_ = 0;
  uint64_t message_bytes_ = 0;
};

// The `grpc-timeout` value for `timeout`: the largest unit (H, M, S, m, u, n) that holds it
// exactly in at most 8 digits; when no unit does, the smallest unit that holds it rounded
// up in 8 digits. Returns DEADLINE_EXCEEDED when timeout <= 0 (nothing to send then).
absl::StatusOr<std::string> EncodeGrpcTimeout(absl::Duration timeout);

// Percent-decodes a `grpc-message` value ("%XX" sequences); malformed sequences are kept
// literally, as gRPC does.
std::string PercentDecodeGrpcMessage(absl::string_view value);

// The gRPC code for a response whose HTTP status is not 200 and which has no grpc-status
// (gRPC's http-grpc-status-mapping): 400 INTERNAL, 401 UNAUTHENTICATED, 403
// PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, else UNKNOWN.
absl::StatusCode GrpcCodeForHttpStatus(int http_status);

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_GRPC_FRAMING_H_
