#include "gateway/openapi/openapi_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::openapi {
namespace {

using ::testing::HasSubstr;

std::string TestDescriptorSet() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  std::ifstream in(absl::StrCat(srcdir ? srcdir : ".", "/",
                                workspace ? workspace : "grpc_gateway",
                                "/gateway/openapi/testdata/openapi_test_proto.pb"),
                   std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

absl::Status SettingsError(const std::string& path, const std::string& prefix) {
  config::v1::Config config;
  if (!path.empty()) config.mutable_http_listener()->mutable_openapi()->set_path(path);
  if (!prefix.empty()) {
    config.mutable_http_listener()->mutable_openapi()->set_service_path_prefix(prefix);
  }
  return OpenApiSettingsFromConfig(config).status();
}

TEST(OpenApiSettings, DefaultsAndTheTranscodingOptionsTheSchemasFollow) {
  config::v1::Config config;
  config.mutable_http_listener()->mutable_transcoding()->set_use_proto_field_names(true);
  config.mutable_http_listener()->mutable_transcoding()->set_stream_format(
      config::v1::HttpTranscoding::NDJSON);
  config.mutable_auth()->add_rules()->add_selectors("*");
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->enabled);
  EXPECT_EQ(s->path, "/openapi.json");
  EXPECT_EQ(s->service_path_prefix, "/openapi/");
  EXPECT_EQ(s->document.title, "gatewayd");
  EXPECT_EQ(s->document.version, "1");
  EXPECT_TRUE(s->document.use_proto_field_names);
  EXPECT_EQ(s->document.default_stream_format, transcoder::StreamFormat::kNdjson);
  EXPECT_EQ(s->document.auth.rules_size(), 1);
}

TEST(OpenApiSettings, DisabledAndCustomPaths) {
  config::v1::Config config;
  config::v1::HttpOpenApi* o = config.mutable_http_listener()->mutable_openapi();
  o->set_disabled(true);
  o->set_path("/api/spec.json");
  o->set_service_path_prefix("/api/specs/");
  o->set_title("Books");
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->enabled);
  EXPECT_EQ(s->path, "/api/spec.json");
  EXPECT_EQ(s->service_path_prefix, "/api/specs/");
  EXPECT_EQ(s->document.title, "Books");
}

TEST(OpenApiSettings, BadPathsAreRefusedNamingTheKey) {
  absl::Status s = SettingsError("openapi.json", "");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("http_listener.openapi.path: \"openapi.json\" must start"));
  EXPECT_THAT(SettingsError("/a?b", "").message(), HasSubstr("may not hold '?'"));
  EXPECT_THAT(SettingsError("/healthz", "").message(), HasSubstr("taken by the health check"));
  EXPECT_THAT(SettingsError("", "/docs").message(),
              HasSubstr("http_listener.openapi.service_path_prefix: \"/docs\" must end with"));
  EXPECT_THAT(SettingsError("/openapi/all.json", "").message(),
              HasSubstr("lies under service_path_prefix"));
}

TEST(OpenApiFromDescriptorSet, DocumentOfOneService) {
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config::v1::Config());
  ASSERT_TRUE(s.ok());
  absl::StatusOr<std::string> doc =
      OpenApiFromDescriptorSet(TestDescriptorSet(), "gateway.openapi.testing.Notes", *s);
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_THAT(*doc, HasSubstr("\"title\": \"gateway.openapi.testing.Notes\""));
  EXPECT_THAT(*doc, HasSubstr("\"/v1/shelves/{shelf}/notes\""));
}

TEST(OpenApiFromDescriptorSet, UnknownServiceAndBadBytes) {
  OpenApiSettings s;
  absl::StatusOr<std::string> missing =
      OpenApiFromDescriptorSet(TestDescriptorSet(), "no.such.Service", s);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no service named no.such.Service"));
  absl::StatusOr<std::string> bad = OpenApiFromDescriptorSet("not a set", "x.Y", s);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gateway::openapi
