#include "gateway/openapi/openapi_config.h"

#include <cstdlib>
#include <filesystem>
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

// A directory with stand-ins for Swagger UI's files.
std::string AssetsDirectory() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/swagger-ui-assets");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/swagger-ui-bundle.js") << "var SwaggerUIBundle = 1;";
  std::ofstream(dir + "/swagger-ui.css") << "body {}";
  return dir;
}

TEST(OpenApiDocsPage, LoadsTheAssetsAndBuildsThePage) {
  config::v1::Config config;
  config::v1::HttpOpenApi* o = config.mutable_http_listener()->mutable_openapi();
  o->set_docs_path("/docs/");
  o->set_docs_assets_directory(AssetsDirectory());
  o->set_title("Books <&>");
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(LoadDocsPage(config, "", &*s).ok());
  ASSERT_EQ(s->docs_files.size(), 3u);
  EXPECT_EQ(s->docs_files["swagger-ui-bundle.js"].content, "var SwaggerUIBundle = 1;");
  EXPECT_EQ(s->docs_files["swagger-ui.css"].content_type, "text/css; charset=utf-8");
  const std::string& page = s->docs_files[""].content;
  EXPECT_THAT(page, HasSubstr("<title>Books &lt;&amp;&gt;</title>"));
  EXPECT_THAT(page, HasSubstr("<script src=\"/docs/swagger-ui-bundle.js\"></script>"));
  EXPECT_THAT(page, HasSubstr("SwaggerUIBundle({url: \"/openapi.json\""));
}

TEST(OpenApiDocsPage, MissingAssetsAndBadPathsAreRefused) {
  config::v1::Config config;
  config::v1::HttpOpenApi* o = config.mutable_http_listener()->mutable_openapi();
  o->set_docs_path("/docs");
  o->set_docs_assets_directory("assets");
  EXPECT_THAT(OpenApiSettingsFromConfig(config).status().message(),
              HasSubstr("http_listener.openapi.docs_path: \"/docs\" must end with \"/\""));
  o->set_docs_path("/docs/");
  o->clear_docs_assets_directory();
  EXPECT_THAT(OpenApiSettingsFromConfig(config).status().message(),
              HasSubstr("http_listener.openapi.docs_assets_directory: required with docs_path"));
  o->set_docs_assets_directory("no-such-dir");
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::Status loaded = LoadDocsPage(config, "/base", &*s);
  EXPECT_EQ(loaded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.message(),
              HasSubstr("docs_assets_directory: cannot read /base/no-such-dir/swagger-ui-bundle.js"));
}

TEST(OpenApiDocsPage, OffByDefault) {
  config::v1::Config config;
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(LoadDocsPage(config, "", &*s).ok());
  EXPECT_TRUE(s->docs_path.empty());
  EXPECT_TRUE(s->docs_files.empty());
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
