// The gRPC-Web side of HttpCall: a POST /pkg.Service/Method with an application/grpc-web*
// body is routed by its path (RouteTable::Find), its request headers become metadata, its
// single message is relayed to the backend as it is (no transcoding), and the response goes
// back as gRPC-Web frames (data frames as messages arrive, then the trailer frame), or as a
// trailers-only response (status in the HTTP headers, empty body) when the call fails before
// its first message. The interceptor chain runs exactly as for REST calls
// (HttpCall::RunInterceptors).

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/http/call.h"
#include "gateway/http/grpc_web.h"
#include "gateway/http/request_checks.h"
#include "gateway/metadata/metadata_policy.h"

namespace gateway::http {
namespace {

using Metadata = std::vector<std::pair<std::string, std::string>>;

// The (name, value) pairs of backend metadata that the metadata policy passes back to the
// client, binary values decoded (on the wire they are base64, padded or not).
Metadata RawMetadata(const metadata::MetadataPolicy& policy, const upstream::Headers& md) {
  Metadata out;
  for (const auto& [key, value] : md) {
    if (!metadata::IsBinaryKey(key)) {
      if (policy.ForwardsToClient(key, value)) out.emplace_back(key, value);
      continue;
    }
    absl::StatusOr<std::string> raw = metadata::DecodeBinaryText(key, value);
    if (raw.ok() && policy.ForwardsToClient(key, *raw)) out.emplace_back(key, *std::move(raw));
  }
  return out;
}

// The same as response headers (name, text value): binary values in canonical base64.
void AppendResponseMetadata(const metadata::MetadataPolicy& policy,
                            const upstream::Headers& md, Metadata* out) {
  for (auto& [key, value] : RawMetadata(policy, md)) {
    if (metadata::IsBinaryKey(key)) value = absl::Base64Escape(value);
    out->emplace_back(std::move(key), std::move(value));
  }
}

void AppendStatusHeaders(int code, absl::string_view message, absl::string_view details,
                         HeaderList* headers) {
  headers->emplace_back("grpc-status", absl::StrCat(code));
  if (!message.empty()) {
    headers->emplace_back("grpc-message", grpc_web::PercentEncodeMessage(message));
  }
  if (!details.empty()) {
    headers->emplace_back("grpc-status-details-bin", absl::Base64Escape(details));
  }
}

}  // namespace

bool GrpcWebErrorHeaders(absl::string_view content_type, const absl::Status& status,
                         HeaderList* headers) {
  std::optional<grpc_web::GrpcWebType> type = grpc_web::ParseContentType(content_type);
  if (!type.has_value()) return false;
  headers->emplace_back("content-type",
                        std::string(grpc_web::ResponseContentType(type->encoding)));
  AppendStatusHeaders(static_cast<int>(status.code()), status.message(), "", headers);
  return true;
}

void HttpCall::DispatchGrpcWeb(absl::string_view path, absl::string_view query,
                               grpc_web::GrpcWebType type) {
  grpc_web_ = true;
  const HttpRequest& req = request_;
  // The response is text when the request is, or when the client asks for it (PROTOCOL-WEB:
  // "Accept: application/grpc-web-text").
  web_encoding_ = type.encoding;
  if (absl::StrContains(req.Header("accept"), "application/grpc-web-text")) {
    web_encoding_ = grpc_web::Encoding::kText;
  }
  if (!type.proto) {
    GrpcWebTrailersOnly(absl::UnimplementedError(
        absl::StrCat("content-type ", req.Header("content-type"),
                     ": the gateway relays protobuf messages only (application/grpc-web+proto)")));
    return;
  }
  route_ = table_->Find(path);
  if (route_ == nullptr) {
    GrpcWebTrailersOnly(absl::UnimplementedError(absl::StrCat("unknown method ", path)));
    return;
  }
  if (route_->kind == CallKind::kClientStreaming || route_->kind == CallKind::kBidiStreaming) {
    GrpcWebTrailersOnly(absl::UnimplementedError(
        absl::StrCat(CallKindName(route_->kind), " method ", route_->path,
                     " cannot be called over gRPC-Web")));
    return;
  }
  const absl::Time now = absl::Now();
  if (absl::Status status = SetDeadline(now); !status.ok()) {
    GrpcWebTrailersOnly(status);
    return;
  }
  absl::Status status = GrpcWebMetadata();
  if (!status.ok()) {
    GrpcWebTrailersOnly(status);
    return;
  }
  if (request_id_generated_) metadata_.emplace_back("x-request-id", request_id_);
  // The request message.
  std::string storage;
  absl::StatusOr<std::vector<grpc_web::Frame>> frames =
      grpc_web::DecodeRequestBody(req.body, type.encoding, env_->max_body_bytes, &storage);
  if (!frames.ok()) {
    GrpcWebTrailersOnly(frames.status());
    return;
  }
  if (frames->size() != 1) {
    GrpcWebTrailersOnly(absl::InvalidArgumentError(
        absl::StrCat(CallKindName(route_->kind), " method ", route_->path,
                     " takes exactly one request message, the body has ", frames->size())));
    return;
  }
  messages_.emplace_back((*frames)[0].payload);
  RunInterceptors(now, query);
}

// Every request header that is neither gRPC's own, nor of this hop, nor the browser's, nor
// the gateway's, as metadata (plus the configured forwarded headers); "-bin" values arrive
// in base64. The rules are the metadata policy's (gateway/metadata/metadata_policy.h).
absl::Status HttpCall::GrpcWebMetadata() {
  return table_->chain().metadata_policy().CollectClientMetadata(
      metadata::Protocol::kGrpcWeb, request_.headers, &env_->forwarded, &metadata_);
}

// The response headers: content type, the backend's initial metadata (and its trailing
// metadata for trailers-only responses), the CORS headers.
HeaderList HttpCall::GrpcWebHeaders(bool with_trailing) {
  HeaderList headers;
  headers.emplace_back("content-type", std::string(grpc_web::ResponseContentType(web_encoding_)));
  // This runs only after a response message or the end of the backend call, so its
  // response headers have arrived (or never will).
  const metadata::MetadataPolicy& policy = table_->chain().metadata_policy();
  AppendResponseMetadata(policy, response_headers_, &headers);
  if (with_trailing && backend_done_) {
    AppendResponseMetadata(policy, response_trailers_, &headers);
  }
  return headers;
}

void HttpCall::GrpcWebTrailersOnly(const absl::Status& status) {
  gateway_code_ = status.raw_code();
  HeaderList headers = GrpcWebHeaders(/*with_trailing=*/false);
  AppendStatusHeaders(static_cast<int>(status.code()), status.message(), "", &headers);
  for (auto& [key, value] : reject_headers_) {
    if (IsValidMetadataValue(value)) headers.emplace_back(std::move(key), std::move(value));
  }
  reject_headers_.clear();
  Respond(200, std::move(headers), "");
}

void HttpCall::GrpcWebSendMessage(const std::string& message) {
  std::string frame = grpc_web::EncodeFrame(grpc_web::kMessageFrame, message, web_encoding_);
  if (!headers_sent_) {
    headers_sent_ = true;
    HeaderList headers = GrpcWebHeaders(/*with_trailing=*/false);
    for (auto& header : cors_headers_) headers.push_back(std::move(header));
    AddRequestIdHeader(&headers);
    StreamStarted();
    sink_->StartStream(200, std::move(headers));
  }
  bytes_out_ += frame.size();
  sink_->Write(std::move(frame), /*last=*/false,
               [self = shared_from_this()](bool ok) { self->OnWritten(ok); });
}

void HttpCall::GrpcWebFinish() {
  const int code = static_cast<int>(status_.code());
  const std::string message(status_.message());
  auto trailer_frame = [&] {
    std::string block = grpc_web::TrailerBlock(
        code, message, RawMetadata(table_->chain().metadata_policy(), response_trailers_));
    if (!status_details_.empty()) {
      absl::StrAppend(&block, "grpc-status-details-bin: ", absl::Base64Escape(status_details_),
                      "\r\n");
    }
    return grpc_web::EncodeFrame(grpc_web::kTrailerFrame, block, web_encoding_);
  };
  if (headers_sent_) {  // a server stream that sent messages
    CallSink* sink = sink_;
    std::shared_ptr<void> owner = std::move(sink_owner_);
    sink_ = nullptr;
    std::string trailer = trailer_frame();
    bytes_out_ += trailer.size();
    CountResponse(200);
    sink->Write(std::move(trailer), /*last=*/true, [](bool) {});
    return;
  }
  if (!status_.ok()) {
    HeaderList headers = GrpcWebHeaders(/*with_trailing=*/true);
    AppendStatusHeaders(code, message, status_details_, &headers);
    Respond(200, std::move(headers), "");
    return;
  }
  std::string body;
  if (route_->kind == CallKind::kUnary) {
    if (!has_response_) {
      GrpcWebTrailersOnly(absl::InternalError("the backend sent no response message"));
      return;
    }
    body = grpc_web::EncodeFrame(grpc_web::kMessageFrame, response_, web_encoding_);
  }
  body += trailer_frame();
  Respond(200, GrpcWebHeaders(/*with_trailing=*/false), std::move(body));
}

}  // namespace gateway::http
