// Fuzz target: an HTTP/1.1 request as the HTTP front end reads and checks it, from raw
// bytes: Boost.Beast's request parser with the server's limits, the header count limit,
// then CheckRequestTarget, ParseGrpcTimeout and IsValidMetadataValue (request_checks.h)
// and the CORS origin checks (cors.h) on what parsed.
//
// The parser is set up as HttpServer's connections set it up (http_server.cc, private to
// the server): header_limit(max_header_bytes), body_limit(max_body_bytes), head read
// first, then the body, and more than max_header_count fields refused. The limits are
// replicated here: the server's defaults (HttpServer::Options), and tight ones that small
// inputs can exceed. Each input is parsed whole and again fed in small pieces, as a socket
// delivers it; both must give the same request.
//
// Beast applies header_limit to the request line and to the header fields separately when
// a whole head arrives in one read, so a head of up to about twice the limit gets through
// (found by this target). The size of the head is therefore checked here as the documented
// limit says: more than max_header_bytes is refused however the bytes arrive.
//
// Besides not crashing, the checked properties are: a target that CheckRequestTarget
// accepts starts with '/', is split at its first '?', and has no "." or ".." segment, no
// %00 and (unless allowed) no %2F; allowing encoded slashes never refuses more; a parsed
// grpc-timeout is not negative; a preflight is only answered for an allowed origin, and no
// CORS response header value can carry CR, LF or NUL.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/http.hpp"
#include "gateway/http/cors.h"
#include "gateway/http/request_checks.h"

namespace {

namespace bhttp = boost::beast::http;

using gateway::http::CorsPolicy;

struct Limits {
  uint32_t max_header_bytes;
  uint32_t max_body_bytes;
  uint32_t max_header_count;
};

// HttpServer::Options' defaults, and limits small enough for fuzzed inputs to cross.
constexpr Limits kServerDefaults = {16 << 10, 4 << 20, 100};
constexpr Limits kTight = {256, 64, 4};

// What a parse produced, for comparing the whole and the piecewise parse.
struct Parsed {
  boost::beast::error_code ec;
  bool done = false;
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
};

absl::string_view SV(boost::beast::string_view s) { return absl::string_view(s.data(), s.size()); }

void Fail(const char* what, absl::string_view detail) {
  std::fprintf(stderr, "%s: \"%.*s\"\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Feeds `input` to a parser in pieces of at most `piece` bytes, keeping unconsumed bytes in
// front of the next piece as a connection's buffer does; at the end of the input, EOF.
// The head is read first; more than max_header_count fields stop the request there.
Parsed Parse(absl::string_view input, const Limits& limits, std::size_t piece) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(limits.max_header_bytes);
  parser.body_limit(limits.max_body_bytes);
  Parsed out;
  std::string buffer;
  std::size_t offset = 0;
  std::size_t consumed = 0;
  bool head_checked = false;
  while (!parser.is_done()) {
    if (offset < input.size()) {
      const std::size_t n = std::min(piece, input.size() - offset);
      buffer.append(input.data() + offset, n);
      offset += n;
    }
    bool progress = true;
    while (progress && !buffer.empty() && !parser.is_done()) {
      const std::size_t used =
          parser.put(boost::asio::buffer(buffer.data(), buffer.size()), out.ec);
      buffer.erase(0, used);
      consumed += used;
      progress = used > 0;
      if (out.ec == bhttp::error::need_more) {
        out.ec = {};
        break;
      }
      if (out.ec) return out;
      if (parser.is_header_done() && !head_checked) {
        head_checked = true;
        if (consumed > limits.max_header_bytes) {  // the parser stops right after the head
          out.ec = bhttp::error::header_limit;
          return out;
        }
        std::size_t count = 0;
        for (auto it = parser.get().begin(); it != parser.get().end(); ++it) ++count;
        if (count > limits.max_header_count) {
          out.ec = bhttp::error::header_limit;  // answered 431 by the server
          return out;
        }
      }
    }
    if (offset >= input.size() && !parser.is_done()) {
      if (!parser.got_some()) {  // as beast::http::read: nothing came before the end
        out.ec = bhttp::error::end_of_stream;
        return out;
      }
      parser.put_eof(out.ec);
      if (out.ec) return out;
      if (!parser.is_done()) {
        out.ec = bhttp::error::partial_message;
        return out;
      }
    }
  }
  out.done = true;
  const auto& req = parser.get();
  out.method = std::string(SV(req.method_string()));
  out.target = std::string(SV(req.target()));
  for (const auto& field : req) {
    out.fields.emplace_back(std::string(SV(field.name_string())), std::string(SV(field.value())));
  }
  out.body = req.body();
  return out;
}

bool SameRequest(const Parsed& a, const Parsed& b) {
  return a.done == b.done && a.method == b.method && a.target == b.target &&
         a.fields == b.fields && a.body == b.body;
}

void CheckTarget(absl::string_view target) {
  const auto strict = gateway::http::CheckRequestTarget(target, false);
  const auto lax = gateway::http::CheckRequestTarget(target, true);
  if (strict.ok() && !lax.ok()) Fail("allowing encoded slashes refused a target", target);
  for (const bool allow_slashes : {false, true}) {
    const auto& checked = allow_slashes ? lax : strict;
    if (!checked.ok()) {
      if (checked.status().code() != absl::StatusCode::kInvalidArgument) {
        Fail("unexpected status code for target", target);
      }
      continue;
    }
    const absl::string_view path = checked->path;
    if (path.empty() || path[0] != '/') Fail("accepted path does not start with '/'", target);
    if (path.data() != target.data()) Fail("path is not a view of the target", target);
    if (path.size() < target.size()) {
      if (target[path.size()] != '?' || checked->query != target.substr(path.size() + 1)) {
        Fail("target not split at its first '?'", target);
      }
    } else if (!checked->query.empty()) {
      Fail("query without '?'", target);
    }
    if (absl::StrContains(path, "?")) Fail("'?' in an accepted path", target);
    const std::string lower = absl::AsciiStrToLower(path);
    if (absl::StrContains(lower, "%00")) Fail("encoded NUL in an accepted path", target);
    if (!allow_slashes && absl::StrContains(lower, "%2f")) {
      Fail("encoded slash in an accepted path", target);
    }
    for (absl::string_view segment : absl::StrSplit(absl::string_view(lower).substr(1), '/')) {
      const std::string decoded = absl::StrReplaceAll(segment, {{"%2e", "."}});
      if (decoded == "." || decoded == "..") Fail("dot segment in an accepted path", target);
    }
  }
}

void CheckCorsHeaders(const CorsPolicy::Headers& headers, absl::string_view origin) {
  for (const auto& [name, value] : headers) {
    if (value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      Fail("CORS header value with CR, LF or NUL for origin", origin);
    }
  }
}

// A policy like a config's http_listener.cors, built once for all inputs.
const CorsPolicy& Cors() {
  static const std::shared_ptr<const CorsPolicy> policy = [] {
    gateway::http::CorsOptions options;
    options.allowed_origins = {"https://app.example.com", "http://localhost:3000"};
    options.allowed_origin_patterns = {R"(https://[a-z0-9-]+\.example\.org)"};
    options.allowed_headers = {"authorization", "x-request-id"};
    options.exposed_headers = {"x-trace"};
    options.max_age = absl::Minutes(10);
    options.allow_credentials = true;
    absl::StatusOr<std::shared_ptr<const CorsPolicy>> created = CorsPolicy::Create(options);
    if (!created.ok()) std::abort();
    return *std::move(created);
  }();
  return *policy;
}

void CheckRequest(const Parsed& request) {
  CheckTarget(request.target);
  absl::string_view origin;
  absl::string_view preflight_method;
  absl::string_view preflight_headers;
  for (const auto& [name, value] : request.fields) {
    if (gateway::http::IsValidMetadataValue(value) &&
        value.find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      Fail("metadata value with CR, LF or NUL accepted", value);
    }
    if (absl::EqualsIgnoreCase(name, "grpc-timeout")) {
      const auto timeout = gateway::http::ParseGrpcTimeout(value);
      if (timeout.ok() && *timeout < absl::ZeroDuration()) Fail("negative grpc-timeout", value);
    } else if (absl::EqualsIgnoreCase(name, "origin")) {
      origin = value;
    } else if (absl::EqualsIgnoreCase(name, "access-control-request-method")) {
      preflight_method = value;
    } else if (absl::EqualsIgnoreCase(name, "access-control-request-headers")) {
      preflight_headers = value;
    }
  }
  if (origin.empty()) return;
  const CorsPolicy& cors = Cors();
  const bool allowed = cors.AllowsOrigin(origin);
  for (const bool grpc_web : {false, true}) {
    CorsPolicy::Headers headers;
    if (cors.Preflight(origin, preflight_method, preflight_headers, &headers, grpc_web)) {
      if (!allowed) Fail("preflight answered for an origin that is not allowed", origin);
      CheckCorsHeaders(headers, origin);
    } else if (!headers.empty()) {
      Fail("refused preflight with headers", origin);
    }
    if (allowed) {
      headers.clear();
      cors.AddResponseHeaders(origin, &headers, grpc_web);
      CheckCorsHeaders(headers, origin);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  for (const Limits& limits : {kServerDefaults, kTight}) {
    const Parsed whole = Parse(input, limits, input.size() + 1);
    const Parsed pieces = Parse(input, limits, 7);
    if (!SameRequest(whole, pieces)) Fail("parsed whole and in pieces differently", input);
    if (whole.done) CheckRequest(whole);
  }
  return 0;
}
