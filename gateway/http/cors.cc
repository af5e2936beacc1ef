#include "gateway/http/cors.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace gateway::http {

absl::StatusOr<std::shared_ptr<const CorsPolicy>> CorsPolicy::Create(const CorsOptions& o) {
  std::shared_ptr<CorsPolicy> p(new CorsPolicy());
  for (std::size_t i = 0; i < o.allowed_origins.size(); ++i) {
    const std::string& origin = o.allowed_origins[i];
    if (origin == "*") {
      if (o.allow_credentials) {
        return absl::InvalidArgumentError(absl::StrCat(
            "allowed_origins[", i, "]: \"*\" cannot be combined with allow_credentials"));
      }
      p->any_origin_ = true;
      continue;
    }
    const std::size_t scheme = origin.find("://");
    if (scheme == std::string::npos || scheme == 0 || origin.size() == scheme + 3 ||
        origin.find('/', scheme + 3) != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "allowed_origins[", i, "]: \"", origin, "\" is not scheme://host[:port]"));
    }
    p->origins_.insert(absl::AsciiStrToLower(origin));
  }
  for (std::size_t i = 0; i < o.allowed_origin_patterns.size(); ++i) {
    auto re = std::make_unique<RE2>(o.allowed_origin_patterns[i], RE2::Quiet);
    if (!re->ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "allowed_origin_patterns[", i, "]: ", re->error()));
    }
    p->patterns_.push_back(std::move(re));
  }
  std::vector<std::string> methods = o.allowed_methods;
  if (methods.empty()) methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  for (std::string& m : methods) {
    absl::AsciiStrToUpper(&m);
    p->methods_.insert(m);
  }
  p->methods_text_ = absl::StrJoin(methods, ", ");
  // Configured first, then the safelisted ones, each once.
  std::vector<std::string> headers;
  auto add = [&](std::string name) {
    if (p->headers_.insert(name).second) headers.push_back(std::move(name));
  };
  for (const std::string& h : o.allowed_headers) add(absl::AsciiStrToLower(h));
  for (absl::string_view h : absl::StrSplit(kSafelistedRequestHeaders, ", ")) {
    add(std::string(h));
  }
  p->headers_text_ = absl::StrJoin(headers, ", ");
  for (const char* set : {kGrpcWebRequestHeaders, kConnectRequestHeaders}) {
    for (absl::string_view h : absl::StrSplit(set, ", ")) {
      if (!p->headers_.contains(h)) headers.push_back(std::string(h));
    }
  }
  p->grpc_path_headers_text_ = absl::StrJoin(headers, ", ");
  p->exposed_text_ = absl::StrJoin(o.exposed_headers, ", ");
  auto exposed = [&](absl::string_view protocol_set) {
    return p->exposed_text_.empty() ? std::string(protocol_set)
                                    : absl::StrCat(protocol_set, ", ", p->exposed_text_);
  };
  p->grpc_web_exposed_text_ = exposed(kGrpcWebExposedHeaders);
  p->connect_exposed_text_ = exposed(kConnectExposedHeaders);
  if (o.max_age > absl::ZeroDuration()) {
    p->max_age_text_ = absl::StrCat(absl::ToInt64Seconds(o.max_age));
  }
  p->allow_credentials_ = o.allow_credentials;
  return std::shared_ptr<const CorsPolicy>(std::move(p));
}

bool CorsPolicy::AllowsOrigin(absl::string_view origin) const {
  if (origin.empty()) return false;
  if (any_origin_) return true;
  if (origins_.contains(absl::AsciiStrToLower(origin))) return true;
  for (const auto& re : patterns_) {
    if (RE2::FullMatch(re2::StringPiece(origin.data(), origin.size()), *re)) return true;
  }
  return false;
}

const char CorsPolicy::kGrpcWebRequestHeaders[] =
    "content-type, x-grpc-web, x-user-agent, grpc-timeout";
const char CorsPolicy::kConnectRequestHeaders[] =
    "connect-protocol-version, connect-timeout-ms, content-encoding, accept-encoding, "
    "connect-content-encoding, connect-accept-encoding";
const char CorsPolicy::kGrpcWebExposedHeaders[] = "grpc-status, grpc-message";
const char CorsPolicy::kConnectExposedHeaders[] = "content-encoding, connect-content-encoding";
const char CorsPolicy::kSafelistedRequestHeaders[] =
    "accept, accept-language, content-language, content-type, range";

namespace {

// The headers gRPC-Web and Connect clients send (kGrpcWebRequestHeaders,
// kConnectRequestHeaders); `name` in lower case.
bool IsGrpcPathRequestHeader(absl::string_view name) {
  return name == "content-type" || name == "x-grpc-web" || name == "x-user-agent" ||
         name == "grpc-timeout" || name == "connect-protocol-version" ||
         name == "connect-timeout-ms" || name == "content-encoding" ||
         name == "accept-encoding" || name == "connect-content-encoding" ||
         name == "connect-accept-encoding";
}

}  // namespace

absl::Status CorsPolicy::Preflight(absl::string_view origin, absl::string_view request_method,
                                   absl::string_view request_headers, Headers* out,
                                   bool grpc_path) const {
  // Client text in the message is cut short and escaped.
  auto quoted = [](absl::string_view text) {
    return absl::StrCat("\"", absl::CEscape(text.substr(0, 100)), "\"");
  };
  if (!AllowsOrigin(origin)) {
    return absl::PermissionDeniedError(
        absl::StrCat("CORS preflight refused: origin ", quoted(origin), " is not allowed"));
  }
  if (!methods_.contains(request_method)) {
    return absl::PermissionDeniedError(
        absl::StrCat("CORS preflight refused: method ", quoted(request_method),
                     " is not allowed (allowed: ", methods_text_, ")"));
  }
  for (absl::string_view h : absl::StrSplit(request_headers, ',', absl::SkipWhitespace())) {
    const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(h));
    if (name.empty() || headers_.contains(name)) continue;
    if (grpc_path && IsGrpcPathRequestHeader(name)) continue;
    return absl::PermissionDeniedError(absl::StrCat(
        "CORS preflight refused: header ", quoted(name), " is not allowed (allowed: ",
        grpc_path ? grpc_path_headers_text_ : headers_text_, ")"));
  }
  out->emplace_back("access-control-allow-origin", any_origin_ ? "*" : std::string(origin));
  out->emplace_back("access-control-allow-methods", methods_text_);
  out->emplace_back("access-control-allow-headers",
                    grpc_path ? grpc_path_headers_text_ : headers_text_);
  if (!max_age_text_.empty()) out->emplace_back("access-control-max-age", max_age_text_);
  if (allow_credentials_) out->emplace_back("access-control-allow-credentials", "true");
  out->emplace_back("vary", "Origin");
  return absl::OkStatus();
}

void CorsPolicy::AddResponseHeaders(absl::string_view origin, Headers* out,
                                    bool grpc_web) const {
  out->emplace_back("access-control-allow-origin", any_origin_ ? "*" : std::string(origin));
  if (allow_credentials_) out->emplace_back("access-control-allow-credentials", "true");
  if (grpc_web) {
    out->emplace_back("access-control-expose-headers", grpc_web_exposed_text_);
  } else if (!exposed_text_.empty()) {
    out->emplace_back("access-control-expose-headers", exposed_text_);
  }
  if (!any_origin_) out->emplace_back("vary", "Origin");
}

void CorsPolicy::AddConnectResponseHeaders(absl::string_view origin, Headers* out) const {
  out->emplace_back("access-control-allow-origin", any_origin_ ? "*" : std::string(origin));
  if (allow_credentials_) out->emplace_back("access-control-allow-credentials", "true");
  out->emplace_back("access-control-expose-headers", connect_exposed_text_);
  if (!any_origin_) out->emplace_back("vary", "Origin");
}

}  // namespace gateway::http
