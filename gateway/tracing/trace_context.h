// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and
// `tracestate` headers, parsed strictly (they come from untrusted clients).
//
// Grammar (version 00 only; any other version, length or character is invalid):
//   traceparent = "00" "-" trace-id "-" parent-id "-" trace-flags      ; 55 chars
//   trace-id    = 32 lower-case hex digits, not all zero
//   parent-id   = 16 lower-case hex digits, not all zero
//   trace-flags = 2 lower-case hex digits (bit 0: sampled)
//
//   tracestate  = list-member *( OWS "," OWS list-member )   ; empty members are skipped
//   list-member = key "=" value                               ; at most 32, keys unique
//   key         = lcalpha 0*255( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//               / ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//                 "@" lcalpha 0*13( lcalpha / DIGIT / "_" / "-" / "*" / "/" )
//   value       = 0*255( %x20-2B / %x2D-3C / %x3E-7E ) ( %x21-2B / %x2D-3C / %x3E-7E )
//
// Thread-safety: pure functions and plain values.
//
// Example:
//   std::optional<TraceContext> parent = ParseTraceparent(header);
//   if (parent) { ... parent->trace_id ... } else { /* start a new trace */ }

#ifndef GATEWAY_TRACING_TRACE_CONTEXT_H_
#define GATEWAY_TRACING_TRACE_CONTEXT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace gateway::tracing {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

inline constexpr uint8_t kSampledFlag = 0x01;
inline constexpr size_t kMaxTracestateMembers = 32;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};
  uint8_t flags = 0;
  bool sampled() const { return (flags & kSampledFlag) != 0; }
};

// The context of a valid version-00 `traceparent` value, or nullopt (anything else,
// including all-zero ids and upper-case hex).
std::optional<TraceContext> ParseTraceparent(absl::string_view value);

// "00-<trace-id>-<span-id>-<flags>" (lower-case hex).
std::string FormatTraceparent(const TraceContext& context);

// `value` normalized (members joined by "," without spaces, empty members dropped) when it
// is a valid tracestate of at most 32 members with unique keys; "" otherwise (an invalid
// tracestate is dropped whole, as the W3C recommendation says).
std::string NormalizeTracestate(absl::string_view value);

// Lower-case hex of `bytes`.
std::string ToHex(const uint8_t* bytes, size_t size);
template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& id) {
  return ToHex(id.data(), N);
}

// Whether every byte is zero (an invalid id).
template <size_t N>
bool IsZero(const std::array<uint8_t, N>& id) {
  for (uint8_t b : id) {
    if (b != 0) return false;
  }
  return true;
}

}  // namespace gateway::tracing

#endif  // GATEWAY_TRACING_TRACE_CONTEXT_H_
