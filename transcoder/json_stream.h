// Framing of JSON message streams over HTTP/1.1 bodies, both ways:
// - StreamFramer writes the messages of a server stream as one JSON array
//   (written incrementally), as newline-delimited JSON, or as Server-Sent
//   Events, and reports an error that happens after the stream started
//   inside the stream, in a form any client can read.
// - JsonStreamReader splits a client-stream body (a JSON array or NDJSON)
//   into messages as bytes arrive.
//
// Both classes hold per-stream state: one instance per stream, not
// thread-safe (a stream is driven by one thread at a time).
//
// Example (server stream as SSE):
//   StreamFramer framer(StreamFormat::kServerSentEvents);
//   write(framer.Message(R"({"id":"1"})"));   // "data: {\"id\":\"1\"}\n\n"
//   write(framer.Error(error_json));           // "event: error\ndata: {...}\n\n"
//
// Example (client stream):
//   JsonStreamReader reader(StreamFormat::kJsonArray);
//   reader.Append(R"([{"a":1},{"a")");
//   reader.Next();  // -> R"({"a":1})"
//   reader.Next();  // -> std::nullopt (needs more bytes)
#ifndef GATEWAY_TRANSCODER_JSON_STREAM_H_
#define GATEWAY_TRANSCODER_JSON_STREAM_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gateway::transcoder {

enum class StreamFormat {
  kJsonArray,         // application/json: [m1,m2,...]
  kNdjson,            // application/x-ndjson: one message per line
  kServerSentEvents,  // text/event-stream: "data: <message>\n\n" per message
};

// The Content-Type to send for `format`.
absl::string_view StreamContentType(StreamFormat format);

// Chooses the format a client asks for in its Accept header: text/event-stream
// -> SSE, application/x-ndjson (or application/jsonl, application/json-seq)
// -> NDJSON, application/json -> JSON array; the first of these media types
// in the header wins. Otherwise (absent, "*/*", others) `default_format`.
StreamFormat ChooseStreamFormat(absl::string_view accept_header,
                                StreamFormat default_format);

class StreamFramer {
 public:
  explicit StreamFramer(StreamFormat format) : format_(format) {}

  // Returns the bytes that carry `json` (one compact or pretty JSON value).
  std::string Message(absl::string_view json);

  // Returns the bytes that end a successful stream ("]" or "[]" for an array,
  // nothing for NDJSON and SSE). Call once; no calls after it.
  std::string End();

  // Returns the bytes that report an error after zero or more messages and
  // end the stream. `error_json` is the error body (see status_mapping.h):
  // a JSON array gets a last element {"error": <error_json>} and is closed;
  // NDJSON gets a last line {"error": <error_json>}; SSE gets an
  // "event: error" event whose data is <error_json>. No calls after it.
  std::string Error(absl::string_view error_json);

 private:
  StreamFormat format_;
  bool started_ = false;
};

class JsonStreamReader {
 public:
  // `format` is kJsonArray or kNdjson (one JSON value per line; whitespace
  // between values is all that is required). kServerSentEvents is read as
  // kNdjson. A message larger than `max_message_bytes` is an error.
  explicit JsonStreamReader(StreamFormat format,
                            size_t max_message_bytes = 4 << 20);

  // Buffers more body bytes. Never fails; errors surface in Next().
  void Append(absl::string_view bytes);

  // Returns the next complete message (its JSON text), std::nullopt when more
  // bytes are needed, or INVALID_ARGUMENT (naming the byte offset in the
  // body) when the body is not a JSON array / NDJSON stream or a message is
  // too large. After an error, every call returns the same error.
  absl::StatusOr<std::optional<std::string>> Next();

  // Call at the end of the body, after Next() returned std::nullopt. Returns
  // OK when the stream ended cleanly (array closed, no partial message; for
  // NDJSON a last line without '\n' is still returned by Next() after
  // Finish()), INVALID_ARGUMENT otherwise.
  absl::Status Finish();

 private:
  absl::Status Fail(size_t offset, absl::string_view what);

  StreamFormat format_;
  size_t max_message_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;        // bytes of the body dropped from buffer_
  size_t pos_ = 0;             // scan position in buffer_
  bool array_open_ = false;    // saw '['
  bool array_closed_ = false;  // saw ']'
  bool need_separator_ = false;  // a message was read; ',' or ']' comes next
  bool after_comma_ = false;
  bool finished_ = false;
  // Scan state of a partly received message starting at pos_.
  bool in_value_ = false;
  size_t value_scan_ = 0;  // next byte to scan
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  absl::Status error_;
};

}  // namespace gateway::transcoder

#endif  // GATEWAY_TRANSCODER_JSON_STREAM_H_
