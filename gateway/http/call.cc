#include "gateway/http/call.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "gateway/http/readiness.h"
#include "gateway/http/request_checks.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/openapi/openapi_endpoint.h"

namespace gateway::http {

namespace asio = boost::asio;

namespace {
constexpr absl::string_view kJson = "application/json";
}  // namespace

HttpCall::~HttpCall() = default;

void HttpCall::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  if (sink_ != nullptr) CountResponse(0);
  sink_ = nullptr;
  sink_owner_.reset();
  if (backend_ != nullptr) backend_->Cancel();
}

void HttpCall::Respond(int status, HeaderList headers, std::string body) {
  if (sink_ == nullptr) return;
  CallSink* sink = sink_;
  std::shared_ptr<void> owner = std::move(sink_owner_);
  sink_ = nullptr;
  for (auto& header : cors_headers_) headers.push_back(std::move(header));
  AddRequestIdHeader(&headers);
  bytes_out_ += body.size();
  CountResponse(status);
  sink->Respond(status, std::move(headers), std::move(body));
}

void HttpCall::CountResponse(int status) {
  if (span_ != nullptr) {  // the call's span ends with its response (once)
    const absl::string_view target = request_.target;
    span_->End(absl::Now(), {grpc_web_ ? "grpc-web" : "http", request_.method,
                             target.substr(0, target.find('?')),
                             route_ != nullptr ? absl::string_view(route_->path) : "",
                             request_.Header("host"), request_.peer, status,
                             gateway_code_ >= 0 ? gateway_code_
                             : backend_done_    ? static_cast<int>(status_.code())
                                                : -1,
                             backend_done_ ? status_.message() : ""});
  }
  if (counted_ || (env_->metrics == nullptr && env_->access_log == nullptr)) return;
  counted_ = true;
  const absl::Time now = absl::Now();
  if (env_->metrics != nullptr) {
    env_->metrics->SeriesFor(table_, route_)->Responded(status, now - arrival_);
  }
  if (env_->access_log != nullptr) LogAccess(status, now);
}

std::string CallRequestId(const CallEnv& env, const HttpRequest& request, bool* generated) {
  *generated = false;
  const absl::string_view sent = request.Header("x-request-id");
  if (!sent.empty()) return IsValidMetadataValue(sent) ? std::string(sent) : std::string();
  if (!env.generate_request_id) return std::string();
  *generated = true;
  return access_log::NewRequestId();
}

void HttpCall::AssignRequestId() {
  request_id_ = CallRequestId(*env_, request_, &request_id_generated_);
}

// The call's id, in place of any the backend sent (exposed metadata, gRPC-Web).
void HttpCall::AddRequestIdHeader(HeaderList* headers) {
  if (request_id_.empty()) return;
  headers->erase(std::remove_if(headers->begin(), headers->end(),
                                [](const auto& h) { return h.first == "x-request-id"; }),
                 headers->end());
  headers->emplace_back("x-request-id", request_id_);
}

// A response whose body follows in Write()s is starting.
void HttpCall::StreamStarted() {
  if (env_->access_log != nullptr) first_byte_ = absl::Now();
}

// The call's access log line (docs/config.md, "access_log"). Runs once, when the response
// is handed to the sink (or the client went away).
void HttpCall::LogAccess(int status, absl::Time now) {
  LogCall(env_->access_log, request_,
          {grpc_web_ ? "grpc-web" : "http", status,
           gateway_code_ >= 0 ? gateway_code_
           : backend_done_    ? static_cast<int>(status_.code())
                              : -1,
           arrival_, now, first_byte_, route_, bytes_in_, bytes_out_, backend_.get(),
           call_ctx_.get(), std::move(request_id_)});
}

void LogCall(access_log::AccessLog* log, const HttpRequest& request, AccessLogEntry entry) {
  access_log::Record r;
  r.status = entry.status;
  r.grpc_status = entry.grpc_status;
  if (!log->Sample(r.IsError())) return;
  r.time = entry.arrival;
  r.front_end = entry.front_end;
  r.protocol = request.protocol;
  r.trace_id = std::string(access_log::TraceIdFromTraceparent(request.Header("traceparent")));
  r.user_agent = std::string(request.Header("user-agent"));
  r.method = request.method;
  // Copies: an asynchronous interceptor may still hold views of the request (Cancel). The
  // query string stays out: it may carry credentials (and a Connect GET's message).
  const absl::string_view target = request.target;
  r.path = std::string(target.substr(0, target.find('?')));
  if (entry.route != nullptr) r.grpc_method = entry.route->path;
  r.bytes_in = entry.bytes_in;
  r.bytes_out = entry.bytes_out;
  r.duration = entry.now - entry.arrival;
  if (entry.first_byte != absl::InfinitePast()) {
    r.ttfb = entry.first_byte - entry.arrival;
  } else if (entry.status != 0) {
    r.ttfb = r.duration;  // the whole response went at once
  }
  if (entry.backend != nullptr) {
    r.upstream = entry.backend->endpoint();
    r.attempts = entry.backend->attempts();
  }
  if (entry.call_ctx != nullptr) r.caller_id = entry.call_ctx->caller_id;
  r.request_id = std::move(entry.request_id);
  r.peer = request.peer;
  log->Push(std::move(r));
}

void HttpCall::SendError(int http_status, const absl::Status& status) {
  gateway_code_ = status.raw_code();
  HeaderList headers;
  headers.emplace_back("content-type", std::string(kJson));
  for (auto& [key, value] : reject_headers_) {
    if (IsValidMetadataValue(value)) headers.emplace_back(std::move(key), std::move(value));
  }
  reject_headers_.clear();
  Respond(http_status, std::move(headers), table_->transcoder().ErrorBody(status));
}

void HttpCall::Reject(int http_status, const absl::Status& status) {
  if (grpc_web_) {
    GrpcWebTrailersOnly(status);
  } else {
    SendError(http_status, status);
  }
}

absl::StatusOr<absl::Time> ClientDeadline(const CallEnv& env, const HttpRequest& request,
                                          absl::Time now) {
  absl::Time deadline = absl::InfiniteFuture();
  const absl::string_view timeout = request.Header("grpc-timeout");
  if (!timeout.empty()) {
    absl::StatusOr<absl::Duration> d = ParseGrpcTimeout(timeout);
    if (!d.ok()) return d.status();
    deadline = now + *d;
  }
  if (!env.timeout_header.empty()) {
    const absl::string_view value = request.Header(env.timeout_header);
    if (!value.empty()) {
      absl::StatusOr<absl::Duration> d = ParseHttpTimeout(env.timeout_header, value);
      if (!d.ok()) return d.status();
      deadline = std::min(deadline, now + *d);
    }
  }
  return deadline;
}

absl::Time StartDeadline(const CallEnv& env, absl::Time now, absl::Time client_deadline) {
  if (client_deadline == absl::InfiniteFuture() &&
      env.default_deadline != absl::InfiniteDuration()) {
    return now + env.default_deadline;
  }
  return client_deadline;
}

absl::Status HttpCall::SetDeadline(absl::Time now) {
  absl::StatusOr<absl::Time> client = ClientDeadline(*env_, request_, now);
  if (!client.ok()) return client.status();
  client_deadline_ = *client;
  deadline_ = StartDeadline(*env_, now, client_deadline_);
  return absl::OkStatus();
}

void HttpCall::Start(HttpRequest request) {
  arrival_ = absl::Now();
  bytes_in_ = request.body.size();
  request_ = std::move(request);
  Dispatch();
}

bool HttpCall::StartStreaming(HttpRequest* head, BodyReader* body) {
  arrival_ = absl::Now();
  if (head->method == "GET" || head->method == "HEAD" || head->method == "OPTIONS") return false;
  if (grpc_web::ParseContentType(head->Header("content-type")).has_value()) return false;
  absl::StatusOr<RequestTarget> target =
      CheckRequestTarget(head->target, env_->allow_encoded_slashes);
  if (!target.ok()) return false;
  absl::StatusOr<transcoder::RouteMatch> match =
      table_->transcoder().Match(head->method, target->path);
  if (!match.ok()) return false;
  const Route* route = table_->ForPlan(match->plan);
  if (route == nullptr || route->kind != CallKind::kClientStreaming) return false;
  body_ = body;
  request_ = std::move(*head);
  Dispatch();
  return true;
}

namespace {

// "application/grpc", alone or followed by "+subtype" or parameters (not gRPC-Web).
bool IsNativeGrpc(absl::string_view content_type) {
  constexpr absl::string_view kGrpc = "application/grpc";
  if (content_type.size() < kGrpc.size() ||
      !absl::EqualsIgnoreCase(content_type.substr(0, kGrpc.size()), kGrpc)) {
    return false;
  }
  return content_type.size() == kGrpc.size() || content_type[kGrpc.size()] == '+' ||
         content_type[kGrpc.size()] == ';';
}

}  // namespace

void HttpCall::Dispatch() {
  const HttpRequest& req = request_;
  AssignRequestId();
  absl::StatusOr<RequestTarget> target =
      CheckRequestTarget(req.target, env_->allow_encoded_slashes);
  if (!target.ok()) {
    SendError(400, target.status());
    return;
  }
  // gRPC-Web: POST /pkg.Service/Method with an application/grpc-web* body.
  std::optional<grpc_web::GrpcWebType> web;
  if (req.method == "POST") web = grpc_web::ParseContentType(req.Header("content-type"));
  const absl::string_view origin = req.Header("origin");
  if (env_->cors != nullptr && !origin.empty()) {
    const absl::string_view preflight_method = req.Header("access-control-request-method");
    if (req.method == "OPTIONS" && !preflight_method.empty()) {
      HeaderList headers;
      // The preflight of a gRPC method path may be for a gRPC-Web call.
      const bool grpc_path = table_->Find(target->path) != nullptr;
      if (absl::Status refused = env_->cors->Preflight(
              origin, preflight_method, req.Header("access-control-request-headers"),
              &headers, grpc_path);
          !refused.ok()) {
        SendError(403, refused);  // the message says what was refused
        return;
      }
      Respond(204, std::move(headers), "");
      return;
    }
    if (env_->cors->AllowsOrigin(origin)) {
      env_->cors->AddResponseHeaders(origin, &cors_headers_, web.has_value());
    }
  }
  if (web.has_value()) {
    DispatchGrpcWeb(target->path, target->query, *web);
    return;
  }
  // Native gRPC arrives here only over HTTP/1.1 (the HTTP/2 session relays it before a
  // HttpCall exists): gRPC needs HTTP/2's trailers.
  if (IsNativeGrpc(req.Header("content-type"))) {
    SendError(415, absl::InvalidArgumentError(
                       "gRPC calls need HTTP/2 (prior knowledge on a plaintext port, ALPN h2 "
                       "with TLS); this request came over HTTP/1.1"));
    return;
  }
  if (req.method == "GET" || req.method == "HEAD") {
    if (target->path == "/healthz") {
      Respond(200, {{"content-type", "text/plain"}}, "ok\n");
      return;
    }
    if (target->path == "/readyz") {
      Ready();
      return;
    }
    if (env_->openapi != nullptr) {
      if (std::optional<openapi::OpenApiEndpoint::Response> doc =
              env_->openapi->Serve(target->path, table_)) {
        HeaderList headers = {{"content-type", doc->content_type}};
        if (doc->retry_after_seconds > 0) {
          headers.push_back({"retry-after", absl::StrCat(doc->retry_after_seconds)});
        }
        Respond(doc->status, std::move(headers), std::move(doc->body));
        return;
      }
    }
  }
  const transcoder::Transcoder& tc = table_->transcoder();
  absl::StatusOr<transcoder::RouteMatch> match = tc.Match(req.method, target->path);
  if (!match.ok()) {
    SendError(transcoder::HttpStatusFromCode(match.status().code()), match.status());
    return;
  }
  match_ = *std::move(match);
  route_ = table_->ForPlan(match_.plan);
  if (route_ == nullptr || route_->kind == CallKind::kBidiStreaming) {
    SendError(501, absl::UnimplementedError(
                       absl::StrCat("bidi streaming method ", match_.plan->method->full_name(),
                                    " cannot be called over HTTP")));
    return;
  }
  const absl::Time now = absl::Now();
  if (absl::Status status = SetDeadline(now); !status.ok()) {
    SendError(400, status);
    return;
  }
  // Metadata (the listed headers only; see gateway/metadata/metadata_policy.h).
  if (absl::Status status = table_->chain().metadata_policy().CollectClientMetadata(
          metadata::Protocol::kRest, req.headers, &env_->forwarded, &metadata_);
      !status.ok()) {
    SendError(400, status);
    return;
  }
  if (request_id_generated_) metadata_.emplace_back("x-request-id", request_id_);
  // The request message(s).
  const absl::string_view content_type = req.Header("content-type");
  if (route_->kind == CallKind::kClientStreaming) {
    absl::Status status = SplitClientStream(target->query, content_type);
    if (!status.ok()) {
      SendError(transcoder::HttpStatusFromCode(status.code()), status);
      return;
    }
  } else {
    absl::StatusOr<std::string> bytes =
        tc.TranslateRequest(match_, target->query, req.body, content_type);
    if (!bytes.ok()) {
      SendError(transcoder::HttpStatusFromCode(bytes.status().code()), bytes.status());
      return;
    }
    messages_.push_back(*std::move(bytes));
  }
  stream_format_ = tc.StreamFormatFor(req.Header("accept"));
  RunInterceptors(now, target->query);
}

// The interceptor chain, the same for REST and gRPC-Web calls; the backend call starts
// when it accepts the call (OnIntercepted).
void HttpCall::RunInterceptors(absl::Time now, absl::string_view query) {
  const HttpRequest& req = request_;
  span_ = tracing::CallSpan::Start(env_->tracer, req.Header("traceparent"),
                                   req.Header("tracestate"), arrival_);
  const InterceptorChain* chain = &table_->chain();
  if (chain->empty()) {
    StartBackend();
    return;
  }
  call_ctx_ = MakeCallContext(FrontEnd::kHttp, *route_, req, client_deadline_, deadline_, now,
                              query);
  RunInterceptorChain(*chain, call_ctx_.get(), req.headers, executor_,
                      [self = shared_from_this()](absl::Status status) {
                        self->OnIntercepted(std::move(status));
                      });
}

std::unique_ptr<CallContext> MakeCallContext(FrontEnd front_end, const Route& route,
                                             const HttpRequest& request,
                                             absl::Time client_deadline, absl::Time deadline,
                                             absl::Time now, absl::string_view query) {
  std::unique_ptr<CallContext> ctx = CallContext::Make(
      {front_end, route.method, &route.rules, route.path, request.peer, request.peer_identity,
       client_deadline, now, request.headers.size()});
  ctx->query = query;
  // The listener's default deadline is not the client's, but it bounds the call.
  ctx->backend_deadline = deadline;
  return ctx;
}

absl::Status PrepareBackendCall(const CallContext* ctx, const Route& route,
                                upstream::Headers* metadata, absl::Time* deadline,
                                int* http_status) {
  if (ctx != nullptr) {
    *deadline = ctx->backend_deadline;
    if (absl::Status edited =
            metadata::MetadataPolicy::ApplyEdits(ctx->backend_metadata, metadata);
        !edited.ok()) {
      *http_status = 500;
      return edited;
    }
  }
  if (absl::Status size =
          metadata::CheckMetadataSize(*metadata, route.backend->max_metadata_bytes());
      !size.ok()) {
    *http_status = 431;
    return size;
  }
  if (*deadline != absl::InfiniteFuture() && *deadline <= absl::Now()) {
    *http_status = 504;
    return absl::DeadlineExceededError("deadline exceeded before the call started");
  }
  return absl::OkStatus();
}

void RunInterceptorChain(const InterceptorChain& chain, CallContext* ctx,
                         const HeaderList& headers,
                         boost::asio::io_context::executor_type executor,
                         std::function<void(absl::Status)> done) {
  for (const auto& [name, value] : headers) ctx->request_metadata.emplace_back(name, value);
  chain.Run(ctx, [executor, done = std::move(done)](CallContext*, absl::Status status) mutable {
    asio::dispatch(executor, [done = std::move(done), status = std::move(status)]() mutable {
      done(std::move(status));
    });
  });
}

void HttpCall::OnIntercepted(absl::Status status) {
  if (cancelled_) return;
  if (!status.ok()) {
    if (env_->metrics != nullptr) env_->metrics->Rejected(status);
    reject_headers_ = std::move(call_ctx_->response_headers);
    Reject(transcoder::HttpStatusFromCode(status.code()), status);
    return;
  }
  StartBackend();
}

absl::Status HttpCall::SplitClientStream(absl::string_view query,
                                         absl::string_view content_type) {
  const transcoder::Transcoder& tc = table_->transcoder();
  const std::string type = absl::AsciiStrToLower(content_type);
  const bool ndjson = absl::StrContains(type, "ndjson") || absl::StrContains(type, "jsonl");
  absl::StatusOr<std::string> common = tc.request_translator().TranslatePathAndQuery(
      match_, query, tc.options().request);
  if (!common.ok()) return common.status();
  if (body_ != nullptr) {  // the body is still arriving: PumpBody() reads it
    stream_reader_.emplace(
        ndjson ? transcoder::StreamFormat::kNdjson : transcoder::StreamFormat::kJsonArray,
        env_->max_body_bytes);
    stream_common_ = *std::move(common);
    return absl::OkStatus();
  }
  transcoder::JsonStreamReader reader(
      ndjson ? transcoder::StreamFormat::kNdjson : transcoder::StreamFormat::kJsonArray,
      env_->max_body_bytes);
  reader.Append(request_.body);
  bool finished = false;
  while (true) {
    absl::StatusOr<std::optional<std::string>> next = reader.Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) {
      if (finished) break;
      absl::Status status = reader.Finish();
      if (!status.ok()) return status;
      finished = true;
      continue;
    }
    absl::StatusOr<std::string> message = tc.request_translator().TranslateStreamMessage(
        *match_.plan, **next, tc.options().request);
    if (!message.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("stream message ", messages_.size(), ": ", message.status().message()));
    }
    message->append(*common);
    messages_.push_back(*std::move(message));
  }
  return absl::OkStatus();
}

void HttpCall::StartBackend() {
  int http_status = 0;
  if (absl::Status s =
          PrepareBackendCall(call_ctx_.get(), *route_, &metadata_, &deadline_, &http_status);
      !s.ok()) {
    Reject(http_status, s);
    return;
  }
  upstream::BackendCall::Spec spec;
  spec.path = route_->path;
  spec.deadline = deadline_;
  spec.metadata = std::move(metadata_);
  if (call_ctx_ != nullptr) spec.retry = call_ctx_->retry_policy;
  if (span_ != nullptr) span_->HookAttempts(&spec.on_attempt_start, &spec.on_attempt_end);
  // REST and gRPC-Web answer a unary or client-streaming call only once it ended.
  spec.single_response = route_->kind == CallKind::kUnary ||
                         route_->kind == CallKind::kClientStreaming;
  upstream::BackendCall::Callbacks cb;
  std::weak_ptr<HttpCall> weak = weak_from_this();
  cb.on_headers = [weak](upstream::Headers headers) {
    if (auto self = weak.lock()) self->response_headers_ = std::move(headers);
  };
  cb.on_message = [weak](std::string message) {
    if (auto self = weak.lock()) self->OnBackendMessage(std::move(message));
  };
  cb.on_writable = [weak] {
    if (auto self = weak.lock()) {
      if (!self->cancelled_ && !self->backend_done_) self->WriteNextMessage();
    }
  };
  // The call holds itself until its end: on_done keeps the HttpCall alive.
  cb.on_done = [self = shared_from_this()](const upstream::CallResult& result) {
    self->OnBackendFinished(result);
  };
  if (route_->kind == CallKind::kServerStreaming) framer_.emplace(stream_format_);
  backend_ = upstream::BackendCall::Start(upstreams_->For(route_->backend->cluster()),
                                          std::move(spec), std::move(cb));
  if (route_->kind == CallKind::kClientStreaming) {
    // Not inline: this may run inside StartStreaming(), before the connection is ready to
    // serve the body reads that the first message may need.
    asio::post(executor_, [self = shared_from_this()] {
      if (!self->cancelled_ && !self->backend_done_) self->WriteNextMessage();
    });
    return;
  }
  backend_->WriteLast(std::move(messages_[0]));
}

// The next request message of a client stream (each after the backend took the one
// before: BackendCall's on_writable), or the end of the stream.
void HttpCall::WriteNextMessage() {
  if (body_ != nullptr) {
    PumpBody();
    return;
  }
  if (next_message_ >= messages_.size()) {
    backend_->WritesDone();
    return;
  }
  backend_->Write(std::move(messages_[next_message_]));
  ++next_message_;
}

void HttpCall::OnBackendMessage(std::string message) {
  if (route_->kind == CallKind::kServerStreaming) {
    SendStreamMessage(std::move(message));
    return;
  }
  if (has_response_) {
    // gRPC allows one response message here: a second one is the backend's error.
    stream_error_ = absl::InternalError(
        absl::StrCat("the backend sent more than one response message to ",
                     CallKindName(route_->kind), " method ", route_->path));
    stream_error_http_ = 502;
    backend_->Cancel();
    return;
  }
  has_response_ = true;
  response_ = std::move(message);
  backend_->RequestNext();  // to see the trailers (and a second message, if any)
}

void HttpCall::OnBackendFinished(const upstream::CallResult& result) {
  backend_done_ = true;
  status_ = status_override_.ok()
                ? route_->backend->UpstreamClientStatus(result, route_->path)
                : status_override_;
  status_details_ = result.details_bin;
  response_trailers_ = result.trailers;
  if (!status_.ok()) has_response_ = false;
  OnBackendDone();
  backend_.reset();
}

// Sends the next complete message of a body that is still arriving, or asks for more of the
// body, or ends the stream. Runs only while no backend write is pending (after the call
// started, after each write, after each piece of body), so the socket or the HTTP/2 window
// is read only as fast as the backend takes the messages.
void HttpCall::PumpBody() {
  if (cancelled_ || backend_done_ || !stream_error_.ok()) return;
  const transcoder::Transcoder& tc = table_->transcoder();
  while (true) {
    absl::StatusOr<std::optional<std::string>> next = stream_reader_->Next();
    if (!next.ok()) {
      FailStream(next.status());
      return;
    }
    if (next->has_value()) {
      absl::StatusOr<std::string> message = tc.request_translator().TranslateStreamMessage(
          *match_.plan, **next, tc.options().request);
      if (!message.ok()) {
        FailStream(absl::InvalidArgumentError(absl::StrCat(
            "stream message ", messages_sent_, ": ", message.status().message())));
        return;
      }
      message->append(stream_common_);
      ++messages_sent_;
      backend_->Write(*std::move(message));
      return;
    }
    if (!body_done_) {
      if (!body_reading_) {
        body_reading_ = true;
        body_->Read([self = shared_from_this()](absl::Status status, std::string data,
                                                bool last) {
          self->OnBody(std::move(status), std::move(data), last);
        });
      }
      return;
    }
    if (stream_finished_) {
      backend_->WritesDone();
      return;
    }
    absl::Status status = stream_reader_->Finish();
    if (!status.ok()) {
      FailStream(status);
      return;
    }
    stream_finished_ = true;
  }
}

void HttpCall::OnBody(absl::Status status, std::string data, bool last) {
  body_reading_ = false;
  if (cancelled_ || backend_done_ || !stream_error_.ok()) return;
  if (!status.ok()) {
    // The connection's verdict on the body: too large (413) or malformed (400).
    stream_error_http_ = status.code() == absl::StatusCode::kResourceExhausted ? 413 : 400;
    FailStream(std::move(status));
    return;
  }
  bytes_in_ += data.size();
  stream_reader_->Append(data);
  body_done_ = last;
  PumpBody();
}

// A broken body after the backend call started (earlier messages may have reached the
// backend): the backend call is cancelled, and the client gets the error once it ended.
void HttpCall::FailStream(absl::Status status) {
  stream_error_ = std::move(status);
  backend_->Cancel();
}

void HttpCall::OnBackendDone() {
  body_ = nullptr;  // no more body reads: the sink (and its reader) may go away
  if (cancelled_ || sink_ == nullptr) return;
  if (!stream_error_.ok()) {
    SendError(stream_error_http_ != 0 ? stream_error_http_
                                      : transcoder::HttpStatusFromCode(stream_error_.code()),
              stream_error_);
    return;
  }
  if (grpc_web_) {
    GrpcWebFinish();
    return;
  }
  const transcoder::Transcoder& tc = table_->transcoder();
  if (route_->kind == CallKind::kServerStreaming && headers_sent_) {
    std::string tail = status_.ok() ? framer_->End() : framer_->Error(BackendErrorBody());
    CallSink* sink = sink_;
    std::shared_ptr<void> owner = std::move(sink_owner_);
    sink_ = nullptr;
    bytes_out_ += tail.size();
    CountResponse(200);
    sink->Write(std::move(tail), /*last=*/true, [](bool) {});
    return;
  }
  if (!status_.ok()) {
    HeaderList headers;
    headers.emplace_back("content-type", std::string(kJson));
    AddExposedMetadata(&headers);
    Respond(transcoder::HttpStatusFromCode(status_.code()), std::move(headers),
            BackendErrorBody());
    return;
  }
  if (route_->kind == CallKind::kServerStreaming) {  // a stream without messages
    HeaderList headers;
    headers.emplace_back("content-type",
                         std::string(transcoder::StreamContentType(stream_format_)));
    AddExposedMetadata(&headers);
    Respond(200, std::move(headers), framer_->End());
    return;
  }
  if (!has_response_) {
    SendError(500, absl::InternalError("the backend sent no response message"));
    return;
  }
  absl::StatusOr<transcoder::HttpResponseBody> out =
      tc.TranslateResponse(*match_.plan, response_);
  if (!out.ok()) {
    SendError(500, absl::InternalError(
                       absl::StrCat("bad response from the backend: ", out.status().message())));
    return;
  }
  HeaderList headers;
  if (!out->content_type.empty()) headers.emplace_back("content-type", out->content_type);
  AddExposedMetadata(&headers);
  Respond(200, std::move(headers), std::move(out->body));
}

std::string HttpCall::BackendErrorBody() {
  return table_->transcoder().ErrorBody(status_.code(), status_.message(), status_details_);
}

void HttpCall::AddExposedMetadata(HeaderList* headers) {
  if (env_->exposed.empty()) return;
  auto add = [&](const upstream::Headers& md) {
    for (const auto& [key, value] : md) {
      if (env_->exposed.contains(key) && IsValidMetadataValue(value)) {
        headers->emplace_back(key, value);
      }
    }
  };
  add(response_headers_);
  if (backend_done_) add(response_trailers_);
}

void HttpCall::SendStreamMessage(std::string message) {
  if (cancelled_ || sink_ == nullptr) return;
  if (grpc_web_) {
    GrpcWebSendMessage(message);
    return;
  }
  absl::StatusOr<transcoder::HttpResponseBody> out =
      table_->transcoder().TranslateResponse(*match_.plan, message);
  if (!out.ok()) {
    // The call ends with this status (in the stream's own format when it has started).
    status_override_ = absl::InternalError(
        absl::StrCat("bad response from the backend: ", out.status().message()));
    backend_->Cancel();
    return;
  }
  std::string chunk = match_.plan->response_is_http_body ? std::move(out->body)
                                                         : framer_->Message(out->body);
  if (!headers_sent_) {
    headers_sent_ = true;
    HeaderList headers;
    const std::string type = match_.plan->response_is_http_body
                                 ? out->content_type
                                 : std::string(transcoder::StreamContentType(stream_format_));
    if (!type.empty()) headers.emplace_back("content-type", type);
    AddExposedMetadata(&headers);
    for (auto& header : cors_headers_) headers.push_back(std::move(header));
    AddRequestIdHeader(&headers);
    StreamStarted();
    sink_->StartStream(200, std::move(headers));
  }
  bytes_out_ += chunk.size();
  sink_->Write(std::move(chunk), /*last=*/false,
               [self = shared_from_this()](bool ok) { self->OnWritten(ok); });
}

void HttpCall::OnWritten(bool ok) {
  if (!ok) {
    Cancel();
    return;
  }
  // Back-pressure: the next message is read only once the client took this one.
  if (backend_ != nullptr) backend_->RequestNext();
}

void HttpCall::Ready() {
  Readiness report = CheckReadiness(*table_, env_->readiness);
  Respond(report.ready ? 200 : 503, {{"content-type", "text/plain"}}, std::move(report.text));
}

}  // namespace gateway::http
