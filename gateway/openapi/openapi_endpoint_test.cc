#include "gateway/openapi/openapi_endpoint.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/descriptor_sets.h"
#include "gateway/route_table.h"
#include "gateway/upstream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::openapi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kService[] = "gateway.openapi.testing.Notes";

std::shared_ptr<const google::protobuf::DescriptorPool> Pool() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  DescriptorSetBuilder builder;
  absl::Status added = builder.AddFile(
      absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "grpc_gateway",
                   "/gateway/openapi/testdata/openapi_test_proto.pb"));
  EXPECT_TRUE(added.ok()) << added;
  absl::StatusOr<std::shared_ptr<const google::protobuf::DescriptorPool>> pool = builder.Build();
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *pool;
}

// A table serving the test service, or (with_service = false) nothing.
std::shared_ptr<const RouteTable> Table(bool with_service) {
  config::v1::Backend config;
  config.set_name("notes");
  config.set_target("dns:///127.0.0.1:1");
  absl::StatusOr<std::shared_ptr<Backend>> backend =
      Backend::Create(config, config::v1::Limits(), "", "backends[0]");
  EXPECT_TRUE(backend.ok()) << backend.status();
  std::vector<ServiceBinding> services;
  if (with_service) services.push_back({kService, *backend});
  absl::StatusOr<std::shared_ptr<const RouteTable>> table =
      RouteTable::Create(Pool(), services);
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

// Hands `table` to the endpoint's generator and waits for its documents.
void Ready(const OpenApiEndpoint& endpoint, const std::shared_ptr<const RouteTable>& table) {
  endpoint.Prepare(table);
  ASSERT_TRUE(endpoint.WaitReady(table, absl::Seconds(30)));
}

OpenApiSettings Settings() {
  absl::StatusOr<OpenApiSettings> s = OpenApiSettingsFromConfig(config::v1::Config());
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(OpenApiEndpoint, ServesTheWholeDocumentAndOnePerService) {
  OpenApiEndpoint endpoint(Settings());
  std::shared_ptr<const RouteTable> table = Table(true);
  Ready(endpoint, table);
  std::optional<OpenApiEndpoint::Response> all = endpoint.Serve("/openapi.json", table);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->status, 200);
  EXPECT_EQ(all->content_type, "application/json");
  EXPECT_THAT(all->body, HasSubstr("\"title\": \"gatewayd\""));
  EXPECT_THAT(all->body, HasSubstr("\"/v1/shelves/{shelf}/notes\""));

  std::optional<OpenApiEndpoint::Response> one =
      endpoint.Serve(absl::StrCat("/openapi/", kService, ".json"), table);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->status, 200);
  EXPECT_THAT(one->body, HasSubstr(absl::StrCat("\"title\": \"", kService, "\"")));
}

TEST(OpenApiEndpoint, UnknownServiceIs404AndOtherPathsAreNotItsOwn) {
  OpenApiEndpoint endpoint(Settings());
  std::shared_ptr<const RouteTable> table = Table(true);
  std::optional<OpenApiEndpoint::Response> missing =
      endpoint.Serve("/openapi/no.such.Service.json", table);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);
  EXPECT_THAT(missing->body, HasSubstr("no service named no.such.Service is served"));
  EXPECT_FALSE(endpoint.Serve("/v1/notes", table).has_value());
  EXPECT_FALSE(endpoint.Serve("/openapi/", table).has_value());
  EXPECT_FALSE(endpoint.Serve("/openapi/.json", table).has_value());
}

TEST(OpenApiEndpoint, DisabledServesNothing) {
  OpenApiSettings settings = Settings();
  settings.enabled = false;
  OpenApiEndpoint endpoint(settings);
  std::shared_ptr<const RouteTable> table = Table(true);
  endpoint.Prepare(table);
  EXPECT_FALSE(endpoint.Serve("/openapi.json", table).has_value());
  // Nothing was generated.
  EXPECT_FALSE(endpoint.WaitReady(nullptr, absl::Milliseconds(100)));
}

TEST(OpenApiEndpoint, ServeNeverGeneratesAndAnswers503UntilADocumentIsReady) {
  OpenApiEndpoint endpoint(Settings());
  std::shared_ptr<const RouteTable> table = Table(true);
  // No table was prepared: Serve answers from ready documents only, so there is none.
  for (const std::string& path : {std::string("/openapi.json"),
                                 absl::StrCat("/openapi/", kService, ".json")}) {
    std::optional<OpenApiEndpoint::Response> r = endpoint.Serve(path, table);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, 503) << path;
    EXPECT_EQ(r->retry_after_seconds, 1) << path;
    EXPECT_THAT(r->body, HasSubstr("\"code\":14")) << path;
    EXPECT_THAT(r->body, HasSubstr("is being generated for the current routes; retry in a second"))
        << path;
  }
  EXPECT_FALSE(endpoint.WaitReady(nullptr, absl::Milliseconds(100)));
  Ready(endpoint, table);
  std::optional<OpenApiEndpoint::Response> r = endpoint.Serve("/openapi.json", table);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->retry_after_seconds, 0);
  EXPECT_THAT(r->body, HasSubstr("/v1/shelves/{shelf}/notes"));
}

TEST(OpenApiEndpoint, ThePreviousTablesDocumentIsServedUntilTheNewOneIsReady) {
  OpenApiEndpoint endpoint(Settings());
  std::shared_ptr<const RouteTable> empty = Table(false);
  Ready(endpoint, empty);
  // A call served with a table whose documents are not generated yet (not even handed
  // over) gets the previous table's document, not a stall.
  std::shared_ptr<const RouteTable> full = Table(true);
  std::optional<OpenApiEndpoint::Response> stale = endpoint.Serve("/openapi.json", full);
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(stale->status, 200);
  EXPECT_THAT(stale->body, Not(HasSubstr("/v1/notes")));
  // A service the previous documents do not have: 503, naming it.
  std::optional<OpenApiEndpoint::Response> one =
      endpoint.Serve(absl::StrCat("/openapi/", kService, ".json"), full);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->status, 503);
  EXPECT_EQ(one->retry_after_seconds, 1);
  EXPECT_THAT(one->body, HasSubstr(absl::StrCat("the OpenAPI document of ", kService,
                                                " is being generated")));
  Ready(endpoint, full);
  EXPECT_THAT(endpoint.Serve("/openapi.json", full)->body, HasSubstr("/v1/notes"));
  EXPECT_EQ(endpoint.Serve(absl::StrCat("/openapi/", kService, ".json"), full)->status, 200);
  // A call that still holds the old table gets the newest document.
  EXPECT_THAT(endpoint.Serve("/openapi.json", empty)->body, HasSubstr("/v1/notes"));
}

TEST(OpenApiEndpoint, TablesHandedOverWhileOneIsGeneratedCollapseIntoTheLatest) {
  OpenApiEndpoint endpoint(Settings());
  std::shared_ptr<const RouteTable> last;
  for (int i = 0; i < 5; ++i) {
    last = Table(i % 2 == 0);
    endpoint.Prepare(last);
  }
  Ready(endpoint, last);
  EXPECT_THAT(endpoint.Serve("/openapi.json", last)->body, HasSubstr("/v1/notes"));
}

TEST(OpenApiEndpoint, ServesTheDocsPageAndItsFiles) {
  OpenApiSettings settings = Settings();
  settings.docs_path = "/docs/";
  settings.docs_files[""] = {"text/html; charset=utf-8", "<html>page</html>"};
  settings.docs_files["swagger-ui.css"] = {"text/css; charset=utf-8", "body {}"};
  OpenApiEndpoint endpoint(settings);
  std::shared_ptr<const RouteTable> table = Table(true);
  Ready(endpoint, table);
  for (const char* path : {"/docs/", "/docs"}) {
    std::optional<OpenApiEndpoint::Response> page = endpoint.Serve(path, table);
    ASSERT_TRUE(page.has_value()) << path;
    EXPECT_EQ(page->status, 200);
    EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
    EXPECT_EQ(page->body, "<html>page</html>");
  }
  std::optional<OpenApiEndpoint::Response> css = endpoint.Serve("/docs/swagger-ui.css", table);
  ASSERT_TRUE(css.has_value());
  EXPECT_EQ(css->body, "body {}");
  EXPECT_FALSE(endpoint.Serve("/docs/other.js", table).has_value());
  EXPECT_FALSE(endpoint.Serve("/docsx", table).has_value());
  // The documents are still served.
  EXPECT_EQ(endpoint.Serve("/openapi.json", table)->status, 200);
}

TEST(OpenApiEndpoint, ANewRouteTableGetsANewDocument) {
  OpenApiEndpoint endpoint(Settings());
  std::shared_ptr<const RouteTable> empty = Table(false);
  Ready(endpoint, empty);
  std::optional<OpenApiEndpoint::Response> before = endpoint.Serve("/openapi.json", empty);
  ASSERT_TRUE(before.has_value());
  EXPECT_THAT(before->body, Not(HasSubstr("/v1/notes")));
  std::shared_ptr<const RouteTable> full = Table(true);
  Ready(endpoint, full);
  std::optional<OpenApiEndpoint::Response> after = endpoint.Serve("/openapi.json", full);
  ASSERT_TRUE(after.has_value());
  EXPECT_THAT(after->body, HasSubstr("/v1/notes"));
  // The same table again: the cached bytes.
  EXPECT_EQ(endpoint.Serve("/openapi.json", full)->body, after->body);
}

}  // namespace
}  // namespace gateway::openapi
