#include "gateway/http/cors.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::http {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

std::shared_ptr<const CorsPolicy> Policy(CorsOptions o) {
  absl::StatusOr<std::shared_ptr<const CorsPolicy>> p = CorsPolicy::Create(o);
  EXPECT_TRUE(p.ok()) << p.status();
  return *p;
}

TEST(CorsPolicy, ExactOriginsAndPatterns) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example.com"};
  o.allowed_origin_patterns = {R"(https://[a-z0-9-]+\.preview\.example\.com)"};
  auto p = Policy(o);
  EXPECT_TRUE(p->AllowsOrigin("https://app.example.com"));
  EXPECT_TRUE(p->AllowsOrigin("HTTPS://APP.example.com"));
  EXPECT_TRUE(p->AllowsOrigin("https://pr-12.preview.example.com"));
  EXPECT_FALSE(p->AllowsOrigin("https://pr-12.preview.example.com.evil.net"));
  EXPECT_FALSE(p->AllowsOrigin("https://evil.net"));
  EXPECT_FALSE(p->AllowsOrigin("http://app.example.com"));
  EXPECT_FALSE(p->AllowsOrigin(""));
}

TEST(CorsPolicy, PreflightChecksMethodAndHeaders) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example.com"};
  o.allowed_methods = {"GET", "post"};
  o.allowed_headers = {"Content-Type", "x-request-id"};
  o.max_age = absl::Minutes(10);
  o.allow_credentials = true;
  auto p = Policy(o);
  CorsPolicy::Headers h;
  ASSERT_TRUE(
      p->Preflight("https://app.example.com", "POST", "content-type, X-Request-Id", &h).ok());
  EXPECT_THAT(h, Contains(Pair("access-control-allow-origin", "https://app.example.com")));
  EXPECT_THAT(h, Contains(Pair("access-control-allow-methods", "GET, POST")));
  EXPECT_THAT(h, Contains(Pair("access-control-allow-headers",
                               "content-type, x-request-id, accept, accept-language, "
                               "content-language, range")));
  EXPECT_THAT(h, Contains(Pair("access-control-max-age", "600")));
  EXPECT_THAT(h, Contains(Pair("access-control-allow-credentials", "true")));
  h.clear();
  EXPECT_FALSE(p->Preflight("https://app.example.com", "DELETE", "", &h).ok());
  EXPECT_FALSE(p->Preflight("https://app.example.com", "GET", "authorization", &h).ok());
  EXPECT_FALSE(p->Preflight("https://evil.net", "GET", "", &h).ok());
  EXPECT_TRUE(h.empty());
}

TEST(CorsPolicy, SafelistedHeadersAndContentTypeNeedNoConfig) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example.com"};
  auto p = Policy(o);
  CorsPolicy::Headers h;
  // What a browser sends before a JSON POST (content-type is not safelisted for
  // application/json, so it is listed in the preflight).
  ASSERT_TRUE(p->Preflight("https://app.example.com", "POST",
                           "Content-Type, accept, Accept-Language, content-language, range", &h)
                  .ok());
  EXPECT_THAT(h, Contains(Pair("access-control-allow-headers",
                               "accept, accept-language, content-language, content-type, "
                               "range")));
}

TEST(CorsPolicy, RefusalSaysWhatWasRefused) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example.com"};
  o.allowed_methods = {"GET", "POST"};
  o.allowed_headers = {"x-request-id"};
  auto p = Policy(o);
  CorsPolicy::Headers h;
  absl::Status s = p->Preflight("https://evil.net", "GET", "", &h);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "CORS preflight refused: origin \"https://evil.net\" is not allowed");
  s = p->Preflight("https://app.example.com", "DELETE", "", &h);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "CORS preflight refused: method \"DELETE\" is not allowed (allowed: GET, POST)");
  s = p->Preflight("https://app.example.com", "POST", "content-type, X-Secret", &h);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("CORS preflight refused: header \"x-secret\" is not "
                                     "allowed (allowed: x-request-id, accept,"));
  // Client text is escaped and cut short.
  s = p->Preflight(std::string(300, 'a') + "\n", "GET", "", &h);
  EXPECT_THAT(s.message(), Not(HasSubstr("\n")));
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_TRUE(h.empty());
}

TEST(CorsPolicy, ActualResponseHeaders) {
  CorsOptions o;
  o.allowed_origins = {"*"};
  o.exposed_headers = {"x-echo-initial"};
  auto p = Policy(o);
  EXPECT_TRUE(p->AllowsOrigin("https://anything.example"));
  CorsPolicy::Headers h;
  p->AddResponseHeaders("https://anything.example", &h);
  EXPECT_THAT(h, Contains(Pair("access-control-allow-origin", "*")));
  EXPECT_THAT(h, Contains(Pair("access-control-expose-headers", "x-echo-initial")));
}

TEST(CorsPolicy, GrpcWebPreflightAllowsTheGrpcWebHeaders) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example"};
  o.allowed_methods = {"POST"};
  o.allowed_headers = {"authorization"};
  auto p = Policy(o);
  CorsPolicy::Headers h;
  const char* kRequested = "content-type,x-grpc-web,x-user-agent,grpc-timeout,authorization";
  EXPECT_FALSE(p->Preflight("https://app.example", "POST", kRequested, &h).ok());
  EXPECT_TRUE(
      p->Preflight("https://app.example", "POST", kRequested, &h, /*grpc_path=*/true).ok());
  EXPECT_THAT(h, Contains(Pair("access-control-allow-headers",
                               "authorization, accept, accept-language, content-language, "
                               "content-type, range, x-grpc-web, x-user-agent, grpc-timeout, "
                               "connect-protocol-version, connect-timeout-ms, "
                               "content-encoding, accept-encoding, connect-content-encoding, "
                               "connect-accept-encoding")));
  h.clear();
  EXPECT_FALSE(
      p->Preflight("https://app.example", "POST", "x-grpc-web, cookie", &h, true).ok());
  EXPECT_TRUE(h.empty());
}

TEST(CorsPolicy, GrpcWebResponsesExposeTheStatusHeaders) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example"};
  auto p = Policy(o);
  CorsPolicy::Headers h;
  p->AddResponseHeaders("https://app.example", &h, /*grpc_web=*/true);
  EXPECT_THAT(h, Contains(Pair("access-control-expose-headers", "grpc-status, grpc-message")));
  o.exposed_headers = {"x-echo-initial"};
  p = Policy(o);
  h.clear();
  p->AddResponseHeaders("https://app.example", &h, /*grpc_web=*/true);
  EXPECT_THAT(h, Contains(Pair("access-control-expose-headers",
                               "grpc-status, grpc-message, x-echo-initial")));
}

TEST(CorsPolicy, GrpcPathPreflightAllowsTheConnectHeaders) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example"};
  o.allowed_methods = {"GET", "POST"};
  auto p = Policy(o);
  CorsPolicy::Headers h;
  // What connect-web asks for before a unary POST with a timeout, in the browser's case.
  const char* kRequested = "Connect-Protocol-Version,connect-timeout-ms,content-type";
  absl::Status s = p->Preflight("https://app.example", "POST", kRequested, &h);
  EXPECT_EQ(s.message(),
            "CORS preflight refused: header \"connect-protocol-version\" is not allowed "
            "(allowed: accept, accept-language, content-language, content-type, range)");
  ASSERT_TRUE(p->Preflight("https://app.example", "POST", kRequested, &h, true).ok());
  EXPECT_THAT(h, Contains(Pair("access-control-allow-headers",
                               "accept, accept-language, content-language, content-type, "
                               "range, x-grpc-web, x-user-agent, grpc-timeout, "
                               "connect-protocol-version, connect-timeout-ms, "
                               "content-encoding, accept-encoding, connect-content-encoding, "
                               "connect-accept-encoding")));
  h.clear();
  EXPECT_TRUE(p->Preflight("https://app.example", "POST",
                           "content-encoding, accept-encoding, connect-content-encoding, "
                           "connect-accept-encoding",
                           &h, true)
                  .ok());
  // Only the protocols' headers come with the path, nothing else.
  h.clear();
  s = p->Preflight("https://app.example", "POST", "connect-protocol-version, connect-x", &h,
                   true);
  EXPECT_THAT(s.message(), HasSubstr("header \"connect-x\" is not allowed"));
  EXPECT_TRUE(h.empty());
}

TEST(CorsPolicy, ConnectResponsesExposeTheCompressionHeaders) {
  CorsOptions o;
  o.allowed_origins = {"https://app.example"};
  o.allow_credentials = true;
  auto p = Policy(o);
  CorsPolicy::Headers h;
  p->AddConnectResponseHeaders("https://app.example", &h);
  EXPECT_THAT(h, Contains(Pair("access-control-allow-origin", "https://app.example")));
  EXPECT_THAT(h, Contains(Pair("access-control-allow-credentials", "true")));
  EXPECT_THAT(h, Contains(Pair("access-control-expose-headers",
                               "content-encoding, connect-content-encoding")));
  EXPECT_THAT(h, Contains(Pair("vary", "Origin")));
  o.exposed_headers = {"trailer-x-echo-trailing", "x-reflect-color"};
  p = Policy(o);
  h.clear();
  p->AddConnectResponseHeaders("https://app.example", &h);
  EXPECT_THAT(h, Contains(Pair("access-control-expose-headers",
                               "content-encoding, connect-content-encoding, "
                               "trailer-x-echo-trailing, x-reflect-color")));
  // gRPC-Web and REST responses keep their own sets.
  h.clear();
  p->AddResponseHeaders("https://app.example", &h, /*grpc_web=*/true);
  EXPECT_THAT(h, Contains(Pair("access-control-expose-headers",
                               "grpc-status, grpc-message, trailer-x-echo-trailing, "
                               "x-reflect-color")));
}

TEST(CorsPolicy, RejectsBadConfig) {
  CorsOptions o;
  o.allowed_origin_patterns = {"(unclosed"};
  EXPECT_THAT(CorsPolicy::Create(o).status().message(), HasSubstr("allowed_origin_patterns[0]"));
  o = {};
  o.allowed_origins = {"*"};
  o.allow_credentials = true;
  EXPECT_THAT(CorsPolicy::Create(o).status().message(), HasSubstr("allow_credentials"));
  o = {};
  o.allowed_origins = {"https://a.example/path"};
  EXPECT_THAT(CorsPolicy::Create(o).status().message(), HasSubstr("scheme://host"));
}

}  // namespace
}  // namespace gateway::http
