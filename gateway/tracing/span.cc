#include "gateway/tracing/span.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace gateway::tracing {
namespace {

namespace otlp_common = ::opentelemetry::proto::common::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

uint64_t UnixNanos(absl::Time t) {
  const int64_t n = absl::ToUnixNanos(t);
  return n < 0 ? 0 : static_cast<uint64_t>(n);
}

void SetValue(const Attribute& a, otlp_common::KeyValue* kv) {
  kv->set_key(a.key);
  otlp_common::AnyValue* v = kv->mutable_value();
  if (const auto* s = std::get_if<std::string>(&a.value)) {
    v->set_string_value(*s);
  } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
    v->set_int_value(*i);
  } else {
    v->set_bool_value(std::get<bool>(a.value));
  }
}

}  // namespace

std::string EncodeExportRequest(const std::vector<SpanData>& spans,
                                const ExportIdentity& identity) {
  ::opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  otlp_trace::ResourceSpans* resource_spans = request.add_resource_spans();
  otlp_common::KeyValue* service = resource_spans->mutable_resource()->add_attributes();
  SetValue({"service.name", identity.service_name}, service);
  otlp_trace::ScopeSpans* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("gatewayd");
  scope_spans->mutable_scope()->set_version(identity.version);
  for (const SpanData& s : spans) {
    otlp_trace::Span* span = scope_spans->add_spans();
    span->set_trace_id(s.trace_id.data(), s.trace_id.size());
    span->set_span_id(s.span_id.data(), s.span_id.size());
    if (!IsZero(s.parent_span_id)) {
      span->set_parent_span_id(s.parent_span_id.data(), s.parent_span_id.size());
    }
    span->set_trace_state(s.tracestate);
    span->set_flags(s.flags);
    span->set_name(s.name);
    span->set_kind(static_cast<otlp_trace::Span::SpanKind>(s.kind));
    span->set_start_time_unix_nano(UnixNanos(s.start));
    span->set_end_time_unix_nano(UnixNanos(s.end));
    for (const Attribute& a : s.attributes) SetValue(a, span->add_attributes());
    if (s.error) {
      span->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
      span->mutable_status()->set_message(s.status_message);
    }
  }
  return request.SerializeAsString();
}

}  // namespace gateway::tracing
