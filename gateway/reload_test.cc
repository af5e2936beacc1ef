#include "gateway/reload.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "gateway/metrics/metrics.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

config::v1::Config Base() {
  config::v1::Config c;
  c.mutable_grpc_listener()->set_address("127.0.0.1:0");
  c.add_backends()->set_name("a");
  c.mutable_http_listener()->set_address("127.0.0.1:0");
  return c;
}

TEST(RestartRequired, NamesListenerAddressesAndNotRoutingChanges) {
  config::v1::Config before = Base();
  config::v1::Config after = before;
  after.mutable_grpc_listener()->set_address("127.0.0.1:1");
  after.add_backends()->set_name("b");
  after.add_services()->set_name("pkg.S");
  after.mutable_auth()->add_rules();
  after.mutable_http_listener()->mutable_transcoding()->set_emit_default_values(true);
  after.mutable_http_listener()->set_worker_threads(3);
  EXPECT_EQ(RestartRequired(before, after, false),
            (std::vector<std::string>{"grpc_listener.address", "http_listener.worker_threads"}));
}

TEST(RestartRequired, HttpTlsOnlyWhenItReloads) {
  config::v1::Config before = Base();
  before.mutable_http_listener()->mutable_tls()->set_cert_file("old.pem");
  config::v1::Config after = before;
  after.mutable_http_listener()->mutable_tls()->set_cert_file("new.pem");
  EXPECT_EQ(RestartRequired(before, after, false),
            std::vector<std::string>{"http_listener.tls"});
  EXPECT_TRUE(RestartRequired(before, after, true).empty());
  // Turning TLS on (or off) needs a restart even then.
  config::v1::Config plain = Base();
  EXPECT_EQ(RestartRequired(plain, after, true), std::vector<std::string>{"http_listener.tls"});
}

TEST(RestartRequired, AddedListenerIsNamedAsAWhole) {
  config::v1::Config before = Base();
  config::v1::Config after = before;
  after.mutable_metrics_listener()->set_address("127.0.0.1:9");
  EXPECT_EQ(RestartRequired(before, after, false),
            std::vector<std::string>{"metrics_listener"});
  EXPECT_TRUE(RestartRequired(before, before, false).empty());
}

TEST(RedactedConfigJson, HidesSecretValuesAndUriUserInfoButKeepsFileNames) {
  config::v1::Config c = Base();
  c.mutable_admin_listener()->set_token_file("/etc/gatewayd/admin.token");
  auto* provider = c.mutable_auth()->add_jwt_providers();
  provider->set_jwks_uri("https://user:s3cret@idp.example/jwks");
  const std::string json = RedactedConfigJson(c);
  EXPECT_TRUE(absl::StrContains(json, "/etc/gatewayd/admin.token")) << json;
  EXPECT_FALSE(absl::StrContains(json, "s3cret")) << json;
  // JSON escapes '<' and '>'.
  EXPECT_TRUE(absl::StrContains(json, "https://\\u003credacted\\u003e@idp.example/jwks"))
      << json;
  EXPECT_TRUE(absl::StrContains(json, "\"grpc_listener\"")) << json;
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigReloader, RefusesABadFileKeepsTheOldConfigAndCounts) {
  const std::string path = WriteFile("bad.yaml", "grpc_listener: {address: \"127.0.0.1:0\"}\n");
  auto initial = std::make_shared<GatewayConfig>();
  metrics::MetricRegistry registry;
  int applied = 0;
  ConfigReloader reloader(
      path, initial, &registry,
      [&applied](const std::shared_ptr<const GatewayConfig>&, std::vector<std::string>*) {
        ++applied;
        return absl::OkStatus();
      },
      nullptr, false);
  WriteFile("bad.yaml", "grpc_listener: {address: \"127.0.0.1:0\"}\nno_such_key: 1\n");
  absl::StatusOr<ConfigReloader::Result> r = reloader.Reload();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "reload refused: invalid config: " + path))
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "no_such_key")) << r.status();
  EXPECT_EQ(applied, 0);
  EXPECT_EQ(reloader.current(), initial);
  EXPECT_EQ(reloader.stats().refused, 1);
  EXPECT_TRUE(absl::StrContains(registry.Render(),
                                "gateway_config_reloads_total{result=\"refused\"} 1"))
      << registry.Render();
}

TEST(ConfigReloader, RefusesWhatTheStartTimeCheckRefuses) {
  const std::string path = WriteFile("ok.yaml",
                                     "grpc_listener: {address: \"127.0.0.1:0\"}\n"
                                     "admin_listener: {address: \"127.0.0.1:0\"}\n");
  auto initial = std::make_shared<GatewayConfig>();
  ConfigReloader reloader(
      path, initial, nullptr,
      [](const std::shared_ptr<const GatewayConfig>&, std::vector<std::string>*) {
        return absl::OkStatus();
      },
      [](const GatewayConfig&) {
        return absl::InvalidArgumentError("grpc_listener.tls.cert_file: no such file");
      },
      false);
  absl::StatusOr<ConfigReloader::Result> r = reloader.Reload();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "reload refused: invalid config " + path +
                                      ": grpc_listener.tls.cert_file: no such file");
  EXPECT_EQ(reloader.current(), initial);
}

}  // namespace
}  // namespace gateway
