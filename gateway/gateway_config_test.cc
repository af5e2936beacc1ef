#include "gateway/gateway_config.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/config/config_loader.h"
#include "google/protobuf/descriptor.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;

std::string TestDir() { return std::getenv("TEST_TMPDIR"); }

std::string EchoSetPath() {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
                      "/tests/testdata/echo_proto.pb");
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

constexpr char kGood[] = R"yaml(
grpc_listener: {address: "127.0.0.1:0"}
descriptor_sets: [ECHO]
backends:
  - {name: echo, target: "dns:///127.0.0.1:1"}
  - {name: spare, target: "ipv4:127.0.0.1:2,127.0.0.1:3"}
services:
  - {name: gateway.test.v1.Echo, backend: echo}
)yaml";

absl::StatusOr<std::shared_ptr<const GatewayConfig>> Compile(std::string text) {
  const std::string echo = EchoSetPath();
  for (std::size_t at; (at = text.find("ECHO")) != std::string::npos;) {
    text.replace(at, 4, echo);
  }
  absl::StatusOr<config::v1::Config> proto = ParseConfigText(text, "test.yaml");
  if (!proto.ok()) return proto.status();
  return CompileConfig(*proto, TestDir());
}

TEST(CompileConfig, BuildsRoutesForEveryMethodWithItsKind) {
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config = Compile(kGood);
  ASSERT_TRUE(config.ok()) << config.status();
  const RouteTable& routes = *(*config)->routes;
  EXPECT_EQ(routes.size(), 5u);
  ASSERT_NE(routes.Find("/gateway.test.v1.Echo/Unary"), nullptr);
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/Unary")->kind, CallKind::kUnary);
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/ServerStream")->kind,
            CallKind::kServerStreaming);
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/ClientStream")->kind,
            CallKind::kClientStreaming);
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/Bidi")->kind, CallKind::kBidiStreaming);
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/Bidi")->backend->name(), "echo");
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/Bidi")->method->full_name(),
            "gateway.test.v1.Echo.Bidi");
  EXPECT_EQ(routes.Find("/gateway.test.v1.Echo/Nope"), nullptr);
  EXPECT_EQ(routes.Find("gateway.test.v1.Echo/Unary"), nullptr);
  EXPECT_EQ((*config)->backends.size(), 2u);
  EXPECT_EQ((*config)->max_message_bytes, 16 * 1024 * 1024);
  EXPECT_EQ((*config)->max_concurrent_streams, 1000);
  EXPECT_EQ((*config)->shutdown_grace, absl::Seconds(10));
  EXPECT_EQ((*config)->busy_poll, absl::ZeroDuration());
  EXPECT_GE((*config)->worker_threads, 1);
}

TEST(CompileConfig, TimeoutHeaderIsLowerCasedAndReservedNamesAreRefused) {
  const std::string http = "http_listener: {address: \"127.0.0.1:0\"}\n";
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config = Compile(kGood + http);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->http.timeout_header, "x-request-timeout");
  config = Compile(kGood + http + "deadlines: {http_timeout_header: X-Call-Timeout}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->http.timeout_header, "x-call-timeout");
  config = Compile(kGood + http + "deadlines: {http_timeout_header: grpc-timeout}\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("deadlines.http_timeout_header"));
}

TEST(CompileConfig, ResolvesDescriptorSetsRelativeToTheConfigDirectory) {
  std::ifstream in(EchoSetPath(), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  WriteFile(TestDir() + "/relative.pb", bytes);
  std::string text = kGood;
  text.replace(text.find("ECHO"), 4, "relative.pb");
  absl::StatusOr<config::v1::Config> proto = ParseConfigText(text, "test.yaml");
  ASSERT_TRUE(proto.ok());
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config =
      CompileConfig(*proto, TestDir());
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST(CompileConfig, BusyPollIsADurationUpTo10ms) {
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config =
      Compile(std::string(kGood) + "runtime: {busy_poll: 150us}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->busy_poll, absl::Microseconds(150));
  config = Compile(std::string(kGood) + "runtime: {busy_poll: 10ms}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->busy_poll, absl::Milliseconds(10));
}

TEST(CompileConfig, WithAnAdminListenerNeedsNoServicesOfItsOwn) {
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config = Compile(
      "grpc_listener: {address: \"127.0.0.1:0\"}\n"
      "descriptor_sets: []\nservices: []\n"
      "backends: [{name: echo, target: \"dns:///127.0.0.1:1\"}]\n"
      "admin_listener: {address: \"127.0.0.1:0\"}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->routes->size(), 0u);
  EXPECT_TRUE((*config)->routes->services().empty());
}

TEST(CompileConfig, WithoutAnAdminListenerSaysWhyServicesAreRequired) {
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config =
      Compile("grpc_listener: {address: \"127.0.0.1:0\"}\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("nothing to serve (add the files of your services here, or an "
                        "admin_listener to serve services registered at run time)"));
  config = Compile(
      "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("services: required: at least one {name, backend} entry; without "
                        "one and without an admin_listener the gateway has nothing to serve"));
}

struct BadCase {
  const char* name;
  const char* text;
  const char* message;
};

class CompileConfigRejects : public ::testing::TestWithParam<BadCase> {
 protected:
  static void SetUpTestSuite() {
    WriteFile(TestDir() + "/garbage.pb", "\xff\xff\xff not a descriptor set");
    google::protobuf::FileDescriptorSet set;
    auto* file = set.add_file();
    file->set_name("orphan.proto");
    file->set_syntax("proto3");
    file->add_dependency("missing/dep.proto");
    WriteFile(TestDir() + "/orphan.pb", set.SerializeAsString());
  }
};

TEST_P(CompileConfigRejects, NamingTheProblem) {
  absl::StatusOr<std::shared_ptr<const GatewayConfig>> config = Compile(GetParam().text);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    BadConfigs, CompileConfigRejects,
    ::testing::Values(
        BadCase{"NoListener", "descriptor_sets: [ECHO]\n",
                "grpc_listener: required"},
        BadCase{"NoAddress", "grpc_listener: {}\n", "grpc_listener.address: required"},
        BadCase{"AddressWithoutPort", "grpc_listener: {address: localhost}\n",
                "grpc_listener.address: \"localhost\" is not HOST:PORT"},
        BadCase{"PortOutOfRange", "grpc_listener: {address: \"1.2.3.4:70000\"}\n",
                "grpc_listener.address: \"1.2.3.4:70000\" has no valid port"},
        BadCase{"TlsWithoutKey",
                "grpc_listener: {address: \"127.0.0.1:0\", tls: {cert_file: c.pem}}\n",
                "grpc_listener.tls.key_file: required"},
        BadCase{"NoDescriptorSets", "grpc_listener: {address: \"127.0.0.1:0\"}\n",
                "descriptor_sets: required"},
        BadCase{"MissingDescriptorFile",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [nope.pb]\n",
                "descriptor_sets[0]: "},
        BadCase{"GarbageDescriptorFile",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [garbage.pb]\n",
                "garbage.pb: not a FileDescriptorSet"},
        BadCase{"UnresolvedImport",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [orphan.pb]\n",
                "\"orphan.proto\" imports \"missing/dep.proto\", which is in no descriptor "
                "set"},
        BadCase{"BackendWithoutName",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{target: \"dns:///x:1\"}]\n",
                "backends[0].name: required"},
        BadCase{"BackendWithoutTarget",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a}]\n",
                "backends[0].target: required"},
        BadCase{"BackendBadScheme",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"http://x:1\"}]\n",
                "backends[0].target: \"http://x:1\": unsupported scheme"},
        BadCase{"ZeroWeight",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"ipv4:127.0.0.1:1\", weights: [0]}]\n",
                "backends[0].weights[0]: must be 1 to 1000"},
        BadCase{"WeightsDoNotMatchAddresses",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"ipv4:127.0.0.1:1\", weights: [1, 2]}]\n",
                "backends[0]: "},
        BadCase{"KeepaliveWithoutInterval",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\", keepalive: {timeout: 1s}}]\n",
                "backends[0].keepalive.interval: required, at least 1s"},
        BadCase{"EjectionCapBelowBase",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\", outlier_detection: "
                "{base_ejection_time: 10s, max_ejection_time: 1s}}]\n",
                "backends[0].outlier_detection.max_ejection_time: at least base_ejection_time"},
        BadCase{"RetryOneAttempt",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n"
                "services: [{name: gateway.test.v1.Echo, backend: a}]\n"
                "retries: {rules: [{selectors: [\"*\"], max_attempts: 1}]}\n",
                "retries.rules[0].max_attempts: 2 to 10"},
        BadCase{"RetryUnknownCode",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n"
                "services: [{name: gateway.test.v1.Echo, backend: a}]\n"
                "retries: {rules: [{selectors: [\"*\"], max_attempts: 3, retry_on: [NOPE]}]}\n",
                "retries.rules[0].retry_on[0]: \"NOPE\" is not a gRPC status code name"},
        BadCase{"RetryNoSelectors",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n"
                "services: [{name: gateway.test.v1.Echo, backend: a}]\n"
                "retries: {rules: [{max_attempts: 3}]}\n",
                "retries.rules[0].selectors: at least one"},
        BadCase{"DuplicateBackend",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}, {name: a, target: \"y:1\"}]\n",
                "backends[1].name: duplicate backend name \"a\""},
        BadCase{"TlsCertWithoutKey",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\", tls: {cert_file: c.pem}}]\n",
                "backends[0].tls: cert_file and key_file go together"},
        BadCase{"UnreadableCaFile",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\", tls: {ca_file: nope.pem}}]\n",
                "backends[0].tls.ca_file: cannot read: "},
        BadCase{"NoServices",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n",
                "services: required"},
        BadCase{"UnknownBackend",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n"
                "services: [{name: gateway.test.v1.Echo, backend: b}]\n",
                "services[0].backend: unknown backend \"b\" (known: a)"},
        BadCase{"UnknownService",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n"
                "services: [{name: gateway.test.v1.Echoo, backend: a}]\n",
                "services[0].name: service \"gateway.test.v1.Echoo\" is not defined in the "
                "descriptor sets"},
        BadCase{"ServiceTwice",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "backends: [{name: a, target: \"x:1\"}]\n"
                "services: [{name: gateway.test.v1.Echo, backend: a},"
                " {name: gateway.test.v1.Echo, backend: a}]\n",
                "services[1].name: service \"gateway.test.v1.Echo\" is listed twice"},
        BadCase{"TooManyWorkers",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "runtime: {worker_threads: 1000}\n",
                "runtime.worker_threads: at most 256"},
        BadCase{"LongBusyPoll",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "runtime: {busy_poll: 11ms}\n",
                "runtime.busy_poll: at most 10ms"},
        BadCase{"TinyMessageLimit",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "limits: {max_message_bytes: 10}\n",
                "limits.max_message_bytes: must be at least 1024"},
        BadCase{"TinyMetadataLimit",
                "grpc_listener: {address: \"127.0.0.1:0\"}\ndescriptor_sets: [ECHO]\n"
                "limits: {max_metadata_bytes: 100}\n",
                "limits.max_metadata_bytes: must be at least 1024"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(DirName, SplitsPaths) {
  EXPECT_EQ(DirName("a/b/c.yaml"), "a/b");
  EXPECT_EQ(DirName("c.yaml"), ".");
  EXPECT_EQ(DirName("/c.yaml"), "/");
}

}  // namespace
}  // namespace gateway
