// The Connect protocol's wire pieces (https://connectrpc.com/docs/protocol), without I/O:
// content types, the timeout header, envelopes of streaming bodies, the error JSON of unary
// responses and the end-of-stream message of streaming ones, the HTTP status of each code,
// and the query of a unary GET. ConnectCall (connect_call.h) puts them together.
//
// Grammar (Connect protocol, version 1):
//   Unary-Content-Type     = "application/" ("proto" | "json") [";" params]
//   Streaming-Content-Type = "application/connect+" ("proto" | "json") [";" params]
//   Timeout                = "connect-timeout-ms:" 1*10DIGIT          ; milliseconds
//   Envelope               = Flags Length Data ; Flags 1 byte, Length 4 bytes big-endian
//                            ; flag 0x01: Data compressed, 0x02: end of stream
//   End-Stream-Message     = {"error": Error?, "metadata": {key: [value, ...]}?}
//   Error                  = {"code": name, "message": text?, "details": [{"type": full
//                            name, "value": base64 (no padding)}]?}
//   Get-Query              = "connect=v1" & "encoding=" ("proto"|"json") & "message=" text
//                            [& "base64=1"] [& "compression=" name]  ; any order
//
// All functions are pure and thread-safe; EnvelopeReader is a value owned by one call.
//
//   EnvelopeReader reader(max_message_bytes);
//   if (absl::Status s = reader.Feed(body_piece); !s.ok()) return s;
//   while (std::optional<Envelope> e = reader.Next()) Handle(e->flags, e->data);
#ifndef GATEWAY_HTTP_CONNECT_H_
#define GATEWAY_HTTP_CONNECT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace gateway::http::connect {

enum class Codec { kProto, kJson };

struct ContentType {
  bool streaming = false;
  Codec codec = Codec::kProto;
};

// The Connect content type of `content_type` (ASCII case-insensitive, parameters after ';'
// ignored), or nullopt when it is none of the four above.
std::optional<ContentType> ParseContentType(absl::string_view content_type);
// "application/proto", "application/json", "application/connect+proto", ...
std::string ContentTypeName(ContentType type);

// The value of connect-timeout-ms: 1 to 10 digits, milliseconds. INVALID_ARGUMENT naming
// the header and the value otherwise.
absl::StatusOr<absl::Duration> ParseTimeoutMs(absl::string_view value);

// The protocol's name of `code` ("invalid_argument", ...; "unknown" for OK and codes
// outside the 16) and back (nullopt for a name that is none of them).
absl::string_view CodeName(absl::StatusCode code);
std::optional<absl::StatusCode> CodeFromName(absl::string_view name);
// The HTTP status of a unary error response with `code` (the protocol's table: canceled
// 499, invalid_argument 400, not_found 404, unauthenticated 401, unimplemented 501, ...).
int HttpStatusFor(absl::StatusCode code);

// The Error JSON object of `status` (not OK); `details_bin` is the backend's
// grpc-status-details-bin (a serialized google.rpc.Status, raw bytes) or empty: its details
// become "details" entries. Details that do not parse are left out.
std::string ErrorJson(const absl::Status& status, absl::string_view details_bin);

// The JSON of an end-of-stream message: "error" unless `status` is OK, "metadata" with the
// trailers (names lower case; values as they are, binary ones in base64).
std::string EndStreamJson(const absl::Status& status, absl::string_view details_bin,
                          const std::vector<std::pair<std::string, std::string>>& trailers);

inline constexpr uint8_t kFlagCompressed = 0x01;
inline constexpr uint8_t kFlagEndStream = 0x02;

// One envelope: its 5-byte prefix and `data`.
std::string MakeEnvelope(uint8_t flags, absl::string_view data);

struct Envelope {
  uint8_t flags = 0;
  std::string data;
};

// Splits a streaming request body into envelopes as it arrives. Not thread-safe.
class EnvelopeReader {
 public:
  // `max_message_bytes`: the largest Data accepted.
  explicit EnvelopeReader(size_t max_message_bytes) : max_(max_message_bytes) {}

  // Appends body bytes. RESOURCE_EXHAUSTED when a prefix announces more than the limit
  // (saying how much and the limit); INVALID_ARGUMENT for flags other than 0x01 and 0x02.
  // After an error the reader must not be used.
  absl::Status Feed(absl::string_view data);
  // The next whole envelope, or nullopt until more bytes arrive.
  std::optional<Envelope> Next();
  // At the end of the body: INVALID_ARGUMENT when a partial envelope is left.
  absl::Status CheckComplete() const;

 private:
  absl::Status CheckPrefix();
  size_t max_;
  std::string buffer_;
  size_t pos_ = 0;
};

// The request of a unary GET, from its query string (without '?').
struct GetRequest {
  Codec codec = Codec::kProto;
  std::string message;      // decoded: percent-decoded, and base64-decoded when base64=1
  std::string compression;  // empty: none
};
// INVALID_ARGUMENT naming the parameter: connect missing or not "v1", encoding missing or
// neither "proto" nor "json", message missing, base64 not "0"/"1" or its value not base64,
// a malformed percent escape, a parameter given twice. Other parameters are ignored.
absl::StatusOr<GetRequest> ParseGetQuery(absl::string_view query);

}  // namespace gateway::http::connect

#endif  // GATEWAY_HTTP_CONNECT_H_
