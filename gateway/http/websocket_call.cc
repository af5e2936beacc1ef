#include "gateway/http/websocket_call.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/asio/post.hpp"
#include "gateway/access_log/access_log.h"
#include "gateway/http/request_checks.h"
#include "gateway/metadata/metadata_policy.h"

namespace gateway::http {

namespace asio = boost::asio;

namespace {

constexpr absl::string_view kJson = "application/json";
constexpr std::size_t kMaxCloseReason = 123;

// True when the comma-separated header `value` lists `token` (case-insensitive).
bool ListsToken(absl::string_view value, absl::string_view token) {
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(part), token)) return true;
  }
  return false;
}

// The length of the valid UTF-8 sequence at the start of `s` (1 to 4), or 0 when `s` does
// not start with one (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
std::size_t Utf8Sequence(absl::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

bool UpgradesToWebSocket(absl::string_view upgrade_header) {
  return ListsToken(upgrade_header, "websocket");
}

bool IsWebSocketUpgrade(const HttpRequest& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "upgrade" && UpgradesToWebSocket(value)) return true;
  }
  return false;
}

absl::Status CheckUpgradeRequest(const HttpRequest& request, bool* version_mismatch) {
  *version_mismatch = false;
  if (request.method != "GET") {
    return absl::InvalidArgumentError(absl::StrCat(
        "a WebSocket upgrade must be a GET request, not ", request.method));
  }
  if (!ListsToken(request.Header("connection"), "upgrade")) {
    return absl::InvalidArgumentError(
        "a WebSocket upgrade needs \"Connection: Upgrade\"");
  }
  const absl::string_view key = absl::StripAsciiWhitespace(request.Header("sec-websocket-key"));
  std::string raw;
  if (key.size() != 24 || !absl::Base64Unescape(key, &raw) || raw.size() != 16) {
    return absl::InvalidArgumentError(
        "Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455 4.1)");
  }
  if (absl::StripAsciiWhitespace(request.Header("sec-websocket-version")) != "13") {
    *version_mismatch = true;
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported Sec-WebSocket-Version \"", request.Header("sec-websocket-version"),
        "\" (supported: 13)"));
  }
  return absl::OkStatus();
}

absl::Status CheckExtendedConnect(const HttpRequest& request, bool* version_mismatch) {
  *version_mismatch = false;
  if (request.method != "CONNECT" || absl::string_view(request.protocol) != "HTTP/2") {
    return absl::InvalidArgumentError(absl::StrCat(
        "a WebSocket over HTTP/2 is an extended CONNECT (RFC 8441), not ", request.method,
        " over ", request.protocol));
  }
  if (absl::StripAsciiWhitespace(request.Header("sec-websocket-version")) != "13") {
    *version_mismatch = true;
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported sec-websocket-version \"", request.Header("sec-websocket-version"),
        "\" (supported: 13)"));
  }
  return absl::OkStatus();
}

uint16_t CloseCodeForStatus(absl::StatusCode code) {
  if (code == absl::StatusCode::kOk) return 1000;
  return static_cast<uint16_t>(4000 + static_cast<int>(code));
}

std::string CloseReason(absl::string_view message) {
  std::string out;
  out.reserve(std::min(message.size(), kMaxCloseReason));
  while (!message.empty()) {
    std::size_t n = Utf8Sequence(message);
    absl::string_view piece = message.substr(0, n);
    if (n == 0) {
      n = 1;
      piece = "?";
    }
    if (out.size() + piece.size() > kMaxCloseReason) break;
    out.append(piece.data(), piece.size());
    message.remove_prefix(n);
  }
  return out;
}

bool SameOrigin(absl::string_view origin, absl::string_view host) {
  const std::size_t scheme_end = origin.find("://");
  if (scheme_end == absl::string_view::npos || host.empty()) return false;
  absl::string_view authority = origin.substr(scheme_end + 3);
  const absl::string_view scheme = origin.substr(0, scheme_end);
  // A default port may be written or left out on either side.
  const auto strip_default = [&](absl::string_view s) {
    if (absl::EqualsIgnoreCase(scheme, "http") || absl::EqualsIgnoreCase(scheme, "ws")) {
      absl::ConsumeSuffix(&s, ":80");
    } else if (absl::EqualsIgnoreCase(scheme, "https") ||
               absl::EqualsIgnoreCase(scheme, "wss")) {
      absl::ConsumeSuffix(&s, ":443");
    }
    return s;
  };
  return absl::EqualsIgnoreCase(strip_default(authority), strip_default(host));
}

// --- WebSocketCall ---

WebSocketCall::WebSocketCall(const CallEnv* env, std::shared_ptr<const RouteTable> table,
                             boost::asio::io_context::executor_type executor,
                             upstream::WorkerUpstreams* upstreams,
                             std::shared_ptr<WebSocketTransport> transport)
    : env_(env),
      table_(std::move(table)),
      executor_(executor),
      upstreams_(upstreams),
      transport_(std::move(transport)) {}

WebSocketCall::~WebSocketCall() = default;

void WebSocketCall::Start(HttpRequest request) {
  arrival_ = absl::Now();
  request_ = std::move(request);
  const HttpRequest& req = request_;
  // The call's id: the client's, or a generated one (sent to the backend).
  request_id_ = CallRequestId(*env_, req, &request_id_generated_);
  bool version_mismatch = false;
  // HTTP/2 (RFC 8441) opens a WebSocket with an extended CONNECT, HTTP/1.1 with a GET.
  extended_connect_ = req.method == "CONNECT";
  if (absl::Status status = extended_connect_ ? CheckExtendedConnect(req, &version_mismatch)
                                              : CheckUpgradeRequest(req, &version_mismatch);
      !status.ok()) {
    if (version_mismatch) {
      Refuse(426, status, {{"sec-websocket-version", "13"}});
    } else {
      Refuse(400, status);
    }
    return;
  }
  absl::StatusOr<RequestTarget> target =
      CheckRequestTarget(req.target, env_->allow_encoded_slashes);
  if (!target.ok()) {
    Refuse(400, target.status());
    return;
  }
  // Origin: browsers send it with every WebSocket; a page of another origin may open one.
  const absl::string_view origin = req.Header("origin");
  if (!origin.empty()) {
    if (env_->cors != nullptr) {
      if (!env_->cors->AllowsOrigin(origin)) {
        Refuse(403, absl::PermissionDeniedError(absl::StrCat(
                        "WebSocket refused: origin \"", origin,
                        "\" is not allowed by the CORS policy")));
        return;
      }
    } else if (!SameOrigin(origin, req.Header("host"))) {
      Refuse(403, absl::PermissionDeniedError(absl::StrCat(
                      "WebSocket refused: origin \"", origin,
                      "\" is not the gateway's own and no CORS policy allows other origins")));
      return;
    }
  }
  // The route: a streaming method's REST route, whether its rule says GET or POST.
  const transcoder::Transcoder& tc = table_->transcoder();
  absl::Status no_route;
  const Route* unary = nullptr;
  for (const char* verb : {"GET", "POST"}) {
    absl::StatusOr<transcoder::RouteMatch> match = tc.Match(verb, target->path);
    if (!match.ok()) {
      if (no_route.ok()) no_route = match.status();
      continue;
    }
    const Route* route = table_->ForPlan(match->plan);
    if (route == nullptr) continue;
    if (route->kind == CallKind::kUnary) {
      unary = route;
      continue;
    }
    route_ = route;
    match_ = *std::move(match);
    break;
  }
  if (route_ == nullptr) {
    if (unary != nullptr) {
      Refuse(400, absl::InvalidArgumentError(absl::StrCat(
                      "unary method ", unary->path,
                      " cannot be called over WebSocket; send a plain HTTP request")));
      return;
    }
    if (no_route.ok()) no_route = absl::NotFoundError("no route for this path");
    Refuse(transcoder::HttpStatusFromCode(no_route.code()), no_route);
    return;
  }
  const absl::Time now = absl::Now();
  absl::StatusOr<absl::Time> client_deadline = ClientDeadline(*env_, req, now);
  if (!client_deadline.ok()) {
    Refuse(400, client_deadline.status());
    return;
  }
  client_deadline_ = *client_deadline;
  deadline_ = StartDeadline(*env_, now, client_deadline_);
  if (absl::Status status = table_->chain().metadata_policy().CollectClientMetadata(
          metadata::Protocol::kRest, req.headers, &env_->forwarded, &metadata_);
      !status.ok()) {
    Refuse(400, status);
    return;
  }
  if (request_id_generated_) metadata_.emplace_back("x-request-id", request_id_);
  absl::StatusOr<std::string> common = tc.request_translator().TranslatePathAndQuery(
      match_, target->query, tc.options().request);
  if (!common.ok()) {
    Refuse(transcoder::HttpStatusFromCode(common.status().code()), common.status());
    return;
  }
  stream_common_ = *std::move(common);
  const InterceptorChain* chain = &table_->chain();
  if (chain->empty()) {
    OnIntercepted(absl::OkStatus());
    return;
  }
  call_ctx_ = MakeCallContext(FrontEnd::kHttp, *route_, req, client_deadline_, deadline_, now,
                              target->query);
  RunInterceptorChain(*chain, call_ctx_.get(), req.headers, executor_,
                      [self = shared_from_this()](absl::Status status) {
                        self->OnIntercepted(std::move(status));
                      });
}

void WebSocketCall::Refuse(int http_status, const absl::Status& status, HeaderList headers) {
  if (cancelled_ || transport_ == nullptr) return;
  http_status_ = http_status;
  status_ = status;
  headers.emplace_back("content-type", std::string(kJson));
  if (!request_id_.empty()) headers.emplace_back("x-request-id", request_id_);
  std::string body = table_->transcoder().ErrorBody(status);
  bytes_out_ += body.size();
  std::shared_ptr<WebSocketTransport> transport = std::move(transport_);
  transport->Refuse(http_status, std::move(headers), std::move(body));
  Finish();
}

void WebSocketCall::OnIntercepted(absl::Status status) {
  if (cancelled_) return;
  if (!status.ok()) {
    if (env_->metrics != nullptr) env_->metrics->Rejected(status);
    HeaderList headers;
    for (auto& [key, value] : call_ctx_->response_headers) {
      if (IsValidMetadataValue(value)) headers.emplace_back(std::move(key), std::move(value));
    }
    Refuse(transcoder::HttpStatusFromCode(status.code()), status, std::move(headers));
    return;
  }
  int http_status = 0;
  if (absl::Status s =
          PrepareBackendCall(call_ctx_.get(), *route_, &metadata_, &deadline_, &http_status);
      !s.ok()) {
    Refuse(http_status, s);
    return;
  }
  Accept();
}

void WebSocketCall::Accept() {
  HeaderList headers;
  if (!request_id_.empty()) headers.emplace_back("x-request-id", request_id_);
  transport_->Accept(std::move(headers), [self = shared_from_this()](bool ok) {
    if (self->cancelled_) return;
    if (!ok) {
      self->client_gone_ = true;
      self->status_ = absl::UnavailableError("the WebSocket handshake failed");
      self->transport_.reset();
      self->Finish();
      return;
    }
    self->accepted_ = true;
    self->http_status_ = self->extended_connect_ ? 200 : 101;
    if (self->env_->access_log != nullptr) self->first_byte_ = absl::Now();
    self->StartBackend();
  });
}

void WebSocketCall::StartBackend() {
  upstream::BackendCall::Spec spec;
  spec.path = route_->path;
  spec.deadline = deadline_;
  spec.metadata = std::move(metadata_);
  if (call_ctx_ != nullptr) spec.retry = call_ctx_->retry_policy;
  spec.single_response = route_->kind == CallKind::kClientStreaming;
  upstream::BackendCall::Callbacks cb;
  std::weak_ptr<WebSocketCall> weak = weak_from_this();
  cb.on_headers = [](const upstream::Headers&) {};
  cb.on_message = [weak](std::string message) {
    if (auto self = weak.lock()) self->OnBackendMessage(std::move(message));
  };
  cb.on_writable = [weak] {
    if (auto self = weak.lock()) self->ReadNext();
  };
  // The backend call holds this call until its end.
  cb.on_done = [self = shared_from_this()](const upstream::CallResult& result) {
    self->OnBackendDone(result);
  };
  backend_ = upstream::BackendCall::Start(upstreams_->For(route_->backend->cluster()),
                                          std::move(spec), std::move(cb));
  ReadNext();
}

// Reads the next frame: at the start, after the backend took the previous message, and,
// once the request stream ended, to notice the client's close or a stray message.
void WebSocketCall::ReadNext() {
  if (reading_ || cancelled_ || closing_ || backend_done_ || transport_ == nullptr) return;
  reading_ = true;
  transport_->Read([self = shared_from_this()](absl::Status status, bool text,
                                                std::string payload) {
    self->OnFrame(std::move(status), text, std::move(payload));
  });
}

void WebSocketCall::OnFrame(absl::Status status, bool text, std::string payload) {
  reading_ = false;
  if (cancelled_ || closing_ || backend_done_) return;
  if (!status.ok()) {
    // Closed by the client, or the WebSocket layer refused a frame (and closed): nothing
    // more can be sent.
    client_gone_ = true;
    Fail(status.code() == absl::StatusCode::kResourceExhausted
             ? std::move(status)
             : absl::CancelledError(absl::StrCat("WebSocket ", status.message())));
    return;
  }
  bytes_in_ += payload.size();
  if (!text) {
    Fail(absl::InvalidArgumentError(
        "binary WebSocket frame: each request message is one JSON text frame"));
    return;
  }
  if (writes_done_) {
    Fail(absl::InvalidArgumentError(
        route_->kind == CallKind::kServerStreaming
            ? absl::StrCat("server-streaming method ", route_->path,
                           " takes one request message; got another")
            : std::string("a message after the end of the request stream (an empty "
                          "text frame ends it)")));
    return;
  }
  if (payload.empty()) {  // the end of the request stream
    writes_done_ = true;
    backend_->WritesDone();
    ReadNext();
    return;
  }
  const transcoder::Transcoder& tc = table_->transcoder();
  absl::StatusOr<std::string> message = tc.request_translator().TranslateStreamMessage(
      *match_.plan, payload, tc.options().request);
  if (!message.ok()) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat("message ", messages_in_, ": ", message.status().message())));
    return;
  }
  message->append(stream_common_);
  ++messages_in_;
  backend_->Write(*std::move(message));
  if (route_->kind == CallKind::kServerStreaming) {
    writes_done_ = true;
    backend_->WritesDone();
  }
  // The next frame is read once the backend took this message (on_writable).
}

void WebSocketCall::OnBackendMessage(std::string message) {
  if (cancelled_ || closing_ || transport_ == nullptr) return;
  absl::StatusOr<transcoder::HttpResponseBody> out =
      table_->transcoder().TranslateResponse(*match_.plan, message);
  if (!out.ok()) {
    Fail(absl::InternalError(
        absl::StrCat("bad response from the backend: ", out.status().message())));
    return;
  }
  writing_ = true;
  bytes_out_ += out->body.size();
  transport_->Write(std::move(out->body), [self = shared_from_this()](bool ok) {
    self->writing_ = false;
    if (self->cancelled_) return;
    if (!ok) {
      self->client_gone_ = true;
      self->Fail(absl::CancelledError("the client went away"));
      self->MaybeClose();
      return;
    }
    // Back-pressure: the next message only once the client took this one.
    if (self->backend_ != nullptr && !self->backend_done_) self->backend_->RequestNext();
    self->MaybeClose();
  });
}

void WebSocketCall::OnBackendDone(const upstream::CallResult& result) {
  backend_done_ = true;
  status_ = failure_.ok() ? route_->backend->UpstreamClientStatus(result, route_->path)
                          : failure_;
  if (failure_.ok()) status_details_ = result.details_bin;
  if (backend_ != nullptr) {
    upstream_ = backend_->endpoint();
    attempts_ = backend_->attempts();
  }
  backend_.reset();
  MaybeClose();
}

void WebSocketCall::Fail(absl::Status status) {
  if (!failure_.ok()) return;
  failure_ = std::move(status);
  if (backend_ != nullptr) backend_->Cancel();
}

// Once the backend call ended and no frame is being written: the status goes to the client
// (an error frame, then the close frame).
void WebSocketCall::MaybeClose() {
  if (!backend_done_ || writing_ || closing_ || cancelled_) return;
  closing_ = true;
  if (client_gone_ || transport_ == nullptr) {
    Finish();
    return;
  }
  const uint16_t code = CloseCodeForStatus(status_.code());
  std::string reason = CloseReason(status_.message());
  if (status_.ok()) {
    transport_->Close(code, std::move(reason));
    Finish();
    return;
  }
  std::string body = table_->transcoder().ErrorBody(status_.code(), status_.message(),
                                                    status_details_);
  bytes_out_ += body.size();
  writing_ = true;
  transport_->Write(std::move(body), [self = shared_from_this(), code,
                                      reason = std::move(reason)](bool ok) mutable {
    self->writing_ = false;
    if (ok && !self->cancelled_ && self->transport_ != nullptr) {
      self->transport_->Close(code, std::move(reason));
    }
    self->Finish();
  });
}

void WebSocketCall::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  client_gone_ = true;
  transport_.reset();
  if (backend_ != nullptr) backend_->Cancel();
  if (!backend_done_ && status_.ok()) status_ = absl::CancelledError("the client went away");
  Finish();
}

// Counts the call and writes its access log line, once.
void WebSocketCall::Finish() {
  if (finished_) return;
  finished_ = true;
  const absl::Time now = absl::Now();
  // An upgraded call whose client went away before the end counts as status 0.
  const int status = accepted_ && client_gone_ && !backend_done_ ? 0 : http_status_;
  if (env_->metrics != nullptr) {
    env_->metrics->SeriesFor(table_, route_)->Responded(status, now - arrival_);
  }
  if (env_->access_log != nullptr) LogAccess(status, now);
}

void WebSocketCall::LogAccess(int status, absl::Time now) {
  access_log::AccessLog* log = env_->access_log;
  access_log::Record r;
  r.status = status;
  r.grpc_status = static_cast<int>(status_.code());
  if (!log->Sample(r.IsError())) return;
  r.time = arrival_;
  r.front_end = "websocket";
  r.protocol = request_.protocol;
  r.trace_id = std::string(access_log::TraceIdFromTraceparent(request_.Header("traceparent")));
  r.user_agent = std::string(request_.Header("user-agent"));
  r.method = request_.method;
  const absl::string_view target = request_.target;
  r.path = std::string(target.substr(0, target.find('?')));
  if (route_ != nullptr) r.grpc_method = route_->path;
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  r.duration = now - arrival_;
  r.upstream = upstream_;
  r.attempts = attempts_;
  r.ttfb = first_byte_ != absl::InfinitePast() ? first_byte_ - arrival_ : r.duration;
  if (call_ctx_ != nullptr) r.caller_id = call_ctx_->caller_id;
  r.request_id = request_id_;
  r.peer = request_.peer;
  log->Push(std::move(r));
}

}  // namespace gateway::http
