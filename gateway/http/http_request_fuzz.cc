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
// delivers it, and both again with the body streamed through a buffer_body parser as
// client-streaming calls read it; all four must give the same request.
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

// A connection's read side: the input arrives in pieces of at most `piece` bytes, and the
// bytes a parser has not consumed stay in front of the next piece (as in the server's
// flat_buffer).
struct Source {
  absl::string_view input;
  std::size_t piece;
  std::size_t offset = 0;
  std::string buffer;
  std::size_t consumed = 0;

  bool Read() {
    if (offset >= input.size()) return false;
    const std::size_t n = std::min(piece, input.size() - offset);
    buffer.append(input.data() + offset, n);
    offset += n;
    return true;
  }
};

// Puts the source's bytes to `parser` until the head is done (`head_only`) or the message
// is, reading more when the parser needs it; at the end of the input, EOF as
// beast::http::read gives it. `window` and `collect` run around each put (a buffer_body's
// window). Returns false with out->ec set on an error.
template <typename Parser, typename Window, typename Collect>
bool Pump(Parser& parser, Source& src, bool head_only, Window window, Collect collect,
          Parsed* out) {
  bool need_more = src.buffer.empty();
  while (!(head_only ? parser.is_header_done() : parser.is_done())) {
    if (need_more && !src.Read()) {
      if (!parser.got_some()) {
        out->ec = bhttp::error::end_of_stream;
        return false;
      }
      parser.put_eof(out->ec);
      if (!out->ec && !parser.is_done()) out->ec = bhttp::error::partial_message;
      return !out->ec;
    }
    window(parser);
    const std::size_t used =
        parser.put(boost::asio::buffer(src.buffer.data(), src.buffer.size()), out->ec);
    collect(parser);
    src.buffer.erase(0, used);
    src.consumed += used;
    need_more = out->ec == bhttp::error::need_more || (used == 0 && !out->ec);
    if (out->ec == bhttp::error::need_more || out->ec == bhttp::error::need_buffer) {
      out->ec = {};
    }
    if (out->ec) return false;
  }
  return true;
}

template <typename Request>
void Fill(const Request& req, std::string body, Parsed* out) {
  out->done = true;
  out->method = std::string(SV(req.method_string()));
  out->target = std::string(SV(req.target()));
  for (const auto& field : req) {
    out->fields.emplace_back(std::string(SV(field.name_string())),
                             std::string(SV(field.value())));
  }
  out->body = std::move(body);
}

// Reads one request from `input` delivered in pieces of at most `piece` bytes, as a
// connection does: the head first (refused beyond max_header_bytes or max_header_count),
// then the body whole (string_body), or, with `stream_body`, through a small window of a
// buffer_body parser that takes over the head's parser (client-streaming calls).
Parsed Parse(absl::string_view input, const Limits& limits, std::size_t piece,
             bool stream_body) {
  Parsed out;
  Source src{input, piece};
  const auto none = [](auto&) {};
  bhttp::request_parser<bhttp::string_body> head;
  head.header_limit(limits.max_header_bytes);
  head.body_limit(limits.max_body_bytes);
  if (!Pump(head, src, /*head_only=*/true, none, none, &out)) return out;
  if (src.consumed > limits.max_header_bytes) {  // the parser stops right after the head
    out.ec = bhttp::error::header_limit;
    return out;
  }
  std::size_t count = 0;
  for (auto it = head.get().begin(); it != head.get().end(); ++it) ++count;
  if (count > limits.max_header_count) {
    out.ec = bhttp::error::header_limit;  // answered 431 by the server
    return out;
  }
  if (!stream_body || head.is_done()) {  // the server streams only a body still to come
    if (!Pump(head, src, /*head_only=*/false, none, none, &out)) return out;
    Fill(head.get(), head.get().body(), &out);
    return out;
  }
  bhttp::request_parser<bhttp::buffer_body> body(std::move(head));
  body.body_limit(limits.max_body_bytes);
  char window[16];
  std::string collected;
  const auto open = [&window](auto& p) {
    p.get().body().data = window;
    p.get().body().size = sizeof(window);
  };
  const auto take = [&window, &collected](auto& p) {
    collected.append(window, sizeof(window) - p.get().body().size);
  };
  if (!Pump(body, src, /*head_only=*/false, open, take, &out)) return out;
  Fill(body.get(), std::move(collected), &out);
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
    if (cors.Preflight(origin, preflight_method, preflight_headers, &headers, grpc_web).ok()) {
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
    const Parsed whole = Parse(input, limits, input.size() + 1, false);
    if (!SameRequest(whole, Parse(input, limits, 7, false))) {
      Fail("parsed whole and in pieces differently", input);
    }
    if (!SameRequest(whole, Parse(input, limits, input.size() + 1, true)) ||
        !SameRequest(whole, Parse(input, limits, 7, true))) {
      Fail("a streamed body differs from the whole body", input);
    }
    if (whole.done) CheckRequest(whole);
  }
  return 0;
}
