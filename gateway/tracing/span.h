// The spans the gateway makes (a server span per call, a client span per backend attempt)
// and their OTLP encoding (an ExportTraceServiceRequest, opentelemetry-proto's field
// numbers, see proto/opentelemetry/).
//
// Thread-safety: plain values and a pure function.
//
// Example:
//   SpanData span;  span.name = "pkg.Echo/Say";  span.kind = SpanKind::kServer; ...
//   std::string body = EncodeExportRequest({span}, {"gatewayd", "1.2.0"});

#ifndef GATEWAY_TRACING_SPAN_H_
#define GATEWAY_TRACING_SPAN_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "gateway/tracing/trace_context.h"

namespace gateway::tracing {

// OTLP's Span.SpanKind values.
enum class SpanKind { kServer = 2, kClient = 3 };

struct Attribute {
  std::string key;
  std::variant<std::string, int64_t, bool> value;
};

struct SpanData {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // all zero: a root span
  std::string tracestate;
  uint8_t flags = 0;
  std::string name;
  SpanKind kind = SpanKind::kServer;
  absl::Time start;
  absl::Time end;
  std::vector<Attribute> attributes;
  // OTLP status: error (STATUS_CODE_ERROR with `status_message`) or unset.
  bool error = false;
  std::string status_message;
};

// Who sends the spans: the resource's service.name and the instrumentation scope.
struct ExportIdentity {
  std::string service_name = "gatewayd";
  std::string version;
};

// The serialized ExportTraceServiceRequest with `spans` (one resource, one scope).
std::string EncodeExportRequest(const std::vector<SpanData>& spans,
                                const ExportIdentity& identity);

}  // namespace gateway::tracing

#endif  // GATEWAY_TRACING_SPAN_H_
