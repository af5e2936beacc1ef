#include "gateway/http/connect_call.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "boost/asio/post.hpp"
#include "gateway/http/gzip.h"
#include "gateway/http/request_checks.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/upstream.h"
#include "gateway/upstream/cluster.h"
#include "google/protobuf/descriptor.pb.h"
#include "transcoder/route_set.h"

namespace gateway::http {

namespace asio = boost::asio;

namespace {

absl::string_view PathOf(absl::string_view target) {
  return target.substr(0, target.find('?'));
}

absl::string_view QueryOf(absl::string_view target) {
  const size_t q = target.find('?');
  return q == absl::string_view::npos ? absl::string_view() : target.substr(q + 1);
}

// Responses smaller than this are not worth compressing.
constexpr size_t kCompressMinBytes = 1024;

// Whether an accept-encoding list ("gzip, br", "gzip;q=1.0") names gzip.
bool AcceptsGzip(absl::string_view list) {
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item.substr(0, item.find(';')));
    if (absl::EqualsIgnoreCase(item, "gzip")) return true;
  }
  return false;
}

// The protocol's own headers: never metadata.
bool IsConnectHeader(absl::string_view key) { return absl::StartsWith(key, "connect-"); }

// Backend metadata the policy passes back, as (name, value) with binary values in base64.
void AppendClientMetadata(const metadata::MetadataPolicy& policy, const upstream::Headers& md,
                          absl::string_view prefix, HeaderList* out) {
  for (const auto& [key, value] : md) {
    if (!metadata::IsBinaryKey(key)) {
      if (policy.ForwardsToClient(key, value)) out->emplace_back(absl::StrCat(prefix, key), value);
      continue;
    }
    absl::StatusOr<std::string> raw = metadata::DecodeBinaryText(key, value);
    if (raw.ok() && policy.ForwardsToClient(key, *raw)) {
      out->emplace_back(absl::StrCat(prefix, key), absl::Base64Escape(*raw));
    }
  }
}

}  // namespace

bool IsConnectStreaming(absl::string_view content_type) {
  std::optional<connect::ContentType> type = connect::ParseContentType(content_type);
  return type.has_value() && type->streaming;
}

bool IsConnectRequest(const RouteTable& table, const HttpRequest& request) {
  std::optional<connect::ContentType> type =
      connect::ParseContentType(request.Header("content-type"));
  if (type.has_value() && type->streaming) return true;
  const absl::string_view path = PathOf(request.target);
  if (request.method == "POST") {
    if (!type.has_value()) return false;
    if (type->codec == connect::Codec::kJson &&
        request.Header("connect-protocol-version").empty()) {
      return false;
    }
    return table.Find(path) != nullptr;
  }
  if (request.method == "GET") {
    const absl::string_view query = QueryOf(request.target);
    return (absl::StartsWith(query, "connect=v1") || absl::StrContains(query, "&connect=v1")) &&
           table.Find(path) != nullptr;
  }
  return false;
}

ConnectCall::ConnectCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
                         asio::io_context::executor_type executor,
                         upstream::WorkerUpstreams* upstreams, CallSink* sink, BodyReader* body,
                         std::shared_ptr<void> sink_owner)
    : env_(env),
      table_(std::move(table)),
      executor_(executor),
      upstreams_(upstreams),
      sink_(sink),
      body_(body),
      sink_owner_(std::move(sink_owner)) {}

ConnectCall::~ConnectCall() = default;

void ConnectCall::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  if (!finished_) CountResponse(0);
  finished_ = true;
  sink_ = nullptr;
  body_ = nullptr;
  sink_owner_.reset();
  if (backend_ != nullptr) backend_->Cancel();
}

void ConnectCall::Start(HttpRequest request) {
  arrival_ = absl::Now();
  request_ = std::move(request);
  const HttpRequest& req = request_;
  bool id_generated = false;
  request_id_ = CallRequestId(*env_, req, &id_generated);
  get_ = req.method == "GET";
  // The preflight, if any, was answered as for every gRPC method path (HttpCall).
  if (const absl::string_view origin = req.Header("origin");
      env_->cors != nullptr && !origin.empty() && env_->cors->AllowsOrigin(origin)) {
    env_->cors->AddConnectResponseHeaders(origin, &cors_headers_);
  }
  std::optional<connect::ContentType> type = connect::ParseContentType(req.Header("content-type"));
  if (type.has_value()) type_ = *type;
  const absl::string_view path = PathOf(req.target);
  route_ = table_->Find(path);
  if (route_ == nullptr) {
    Fail(absl::UnimplementedError(absl::StrCat("method not found: ", path)), 404);
    return;
  }
  if (!get_ && req.method != "POST") {
    Fail(absl::UnimplementedError(absl::StrCat("method ", req.method,
                                               ": Connect calls are POST (or GET) requests")),
         405);
    return;
  }
  std::optional<connect::GetRequest> get_request;
  if (get_) {
    if (route_->method->options().idempotency_level() !=
        google::protobuf::MethodOptions::NO_SIDE_EFFECTS) {
      Fail(absl::UnimplementedError(absl::StrCat(
               "GET of ", route_->path,
               ": only methods with idempotency_level NO_SIDE_EFFECTS may be called with GET")),
           405);
      return;
    }
    absl::StatusOr<connect::GetRequest> parsed = connect::ParseGetQuery(QueryOf(req.target));
    if (!parsed.ok()) {
      Fail(parsed.status());
      return;
    }
    get_request = *std::move(parsed);
    type_.streaming = false;
    type_.codec = get_request->codec;
    if (get_request->compression == "gzip") {
      request_gzip_ = true;
    } else if (!get_request->compression.empty()) {
      Fail(absl::UnimplementedError(absl::StrCat("compression \"",
                                                 absl::CHexEscape(get_request->compression),
                                                 "\" is not supported (gzip, identity)")));
      return;
    }
  } else if (!type.has_value()) {
    Fail(absl::InvalidArgumentError("not a Connect content type"), 415);
    return;
  }
  if (!type_.streaming && route_->kind != CallKind::kUnary) {
    Fail(absl::InvalidArgumentError(absl::StrCat(
        route_->path, " is a streaming method: call it with application/connect+proto or "
                      "application/connect+json")), 415);
    return;
  }
  if (!type_.streaming && !get_) {
    const absl::string_view version = req.Header("connect-protocol-version");
    if (!version.empty() && version != "1") {
      Fail(absl::InvalidArgumentError(absl::StrCat(
          "connect-protocol-version \"", absl::CHexEscape(version.substr(0, 32)),
          "\" is not supported (1)")));
      return;
    }
  }
  const absl::string_view encoding =
      req.Header(type_.streaming ? "connect-content-encoding" : "content-encoding");
  if (encoding == "gzip") {
    request_gzip_ = true;
  } else if (!encoding.empty() && encoding != "identity") {
    Fail(absl::UnimplementedError(absl::StrCat(
        type_.streaming ? "connect-content-encoding" : "content-encoding", " \"",
        absl::CHexEscape(encoding.substr(0, 32)), "\" is not supported (gzip, identity)")));
    return;
  }
  response_gzip_ =
      AcceptsGzip(req.Header(type_.streaming ? "connect-accept-encoding" : "accept-encoding"));
  const absl::Time now = arrival_;
  const absl::string_view timeout = req.Header("connect-timeout-ms");
  if (!timeout.empty()) {
    absl::StatusOr<absl::Duration> d = connect::ParseTimeoutMs(timeout);
    if (!d.ok()) {
      Fail(d.status());
      return;
    }
    client_deadline_ = now + *d;
  }
  deadline_ = StartDeadline(*env_, now, client_deadline_);
  // Metadata: the request's headers as for gRPC-Web, without the protocol's own.
  HeaderList client;
  client.reserve(req.headers.size());
  for (const auto& [key, value] : req.headers) {
    if (!IsConnectHeader(key)) client.emplace_back(key, value);
  }
  if (absl::Status status = table_->chain().metadata_policy().CollectClientMetadata(
          metadata::Protocol::kGrpcWeb, client, &env_->forwarded, &metadata_);
      !status.ok()) {
    Fail(status);
    return;
  }
  if (id_generated) metadata_.emplace_back("x-request-id", request_id_);
  max_message_ = route_->backend->cluster()->options().connection.max_message_size;
  if (get_request.has_value()) {
    unary_body_ = std::move(get_request->message);
    body_ = nullptr;
    body_ended_ = true;
  } else if (body_ == nullptr) {
    unary_body_ = std::move(request_.body);
    body_ended_ = true;
  }
  request_.body.clear();
  if (type_.streaming) {
    reader_.emplace(max_message_);
    if (body_ended_) {
      if (absl::Status fed = reader_->Feed(unary_body_); !fed.ok()) {
        Fail(fed);
        return;
      }
      unary_body_.clear();
    }
  } else if (unary_body_.size() > max_message_) {
    Fail(absl::ResourceExhaustedError(absl::StrCat(
        "request message of ", unary_body_.size(), " bytes is larger than the limit of ",
        max_message_, " bytes (limits.max_message_bytes)")));
    return;
  }
  RunInterceptors(now);
}

void ConnectCall::RunInterceptors(absl::Time now) {
  const HttpRequest& req = request_;
  span_ = tracing::CallSpan::Start(env_->tracer, req.Header("traceparent"),
                                   req.Header("tracestate"), arrival_);
  const InterceptorChain* chain = &table_->chain();
  if (chain->empty()) {
    StartBackend();
    return;
  }
  call_ctx_ = MakeCallContext(FrontEnd::kHttp, *route_, req, client_deadline_, deadline_, now,
                              QueryOf(req.target));
  RunInterceptorChain(*chain, call_ctx_.get(), req.headers, executor_,
                      [self = shared_from_this()](absl::Status status) {
                        self->OnIntercepted(std::move(status));
                      });
}

void ConnectCall::OnIntercepted(absl::Status status) {
  if (cancelled_) return;
  if (!status.ok()) {
    if (env_->metrics != nullptr) env_->metrics->Rejected(status);
    reject_headers_ = std::move(call_ctx_->response_headers);
    Fail(status);
    return;
  }
  StartBackend();
}

void ConnectCall::StartBackend() {
  int http_status = 0;  // Connect maps the code to its own HTTP status (Fail)
  if (absl::Status s =
          PrepareBackendCall(call_ctx_.get(), *route_, &metadata_, &deadline_, &http_status);
      !s.ok()) {
    Fail(s);
    return;
  }
  upstream::BackendCall::Spec spec;
  spec.path = route_->path;
  spec.deadline = deadline_;
  spec.metadata = std::move(metadata_);
  if (call_ctx_ != nullptr) spec.retry = call_ctx_->retry_policy;
  if (span_ != nullptr) span_->HookAttempts(&spec.on_attempt_start, &spec.on_attempt_end);
  // A unary response goes out whole: the call may be tried again until it ends.
  spec.single_response = !type_.streaming;
  upstream::BackendCall::Callbacks cb;
  std::weak_ptr<ConnectCall> weak = weak_from_this();
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
  cb.on_done = [self = shared_from_this()](const upstream::CallResult& result) {
    self->OnBackendDone(result);
  };
  backend_ = upstream::BackendCall::Start(upstreams_->For(route_->backend->cluster()),
                                          std::move(spec), std::move(cb));
  asio::post(executor_, [self = shared_from_this()] { self->PumpRequest(); });
}

absl::StatusOr<std::string> ConnectCall::RequestMessage(std::string data) {
  bytes_in_ += data.size();
  if (type_.codec == connect::Codec::kProto) return data;
  const transcoder::Transcoder& tc = table_->transcoder();
  transcoder::MethodPlan plan;
  plan.method = route_->method;
  return tc.request_translator().TranslateStreamMessage(plan, data, tc.options().request);
}

// Runs whenever nothing is pending with the backend (as GrpcRelayCall::PumpRequest).
void ConnectCall::PumpRequest() {
  if (finished_ || backend_done_ || writing_ || writes_done_ || reading_ ||
      !request_error_.ok()) {
    return;
  }
  if (!type_.streaming) {
    if (!body_ended_) {
      if (body_ == nullptr) return;
      reading_ = true;
      body_->Read([self = shared_from_this()](absl::Status s, std::string d, bool last) {
        self->OnBody(std::move(s), std::move(d), last);
      });
      return;
    }
    if (request_gzip_) {
      absl::StatusOr<std::string> inflated = gzip::Decompress(unary_body_, max_message_);
      if (!inflated.ok()) {
        FailRequest(inflated.status());
        return;
      }
      unary_body_ = *std::move(inflated);
    }
    absl::StatusOr<std::string> message = RequestMessage(std::move(unary_body_));
    if (!message.ok()) {
      FailRequest(absl::InvalidArgumentError(message.status().message()));
      return;
    }
    ++messages_in_;
    writes_done_ = true;
    backend_->WriteLast(*std::move(message));
    return;
  }
  if (std::optional<connect::Envelope> e = reader_->Next()) {
    if ((e->flags & connect::kFlagEndStream) != 0) {
      FailRequest(absl::InvalidArgumentError(
          "end-stream envelope in a Connect request (only responses end with one)"));
      return;
    }
    if ((e->flags & connect::kFlagCompressed) != 0) {
      if (!request_gzip_) {
        FailRequest(absl::InvalidArgumentError(
            "compressed Connect request message, but no connect-content-encoding"));
        return;
      }
      absl::StatusOr<std::string> inflated = gzip::Decompress(e->data, max_message_);
      if (!inflated.ok()) {
        FailRequest(absl::Status(inflated.status().code(),
                                 absl::StrCat("message ", messages_in_, ": ",
                                              inflated.status().message())));
        return;
      }
      e->data = *std::move(inflated);
    }
    if (messages_in_ > 0 && (route_->kind == CallKind::kUnary ||
                             route_->kind == CallKind::kServerStreaming)) {
      FailRequest(absl::InvalidArgumentError(absl::StrCat(
          route_->path, " takes one request message; got another")));
      return;
    }
    absl::StatusOr<std::string> message = RequestMessage(std::move(e->data));
    if (!message.ok()) {
      FailRequest(absl::InvalidArgumentError(
          absl::StrCat("message ", messages_in_, ": ", message.status().message())));
      return;
    }
    ++messages_in_;
    writing_ = true;
    backend_->Write(*std::move(message));
    return;
  }
  if (body_ended_) {
    if (absl::Status complete = reader_->CheckComplete(); !complete.ok()) {
      FailRequest(std::move(complete));
      return;
    }
    writes_done_ = true;
    backend_->WritesDone();
    return;
  }
  if (body_ == nullptr) return;
  reading_ = true;
  body_->Read([self = shared_from_this()](absl::Status s, std::string d, bool last) {
    self->OnBody(std::move(s), std::move(d), last);
  });
}

void ConnectCall::OnBody(absl::Status status, std::string data, bool last) {
  reading_ = false;
  if (finished_ || backend_done_ || !request_error_.ok()) return;
  if (!status.ok()) {
    FailRequest(std::move(status));
    return;
  }
  body_ended_ = last;
  if (type_.streaming) {
    if (absl::Status fed = reader_->Feed(data); !fed.ok()) {
      FailRequest(std::move(fed));
      return;
    }
  } else {
    if (unary_body_.size() + data.size() > max_message_) {
      FailRequest(absl::ResourceExhaustedError(absl::StrCat(
          "request message larger than the limit of ", max_message_,
          " bytes (limits.max_message_bytes)")));
      return;
    }
    unary_body_.append(data);
  }
  PumpRequest();
}

void ConnectCall::FailRequest(absl::Status status) {
  request_error_ = std::move(status);
  if (backend_ != nullptr) backend_->Cancel();
}

HeaderList ConnectCall::ResponseHeaders(bool unary_trailers) {
  HeaderList headers;
  const metadata::MetadataPolicy& policy = table_->chain().metadata_policy();
  AppendClientMetadata(policy, response_headers_, "", &headers);
  if (unary_trailers) AppendClientMetadata(policy, response_trailers_, "trailer-", &headers);
  if (!request_id_.empty()) {
    headers.erase(std::remove_if(headers.begin(), headers.end(),
                                 [](const auto& h) { return h.first == "x-request-id"; }),
                  headers.end());
    headers.emplace_back("x-request-id", request_id_);
  }
  headers.insert(headers.end(), cors_headers_.begin(), cors_headers_.end());
  return headers;
}

void ConnectCall::OnBackendMessage(std::string message) {
  if (finished_ || sink_ == nullptr) return;
  std::string out;
  if (type_.codec == connect::Codec::kJson) {
    const transcoder::Transcoder& tc = table_->transcoder();
    absl::StatusOr<std::string> json = tc.response_translator().MessageToJson(
        route_->method->output_type(), message, tc.options().response);
    if (!json.ok()) {
      request_error_ = absl::InternalError(json.status().message());
      if (backend_ != nullptr) backend_->Cancel();
      return;
    }
    out = *std::move(json);
  } else {
    out = std::move(message);
  }
  bytes_out_ += out.size();
  if (!type_.streaming) {
    response_ = std::move(out);
    has_response_ = true;
    return;  // single_response: on_done follows
  }
  if (!headers_sent_) {
    headers_sent_ = true;
    if (env_->access_log != nullptr) first_byte_ = absl::Now();
    HeaderList headers = ResponseHeaders(false);
    headers.emplace_back("content-type", connect::ContentTypeName(type_));
    if (response_gzip_) headers.emplace_back("connect-content-encoding", "gzip");
    sink_->StartStream(200, std::move(headers));
  }
  uint8_t flags = 0;
  if (response_gzip_ && out.size() >= kCompressMinBytes) {
    out = gzip::Compress(out);
    flags = connect::kFlagCompressed;
  }
  sink_->Write(connect::MakeEnvelope(flags, out), /*last=*/false,
               [self = shared_from_this()](bool ok) { self->OnWritten(ok); });
}

void ConnectCall::OnWritten(bool ok) {
  if (!ok) {
    Cancel();
    return;
  }
  if (backend_ != nullptr && !backend_done_) backend_->RequestNext();
}

void ConnectCall::OnBackendDone(const upstream::CallResult& result) {
  backend_done_ = true;
  status_ = request_error_.ok() ? route_->backend->UpstreamClientStatus(result, route_->path)
                                : request_error_;
  if (request_error_.ok()) status_details_ = result.details_bin;
  if (!request_error_.ok()) gateway_code_ = request_error_.raw_code();
  response_trailers_ = result.trailers;
  if (type_.streaming) {
    FinishStream();
  } else {
    FinishUnary();
  }
  body_ = nullptr;
  backend_.reset();
}

void ConnectCall::FinishUnary() {
  if (finished_ || sink_ == nullptr) return;
  if (status_.ok() && !has_response_) {
    status_ = absl::UnimplementedError("the backend ended a unary call without a response");
    gateway_code_ = status_.raw_code();
  }
  HeaderList headers = ResponseHeaders(/*unary_trailers=*/true);
  int http_status = 200;
  std::string body;
  if (status_.ok()) {
    headers.emplace_back("content-type", connect::ContentTypeName(type_));
    body = std::move(response_);
    if (response_gzip_ && body.size() >= kCompressMinBytes) {
      body = gzip::Compress(body);
      headers.emplace_back("content-encoding", "gzip");
    }
  } else {
    http_status = connect::HttpStatusFor(status_.code());
    headers.emplace_back("content-type", "application/json");
    body = connect::ErrorJson(status_, status_details_);
  }
  finished_ = true;
  CallSink* sink = sink_;
  std::shared_ptr<void> owner = std::move(sink_owner_);
  sink_ = nullptr;
  CountResponse(http_status);
  sink->Respond(http_status, std::move(headers), std::move(body));
}

void ConnectCall::FinishStream() {
  if (finished_ || sink_ == nullptr) return;
  HeaderList trailers;
  AppendClientMetadata(table_->chain().metadata_policy(), response_trailers_, "", &trailers);
  std::string end = connect::MakeEnvelope(
      connect::kFlagEndStream, connect::EndStreamJson(status_, status_details_, trailers));
  finished_ = true;
  CallSink* sink = sink_;
  std::shared_ptr<void> owner = std::move(sink_owner_);
  sink_ = nullptr;
  CountResponse(200);
  if (!headers_sent_) {
    headers_sent_ = true;
    HeaderList headers = ResponseHeaders(false);
    headers.emplace_back("content-type", connect::ContentTypeName(type_));
    sink->Respond(200, std::move(headers), std::move(end));
    return;
  }
  sink->Write(std::move(end), /*last=*/true, [owner](bool) {});
}

void ConnectCall::Fail(const absl::Status& status, int http_status) {
  if (finished_ || sink_ == nullptr) return;
  gateway_code_ = status.raw_code();
  status_ = status;
  HeaderList headers = ResponseHeaders(false);
  for (auto& [key, value] : reject_headers_) {
    if (metadata::CheckEntry(key, value).ok() && !metadata::IsProtocolHeader(key)) {
      headers.emplace_back(std::move(key), std::move(value));
    }
  }
  reject_headers_.clear();
  std::string body;
  if (type_.streaming && !get_) {
    // A streaming response is always 200; the error is in the end-of-stream message.
    http_status = 200;
    headers.emplace_back("content-type", connect::ContentTypeName(type_));
    body = connect::MakeEnvelope(connect::kFlagEndStream,
                                 connect::EndStreamJson(status, "", {}));
  } else {
    if (http_status == 0) http_status = connect::HttpStatusFor(status.code());
    headers.emplace_back("content-type", "application/json");
    body = connect::ErrorJson(status, "");
  }
  finished_ = true;
  body_ = nullptr;
  CallSink* sink = sink_;
  std::shared_ptr<void> owner = std::move(sink_owner_);
  sink_ = nullptr;
  CountResponse(http_status);
  sink->Respond(http_status, std::move(headers), std::move(body));
}

// Counts the call once (HttpMetrics, with the HTTP status of its response: 0 for a client
// that went away), logs it and ends its span.
void ConnectCall::CountResponse(int status) {
  if (span_ != nullptr) {  // the call's span ends with its response (once)
    span_->End(absl::Now(),
               {"connect", request_.method, PathOf(request_.target),
                route_ != nullptr ? absl::string_view(route_->path) : "",
                request_.Header("host"), request_.peer, status,
                gateway_code_ >= 0 ? gateway_code_
                : backend_done_    ? static_cast<int>(status_.code())
                                   : -1,
                status_.ok() ? absl::string_view() : status_.message()});
  }
  if (counted_ || (env_->metrics == nullptr && env_->access_log == nullptr)) return;
  counted_ = true;
  const absl::Time now = absl::Now();
  if (env_->metrics != nullptr) {
    env_->metrics->SeriesFor(table_, route_)->Responded(status, now - arrival_);
  }
  if (env_->access_log != nullptr) LogAccess(status, now);
}

// The call's access log line (docs/config.md, "access_log"): front end "connect".
void ConnectCall::LogAccess(int status, absl::Time now) {
  LogCall(env_->access_log, request_,
          {"connect", status,
           gateway_code_ >= 0 ? gateway_code_
           : backend_done_    ? static_cast<int>(status_.code())
                              : -1,
           arrival_, now, first_byte_, route_, bytes_in_, bytes_out_, backend_.get(),
           call_ctx_.get(), request_id_});
}

}  // namespace gateway::http
