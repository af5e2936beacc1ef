// The gRPC-Web wire format (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md):
// content types, the length-prefixed frames of request and response bodies, the trailer
// frame that carries the status, and the base64 text variant. Pure functions, no I/O: the
// HTTP front end relays the message bytes between the frames and the backend untouched.
//
// Body grammar (binary, "application/grpc-web[+proto]"):
//   body    = *frame
//   frame   = flags length payload
//   flags   = OCTET            ; 0x00 message, 0x01 compressed message,
//                              ; 0x80 trailers, 0x81 compressed trailers; other bits unused
//   length  = 4OCTET           ; payload size, big endian
//   payload = length OCTET
//   trailers payload = *( name ":" SP value CRLF )   ; HTTP/1 header lines, names lower case
//
// Text ("application/grpc-web-text[+proto]"): the binary body in standard base64, possibly
// as several chunks each with its own padding (a sender may flush at any point):
//   text    = *quad
//   quad    = 4b64 / 3b64 "=" / 2b64 "=="      ; a padded quad may be followed by more quads
//
// Thread-safety: stateless functions; safe from any thread.
//
// Example (a unary call):
//   std::optional<GrpcWebType> type = ParseContentType(request.Header("content-type"));
//   std::string storage;
//   absl::StatusOr<std::vector<Frame>> frames =
//       DecodeRequestBody(request.body, type->encoding, max_bytes, &storage);
//   ... call the backend with (*frames)[0].payload ...
//   std::string body = EncodeFrame(kMessageFrame, response_bytes, type->encoding);
//   body += EncodeFrame(kTrailerFrame, TrailerBlock(0, "", trailing_metadata),
//                       type->encoding);

#ifndef GATEWAY_HTTP_GRPC_WEB_H_
#define GATEWAY_HTTP_GRPC_WEB_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::http::grpc_web {

enum class Encoding { kBinary, kText };

// What a gRPC-Web content type says.
struct GrpcWebType {
  Encoding encoding = Encoding::kBinary;
  // The message codec is protobuf ("+proto" or none). False for "+json", "+thrift", ...:
  // the gateway relays protobuf only and refuses the call.
  bool proto = true;
};

// Frame flags.
inline constexpr uint8_t kMessageFrame = 0x00;
inline constexpr uint8_t kCompressedBit = 0x01;
inline constexpr uint8_t kTrailerFrame = 0x80;
// Flags byte, length.
inline constexpr std::size_t kFrameHeaderBytes = 5;

// Parses a Content-Type header value ("application/grpc-web-text+proto; charset=x" ...,
// case-insensitive, parameters ignored). std::nullopt when it is not a gRPC-Web type
// (including "application/grpc", which is native gRPC, not gRPC-Web).
std::optional<GrpcWebType> ParseContentType(absl::string_view content_type);

// The Content-Type of responses in `encoding` ("application/grpc-web+proto" or
// "application/grpc-web-text+proto").
absl::string_view ResponseContentType(Encoding encoding);

// One frame of a decoded body. `payload` views the caller's storage (see
// DecodeRequestBody).
struct Frame {
  uint8_t flags = 0;
  absl::string_view payload;
};

// Decodes a standard base64 text as a sequence of quads (see the grammar above): several
// padded chunks one after the other are accepted. INVALID_ARGUMENT naming the offset for a
// length that is not a multiple of 4, a byte outside the alphabet, or misplaced padding.
absl::StatusOr<std::string> DecodeBase64Chunks(absl::string_view text);

// Splits a binary body into frames. The payloads view `body`. Errors:
//   INVALID_ARGUMENT   a frame header or payload cut short (names the frame and offset);
//   RESOURCE_EXHAUSTED a frame longer than `max_frame_bytes`.
absl::StatusOr<std::vector<Frame>> SplitFrames(absl::string_view body, uint32_t max_frame_bytes);

// Decodes a request body: base64 first for kText (into `*storage`, which the payloads then
// view; for kBinary they view `body`), then the frames, which must all be uncompressed
// message frames. Errors: those of DecodeBase64Chunks and SplitFrames, plus
//   INTERNAL          a compressed frame (the gateway relays uncompressed messages only;
//                     as gRPC does for a compressed message without grpc-encoding);
//   INVALID_ARGUMENT  a trailer frame or a frame with unknown flag bits.
// `body` and `*storage` must outlive the returned views.
absl::StatusOr<std::vector<Frame>> DecodeRequestBody(absl::string_view body, Encoding encoding,
                                                     uint32_t max_frame_bytes,
                                                     std::string* storage);

// Returns the frame header and `payload` (base64 with padding for kText, so that every
// frame is a whole base64 chunk a client can decode as soon as it arrives).
std::string EncodeFrame(uint8_t flags, absl::string_view payload, Encoding encoding);

// The payload of a trailer frame: "grpc-status: <code>\r\n", "grpc-message: <percent-
// encoded message>\r\n" when `message` is not empty, then one line per metadata entry.
// Entries whose name is not a valid lower-case metadata key, or whose value (after base64
// for "-bin" keys, which are given raw) is not printable ASCII, are left out: nothing a
// backend sends can break the block's syntax.
std::string TrailerBlock(int code, absl::string_view message,
                         const std::vector<std::pair<std::string, std::string>>& metadata);

// Percent-encodes a grpc-message value as the gRPC spec says: bytes outside 0x20..0x7E and
// '%' become "%XX" (upper-case hex).
std::string PercentEncodeMessage(absl::string_view message);

// Decodes a percent-encoded grpc-message value; malformed escapes are kept as they are.
std::string PercentDecodeMessage(absl::string_view encoded);

}  // namespace gateway::http::grpc_web

#endif  // GATEWAY_HTTP_GRPC_WEB_H_
