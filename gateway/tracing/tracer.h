// Tracer and CallSpan: the trace of one call through the gateway. A call's server span
// continues the client's W3C trace context (its parent is the incoming traceparent's span
// id; a missing or invalid traceparent starts a new trace), and each backend attempt gets a
// client span, child of the call's span, whose id goes to the backend in the attempt's
// traceparent (so the backend's spans are children of the attempt).
//
// Sampling: an incoming traceparent's sampled flag is honored; a new trace is sampled with
// `sample_ratio`. Unsampled calls still propagate a context (flag 00) and export nothing.
//
// Thread-safety: Tracer is thread-safe; a CallSpan belongs to its call (one thread).
//
// Example (a front end):
//   span_ = tracing::CallSpan::Start(env_->tracer, req.Header("traceparent"),
//                                    req.Header("tracestate"), arrival_);
//   if (span_ != nullptr) span_->HookAttempts(&spec.on_attempt_start, &spec.on_attempt_end);
//   ...
//   if (span_ != nullptr) span_->End(now, facts);

#ifndef GATEWAY_TRACING_TRACER_H_
#define GATEWAY_TRACING_TRACER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/tracing/span.h"
#include "gateway/tracing/trace_context.h"

namespace gateway::tracing {

class SpanExporter;

class Tracer {
 public:
  struct Options {
    // The share of new traces (no incoming sampled context) that are sampled, 0..1.
    double sample_ratio = 1.0;
  };
  // `exporter` gets the sampled spans; must outlive the Tracer.
  Tracer(Options options, SpanExporter* exporter);

  const Options& options() const { return options_; }
  // Hands a finished span to the exporter (never blocks on the network).
  void Export(SpanData span) const;

  // Random non-zero ids.
  static TraceId NewTraceId();
  static SpanId NewSpanId();
  // Whether a new trace is sampled (sample_ratio).
  bool SampleNewTrace() const;

 private:
  const Options options_;
  SpanExporter* const exporter_;
};

// What a front end knows of its call when it ends (the span's attributes).
struct CallFacts {
  // "grpc", "http" (REST), "grpc-web", ...
  absl::string_view front_end;
  absl::string_view http_method;
  // The request path without the query.
  absl::string_view url_path;
  // "/pkg.Service/Method" of the routed method; empty when no route matched.
  absl::string_view grpc_method;
  // The request's :authority / Host.
  absl::string_view authority;
  // The client's address ("127.0.0.1:5000", "[::1]:5000").
  absl::string_view peer;
  // The HTTP status sent (0: the client went away first).
  int http_status = 0;
  // The gRPC status sent or translated; -1 when none.
  int grpc_status = -1;
  // Why the call failed, when it did (the gateway's or the backend's message).
  absl::string_view error_message;
};

class CallSpan : public std::enable_shared_from_this<CallSpan> {
 public:
  // The call's span, or null when `tracer` is null (tracing off). `traceparent` and
  // `tracestate` are the request's headers (empty when absent).
  static std::shared_ptr<CallSpan> Start(const Tracer* tracer, absl::string_view traceparent,
                                         absl::string_view tracestate, absl::Time start);

  // The call's own context (its span id) and the incoming parent (zero when none).
  const TraceContext& context() const { return context_; }
  const SpanId& parent_span_id() const { return parent_span_id_; }
  const std::string& tracestate() const { return tracestate_; }
  bool sampled() const { return context_.sampled(); }

  // An attempt starts: opens its client span and returns the traceparent to send with it.
  std::string StartAttempt(absl::string_view path, absl::string_view endpoint);
  // The open attempt ended with `status` (ignored when none is open).
  void EndAttempt(const absl::Status& status);

  // Sets the two BackendCall::Spec hooks (types match upstream::BackendCall::Spec): each
  // attempt's traceparent, and its end. The hooks hold this span.
  void HookAttempts(
      std::function<std::string(absl::string_view path, absl::string_view endpoint)>* on_start,
      std::function<void(const absl::Status&)>* on_end);

  // The call ended: closes an attempt still open (cancelled) and exports the spans (when
  // sampled). Later calls are ignored.
  void End(absl::Time end, const CallFacts& facts);

 private:
  explicit CallSpan(const Tracer* tracer) : tracer_(tracer) {}

  const Tracer* tracer_;
  TraceContext context_;
  SpanId parent_span_id_{};
  std::string tracestate_;
  absl::Time start_;
  bool ended_ = false;
  int attempts_ = 0;
  std::optional<SpanData> attempt_;  // the open attempt
};

}  // namespace gateway::tracing

#endif  // GATEWAY_TRACING_TRACER_H_
