#include "gateway/tracing/tracer.h"

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/tracing/exporter.h"

namespace gateway::tracing {
namespace {

absl::BitGen& Random() {
  thread_local absl::BitGen gen;
  return gen;
}

template <size_t N>
std::array<uint8_t, N> NewId() {
  std::array<uint8_t, N> id{};
  do {
    for (uint8_t& b : id) b = absl::Uniform<uint8_t>(Random());
  } while (IsZero(id));
  return id;
}

// "host:port" split for server.address / server.port ("[::1]:80" too).
void SplitHostPort(absl::string_view hostport, absl::string_view* host, int64_t* port) {
  *host = hostport;
  *port = -1;
  const size_t colon = hostport.rfind(':');
  if (colon == absl::string_view::npos) return;
  if (hostport.front() == '[' && hostport.find(']') > colon) return;  // "[::1]" alone
  int64_t p = 0;
  if (!absl::SimpleAtoi(hostport.substr(colon + 1), &p)) return;
  *host = hostport.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = p;
}

void AddHostPort(absl::string_view prefix, absl::string_view hostport,
                 std::vector<Attribute>* attributes) {
  // gRPC's peer form: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000".
  if (!absl::ConsumePrefix(&hostport, "ipv4:")) absl::ConsumePrefix(&hostport, "ipv6:");
  if (hostport.empty()) return;
  absl::string_view host;
  int64_t port;
  SplitHostPort(hostport, &host, &port);
  attributes->push_back({absl::StrCat(prefix, ".address"), std::string(host)});
  if (port >= 0) attributes->push_back({absl::StrCat(prefix, ".port"), port});
}

// "/pkg.Service/Method" -> "pkg.Service", "Method".
void SplitMethod(absl::string_view path, absl::string_view* service, absl::string_view* method) {
  absl::string_view p = path;
  if (!p.empty() && p.front() == '/') p.remove_prefix(1);
  const size_t slash = p.find('/');
  *service = p.substr(0, slash);
  *method = slash == absl::string_view::npos ? absl::string_view() : p.substr(slash + 1);
}

}  // namespace

Tracer::Tracer(Options options, SpanExporter* exporter)
    : options_(options), exporter_(exporter) {}

void Tracer::Export(SpanData span) const {
  if (exporter_ != nullptr) exporter_->Export(std::move(span));
}

TraceId Tracer::NewTraceId() { return NewId<16>(); }
SpanId Tracer::NewSpanId() { return NewId<8>(); }

bool Tracer::SampleNewTrace() const {
  if (options_.sample_ratio >= 1) return true;
  if (options_.sample_ratio <= 0) return false;
  return absl::Bernoulli(Random(), options_.sample_ratio);
}

std::shared_ptr<CallSpan> CallSpan::Start(const Tracer* tracer, absl::string_view traceparent,
                                          absl::string_view tracestate, absl::Time start) {
  if (tracer == nullptr) return nullptr;
  auto span = std::shared_ptr<CallSpan>(new CallSpan(tracer));
  span->start_ = start;
  span->context_.span_id = Tracer::NewSpanId();
  if (std::optional<TraceContext> parent = ParseTraceparent(traceparent)) {
    span->context_.trace_id = parent->trace_id;
    span->context_.flags = parent->flags & kSampledFlag;
    span->parent_span_id_ = parent->span_id;
    span->tracestate_ = NormalizeTracestate(tracestate);
  } else {
    span->context_.trace_id = Tracer::NewTraceId();
    span->context_.flags = tracer->SampleNewTrace() ? kSampledFlag : 0;
  }
  return span;
}

std::string CallSpan::StartAttempt(absl::string_view path, absl::string_view endpoint) {
  if (attempt_.has_value()) EndAttempt(absl::CancelledError("a new attempt started"));
  ++attempts_;
  SpanData& a = attempt_.emplace();
  a.trace_id = context_.trace_id;
  a.span_id = Tracer::NewSpanId();
  a.parent_span_id = context_.span_id;
  a.tracestate = tracestate_;
  a.flags = context_.flags;
  absl::string_view service, method;
  SplitMethod(path, &service, &method);
  a.name = absl::StrCat(service, "/", method);
  a.kind = SpanKind::kClient;
  a.start = absl::Now();
  a.attributes.push_back({"rpc.system", std::string("grpc")});
  a.attributes.push_back({"rpc.service", std::string(service)});
  a.attributes.push_back({"rpc.method", std::string(method)});
  AddHostPort("server", endpoint, &a.attributes);
  a.attributes.push_back({"gateway.attempt", static_cast<int64_t>(attempts_)});
  TraceContext sent = context_;
  sent.span_id = a.span_id;
  return FormatTraceparent(sent);
}

void CallSpan::EndAttempt(const absl::Status& status) {
  if (!attempt_.has_value()) return;
  SpanData a = *std::move(attempt_);
  attempt_.reset();
  a.end = absl::Now();
  a.attributes.push_back({"rpc.grpc.status_code", static_cast<int64_t>(status.raw_code())});
  if (!status.ok()) {
    a.error = true;
    a.status_message = std::string(status.message());
  }
  if (sampled()) tracer_->Export(std::move(a));
}

void CallSpan::HookAttempts(
    std::function<std::string(absl::string_view path, absl::string_view endpoint)>* on_start,
    std::function<void(const absl::Status&)>* on_end) {
  std::shared_ptr<CallSpan> self = shared_from_this();
  *on_start = [self](absl::string_view path, absl::string_view endpoint) {
    return self->StartAttempt(path, endpoint);
  };
  *on_end = [self](const absl::Status& status) { self->EndAttempt(status); };
}

void CallSpan::End(absl::Time end, const CallFacts& facts) {
  if (ended_) return;
  ended_ = true;
  if (attempt_.has_value()) EndAttempt(absl::CancelledError("the call ended first"));
  if (!sampled()) return;
  SpanData s;
  s.trace_id = context_.trace_id;
  s.span_id = context_.span_id;
  s.parent_span_id = parent_span_id_;
  s.tracestate = tracestate_;
  s.flags = context_.flags;
  s.kind = SpanKind::kServer;
  s.start = start_;
  s.end = end;
  absl::string_view service, method;
  SplitMethod(facts.grpc_method, &service, &method);
  const bool grpc = facts.front_end != "http";
  if (facts.grpc_method.empty()) {
    s.name = std::string(facts.http_method);
  } else if (grpc) {
    s.name = absl::StrCat(service, "/", method);
  } else {
    // REST: the HTTP method and the method it maps to (bounded, unlike the path).
    s.name = absl::StrCat(facts.http_method, " ", service, "/", method);
  }
  std::vector<Attribute>& at = s.attributes;
  at.push_back({"gateway.front_end", std::string(facts.front_end)});
  if (!facts.grpc_method.empty()) {
    at.push_back({"rpc.system", std::string("grpc")});
    at.push_back({"rpc.service", std::string(service)});
    at.push_back({"rpc.method", std::string(method)});
  }
  at.push_back({"http.request.method", std::string(facts.http_method)});
  at.push_back({"url.path", std::string(facts.url_path)});
  if (facts.http_status != 0) {
    at.push_back({"http.response.status_code", static_cast<int64_t>(facts.http_status)});
  }
  if (facts.grpc_status >= 0) {
    at.push_back({"rpc.grpc.status_code", static_cast<int64_t>(facts.grpc_status)});
  }
  AddHostPort("server", facts.authority, &at);
  AddHostPort("client", facts.peer, &at);
  at.push_back({"gateway.attempts", static_cast<int64_t>(attempts_)});
  // Errors per the semantic conventions: a server span fails on HTTP 5xx; a gRPC server
  // span on UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
  const int g = facts.grpc_status;
  const bool grpc_error = grpc && (g == 2 || g == 4 || g == 12 || g == 13 || g == 14 || g == 15);
  const bool http_error = !grpc && facts.http_status >= 500;
  if (grpc_error || http_error || facts.http_status == 0) {
    s.error = true;
    s.status_message = facts.http_status == 0 ? std::string("the client went away")
                                              : std::string(facts.error_message);
    if (facts.http_status == 0) at.push_back({"error.type", std::string("cancelled")});
  }
  tracer_->Export(std::move(s));
}

}  // namespace gateway::tracing
