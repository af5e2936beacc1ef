#include "gateway/http/grpc_call.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "gateway/http/grpc_web.h"
#include "gateway/http/request_checks.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/upstream.h"
#include "gateway/upstream/cluster.h"

namespace gateway::http {

namespace asio = boost::asio;

namespace {

constexpr absl::string_view kGrpcContentType = "application/grpc";

// Backend metadata (name, value as received) that the policy passes back to the client,
// appended as HTTP/2 header fields: binary values decoded, checked, and sent in canonical
// base64.
void AppendClientMetadata(const metadata::MetadataPolicy& policy, const upstream::Headers& md,
                          HeaderList* out) {
  for (const auto& [key, value] : md) {
    if (!metadata::IsBinaryKey(key)) {
      if (policy.ForwardsToClient(key, value)) out->emplace_back(key, value);
      continue;
    }
    absl::StatusOr<std::string> raw = metadata::DecodeBinaryText(key, value);
    if (raw.ok() && policy.ForwardsToClient(key, *raw)) {
      out->emplace_back(key, absl::Base64Escape(*raw));
    }
  }
}

void AppendStatus(const absl::Status& status, absl::string_view details, HeaderList* out) {
  out->emplace_back("grpc-status", absl::StrCat(status.raw_code()));
  if (!status.message().empty()) {
    out->emplace_back("grpc-message", grpc_web::PercentEncodeMessage(status.message()));
  }
  if (!details.empty()) out->emplace_back("grpc-status-details-bin", absl::Base64Escape(details));
}

}  // namespace

bool IsGrpcContentType(absl::string_view content_type) {
  if (content_type.size() < kGrpcContentType.size() ||
      !absl::EqualsIgnoreCase(content_type.substr(0, kGrpcContentType.size()),
                              kGrpcContentType)) {
    return false;
  }
  const absl::string_view rest = content_type.substr(kGrpcContentType.size());
  return rest.empty() || rest[0] == '+' || rest[0] == ';';
}

// --- GrpcRelayCall ---

GrpcRelayCall::GrpcRelayCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
                             asio::io_context::executor_type executor,
                             upstream::WorkerUpstreams* upstreams, CallSink* sink,
                             BodyReader* body, std::shared_ptr<void> sink_owner)
    : env_(env),
      table_(std::move(table)),
      executor_(executor),
      upstreams_(upstreams),
      sink_(sink),
      body_(body),
      sink_owner_(std::move(sink_owner)) {}

GrpcRelayCall::~GrpcRelayCall() = default;

void GrpcRelayCall::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  if (!finished_) CountResponse(0);
  finished_ = true;
  sink_ = nullptr;
  body_ = nullptr;
  sink_owner_.reset();
  if (backend_ != nullptr) backend_->Cancel();
}

void GrpcRelayCall::Start(HttpRequest head) {
  arrival_ = absl::Now();
  request_ = std::move(head);
  const HttpRequest& req = request_;
  // The call's id: the client's x-request-id, or a generated one sent to the backend.
  bool id_generated = false;
  request_id_ = CallRequestId(*env_, req, &id_generated);
  const absl::string_view path = req.target;
  route_ = table_->Find(path);
  if (env_->grpc_metrics != nullptr) {
    series_ = env_->grpc_metrics->SeriesFor(table_, route_);
    series_->Started();
  }
  // As grpc-go answers a method other than POST: HTTP 405 with a gRPC status.
  if (req.method != "POST") {
    TrailersOnly(absl::InternalError(absl::StrCat(
                     "method ", req.method, ": gRPC calls are HTTP/2 POST requests")),
                 405);
    return;
  }
  // `te: trailers` is what gRPC clients send; its absence is tolerated (as grpc-go and
  // Envoy do), and HTTP/2 allows no other value (nghttp2 refuses the stream).
  if (route_ == nullptr) {
    TrailersOnly(absl::UnimplementedError(absl::StrCat("method not found: ", path)));
    return;
  }
  const absl::Time now = arrival_;
  const absl::string_view timeout = req.Header("grpc-timeout");
  if (!timeout.empty()) {
    absl::StatusOr<absl::Duration> d = ParseGrpcTimeout(timeout);
    if (!d.ok()) {
      TrailersOnly(d.status());  // INVALID_ARGUMENT naming the header and the value
      return;
    }
    client_deadline_ = now + *d;
  }
  deadline_ = StartDeadline(*env_, now, client_deadline_);
  // Metadata: what the policy forwards of a gRPC call; "-bin" values arrive in base64 and
  // are handed to BackendCall raw (it encodes them again).
  const metadata::MetadataPolicy& policy = table_->chain().metadata_policy();
  if (absl::Status status = policy.CollectClientMetadata(metadata::Protocol::kGrpc, req.headers,
                                                         nullptr, &metadata_);
      !status.ok()) {
    TrailersOnly(status);
    return;
  }
  for (auto& [key, value] : metadata_) {
    if (!metadata::IsBinaryKey(key)) continue;
    absl::StatusOr<std::string> raw = metadata::DecodeBinaryText(key, value);
    if (!raw.ok()) {
      TrailersOnly(raw.status());
      return;
    }
    value = *std::move(raw);
  }
  if (id_generated) metadata_.emplace_back("x-request-id", request_id_);
  // Compression is the client's and the backend's business: the names go through as they
  // are (the frames too), if they are valid header values.
  for (const char* name : {"grpc-encoding", "grpc-accept-encoding"}) {
    const absl::string_view value = req.Header(name);
    if (!value.empty() && !IsValidMetadataValue(value)) {
      TrailersOnly(absl::InvalidArgumentError(
          absl::StrCat("malformed ", name, " header: not a valid header value")));
      return;
    }
  }
  RunInterceptors(now);
}

// The interceptor chain, the same object as for every other front end; the backend call
// starts when it accepts the call.
void GrpcRelayCall::RunInterceptors(absl::Time now) {
  const HttpRequest& req = request_;
  span_ = tracing::CallSpan::Start(env_->tracer, req.Header("traceparent"),
                                   req.Header("tracestate"), arrival_);
  const InterceptorChain* chain = &table_->chain();
  if (chain->empty()) {
    StartBackend();
    return;
  }
  call_ctx_ = MakeCallContext(FrontEnd::kGrpc, *route_, req, client_deadline_, deadline_, now);
  RunInterceptorChain(*chain, call_ctx_.get(), req.headers, executor_,
                      [self = shared_from_this()](absl::Status status) {
                        self->OnIntercepted(std::move(status));
                      });
}

void GrpcRelayCall::OnIntercepted(absl::Status status) {
  if (cancelled_) return;
  if (!status.ok()) {
    if (env_->grpc_metrics != nullptr) env_->grpc_metrics->Rejected(status);
    reject_headers_ = std::move(call_ctx_->response_headers);
    TrailersOnly(status);
    return;
  }
  StartBackend();
}

void GrpcRelayCall::StartBackend() {
  int http_status = 0;  // a gRPC call answers with its status only
  if (absl::Status s =
          PrepareBackendCall(call_ctx_.get(), *route_, &metadata_, &deadline_, &http_status);
      !s.ok()) {
    TrailersOnly(s);
    return;
  }
  const std::shared_ptr<upstream::Cluster>& cluster = route_->backend->cluster();
  // limits.max_message_bytes, which also bounds the backend's response messages.
  request_scan_.emplace(cluster->options().connection.max_message_size);
  response_scan_.emplace(std::numeric_limits<uint32_t>::max());  // counts (the stream checks)
  upstream::BackendCall::Spec spec;
  spec.path = route_->path;
  spec.deadline = deadline_;
  spec.metadata = std::move(metadata_);
  if (call_ctx_ != nullptr) spec.retry = call_ctx_->retry_policy;
  if (span_ != nullptr) span_->HookAttempts(&spec.on_attempt_start, &spec.on_attempt_end);
  spec.single_response = false;  // messages go to the client as they come
  spec.framed = true;  // frames both ways as they come, compressed ones untouched
  spec.encoding = std::string(request_.Header("grpc-encoding"));
  spec.accept_encoding = std::string(request_.Header("grpc-accept-encoding"));
  upstream::BackendCall::Callbacks cb;
  std::weak_ptr<GrpcRelayCall> weak = weak_from_this();
  cb.on_headers = [weak](upstream::Headers headers) {
    if (auto self = weak.lock()) self->response_headers_ = std::move(headers);
  };
  cb.on_message = [weak](std::string message) {
    if (auto self = weak.lock()) self->OnBackendMessage(std::move(message));
  };
  cb.on_writable = [weak] {
    if (auto self = weak.lock()) {
      self->writing_ = false;
      self->PumpRequest();
    }
  };
  // The call holds itself until its end: on_done keeps it alive.
  cb.on_done = [self = shared_from_this()](const upstream::CallResult& result) {
    self->OnBackendDone(result);
  };
  backend_ = upstream::BackendCall::Start(upstreams_->For(cluster), std::move(spec),
                                          std::move(cb));
  // What of the body is here goes with the headers (the server session starts calls once
  // it has read what arrived with them).
  PumpRequest();
}

// Runs whenever nothing is pending with the backend: after the call started, after each
// write the backend took, after each piece of body. So the client's HTTP/2 window opens
// only as fast as the backend takes the bytes; nothing waits for a whole message.
void GrpcRelayCall::PumpRequest() {
  if (finished_ || backend_done_ || writing_ || writes_done_ || reading_ ||
      !request_error_.ok() || body_ == nullptr) {
    return;
  }
  if (!pending_.empty() && !body_ended_) {
    writing_ = true;
    std::string bytes = std::move(pending_);
    pending_ = std::string();
    backend_->Write(std::move(bytes));
    return;
  }
  if (body_ended_) {
    if (absl::Status complete = request_scan_->CheckComplete(); !complete.ok()) {
      FailRequest(std::move(complete));
      return;
    }
    writes_done_ = true;
    // The last piece, if any, and the end of the request go in the same DATA frame.
    std::string bytes = std::move(pending_);
    pending_ = std::string();
    if (bytes.empty()) {
      backend_->WritesDone();
    } else {
      backend_->WriteLast(std::move(bytes));
    }
    return;
  }
  reading_ = true;
  absl::Status status;
  std::string data;
  bool last = false;
  if (body_->ReadNow(&status, &data, &last)) {
    OnBody(std::move(status), std::move(data), last);
    return;
  }
  if (request_scan_->mid_frame()) ArmStallTimer();
  body_->Read([self = shared_from_this()](absl::Status status, std::string data, bool last) {
    self->OnBody(std::move(status), std::move(data), last);
  });
}

void GrpcRelayCall::ArmStallTimer() {
  if (env_->message_idle_timeout == absl::InfiniteDuration()) return;
  if (!stall_timer_.has_value()) stall_timer_.emplace(executor_);
  stall_timer_->expires_after(absl::ToChronoNanoseconds(env_->message_idle_timeout));
  stall_timer_->async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || !self->reading_ || self->finished_ || self->backend_done_) return;
    self->FailRequest(absl::DeadlineExceededError(absl::StrCat(
        "the client sent part of a request message and then nothing for ",
        absl::FormatDuration(self->env_->message_idle_timeout), " (limits.idle_timeout)")));
  });
}

void GrpcRelayCall::OnBody(absl::Status status, std::string data, bool last) {
  reading_ = false;
  if (stall_timer_.has_value()) stall_timer_->cancel();
  if (finished_ || backend_done_ || !request_error_.ok()) return;
  if (!status.ok()) {
    FailRequest(std::move(status));
    return;
  }
  body_ended_ = last;
  // The prefixes are checked before any byte of the piece goes on: a message over the
  // limit never reaches the backend.
  if (absl::Status scanned = request_scan_->Scan(data); !scanned.ok()) {
    FailRequest(std::move(scanned));
    return;
  }
  pending_ = std::move(data);
  PumpRequest();
}

// A broken request body after the backend call started (earlier messages may have reached
// the backend): the backend call is cancelled and the client gets this status.
void GrpcRelayCall::FailRequest(absl::Status status) {
  request_error_ = std::move(status);
  if (backend_ != nullptr) backend_->Cancel();
}

HeaderList GrpcRelayCall::ResponseHeaders() {
  HeaderList headers;
  headers.reserve(response_headers_.size() + 2);
  headers.emplace_back("content-type", kGrpcContentType);
  // The backend's compression of its messages, passed through with them.
  for (const auto& [key, value] : response_headers_) {
    if ((key == "grpc-encoding" || key == "grpc-accept-encoding") &&
        IsValidMetadataValue(value)) {
      headers.emplace_back(key, value);
    }
  }
  AppendClientMetadata(table_->chain().metadata_policy(), response_headers_, &headers);
  if (!request_id_.empty()) {
    headers.erase(std::remove_if(headers.begin(), headers.end(),
                                 [](const auto& h) { return h.first == "x-request-id"; }),
                  headers.end());
    headers.emplace_back("x-request-id", request_id_);
  }
  return headers;
}

void GrpcRelayCall::SendHeaders() {
  headers_sent_ = true;
  if (env_->access_log != nullptr) first_byte_ = absl::Now();
  sink_->StartStream(200, ResponseHeaders());
}

void GrpcRelayCall::OnBackendMessage(std::string message) {
  if (finished_ || sink_ == nullptr) return;
  if (!headers_sent_) SendHeaders();
  // `message` is the next bytes of the backend's frames, passed on as they are.
  (void)response_scan_->Scan(message);  // counts the message bytes (BYTES_OUT)
  if (sink_->TryWrite(message)) {
    // Taken below the stream's buffer bound: the next bytes (or the trailers) may follow
    // on this turn of the loop, in the same write to the client.
    if (backend_ != nullptr && !backend_done_) backend_->RequestNext();
    return;
  }
  sink_->Write(std::move(message), /*last=*/false,
               [self = shared_from_this()](bool ok) { self->OnWritten(ok); });
}

void GrpcRelayCall::OnWritten(bool ok) {
  if (!ok) {
    Cancel();
    return;
  }
  // Back-pressure: the next message is read only once the client took this one.
  if (backend_ != nullptr && !backend_done_) backend_->RequestNext();
}

void GrpcRelayCall::OnBackendDone(const upstream::CallResult& result) {
  backend_done_ = true;
  status_ = request_error_.ok() ? route_->backend->UpstreamClientStatus(result, route_->path)
                                : request_error_;
  if (request_error_.ok()) status_details_ = result.details_bin;
  response_trailers_ = result.trailers;
  if (!request_error_.ok()) gateway_code_ = request_error_.raw_code();
  Finish();
  body_ = nullptr;
  backend_.reset();
}

void GrpcRelayCall::Finish() {
  if (finished_ || sink_ == nullptr) return;
  if (!headers_sent_) {
    // No response message: a trailers-only response with the backend's metadata.
    HeaderList headers = ResponseHeaders();
    AppendClientMetadata(table_->chain().metadata_policy(), response_trailers_, &headers);
    AppendStatus(status_, status_details_, &headers);
    finished_ = true;
    CallSink* sink = sink_;
    std::shared_ptr<void> owner = std::move(sink_owner_);
    sink_ = nullptr;
    CountResponse(200);
    sink->RespondTrailersOnly(200, std::move(headers));
    return;
  }
  HeaderList trailers;
  AppendStatus(status_, status_details_, &trailers);
  AppendClientMetadata(table_->chain().metadata_policy(), response_trailers_, &trailers);
  finished_ = true;
  CallSink* sink = sink_;
  std::shared_ptr<void> owner = std::move(sink_owner_);
  sink_ = nullptr;
  CountResponse(200);
  sink->Finish(std::move(trailers));
}

void GrpcRelayCall::TrailersOnly(const absl::Status& status, int http_status) {
  if (finished_ || sink_ == nullptr) return;
  gateway_code_ = status.raw_code();
  HeaderList headers = ResponseHeaders();
  AppendStatus(status, "", &headers);
  // What a refusing interceptor adds (www-authenticate, retry-after, ...), as metadata.
  for (auto& [key, value] : reject_headers_) {
    if (metadata::CheckEntry(key, value).ok() && !metadata::IsProtocolHeader(key)) {
      headers.emplace_back(std::move(key), std::move(value));
    }
  }
  reject_headers_.clear();
  finished_ = true;
  body_ = nullptr;
  CallSink* sink = sink_;
  std::shared_ptr<void> owner = std::move(sink_owner_);
  sink_ = nullptr;
  CountResponse(http_status);
  sink->RespondTrailersOnly(http_status, std::move(headers));
}

// The gRPC status the client got: the gateway's own, the backend's, or CANCELLED for a
// client that went away.
int GrpcRelayCall::ClientCode(int http_status) const {
  if (gateway_code_ >= 0) return gateway_code_;
  if (backend_done_) return static_cast<int>(status_.code());
  return http_status == 0 ? static_cast<int>(absl::StatusCode::kCancelled) : -1;
}

void GrpcRelayCall::CountResponse(int status) {
  if (span_ != nullptr) {  // the call's span ends with its response (once)
    span_->End(absl::Now(), {"grpc", request_.method, request_.target,
                             route_ != nullptr ? absl::string_view(route_->path) : "",
                             request_.Header("host"), request_.peer, status, ClientCode(status),
                             backend_done_ ? status_.message() : ""});
  }
  if (counted_ || (series_ == nullptr && env_->access_log == nullptr)) return;
  counted_ = true;
  const absl::Time now = absl::Now();
  if (series_ != nullptr) series_->Finished(ClientCode(status), now - arrival_);
  if (env_->access_log != nullptr) LogAccess(status, now);
}

// The call's access log line (docs/config.md, "access_log"): front end "grpc".
void GrpcRelayCall::LogAccess(int status, absl::Time now) {
  LogCall(env_->access_log, request_,
          {"grpc", status,
           gateway_code_ >= 0 ? gateway_code_
           : backend_done_    ? static_cast<int>(status_.code())
                              : -1,
           arrival_, now, first_byte_, route_,
           request_scan_.has_value() ? request_scan_->message_bytes() : 0,
           response_scan_.has_value() ? response_scan_->message_bytes() : 0, backend_.get(),
           call_ctx_.get(), request_id_});
}

}  // namespace gateway::http
