#include "gateway/config/config_loader.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;

TEST(ConfigLoader, ParsesYamlIntoEveryFieldKind) {
  absl::StatusOr<config::v1::Config> config = ParseConfigText(R"yaml(
grpc_listener:
  address: 127.0.0.1:9090
  max_concurrent_streams: 200
descriptor_sets: [a.pb, b.pb]
backends:
  - name: books
    target: dns:///127.0.0.1:50051
    load_balancing: PICK_FIRST
    tls:
      ca_file: ca.pem
      server_name: books.internal
services:
  - name: bookstore.v1.Bookstore
    backend: books
limits:
  max_message_bytes: 1048576
runtime:
  worker_threads: 3
  shutdown_grace: 1.5s
)yaml",
                                                              "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_listener().address(), "127.0.0.1:9090");
  EXPECT_EQ(config->grpc_listener().max_concurrent_streams(), 200u);
  ASSERT_EQ(config->descriptor_sets_size(), 2);
  EXPECT_EQ(config->descriptor_sets(1), "b.pb");
  ASSERT_EQ(config->backends_size(), 1);
  EXPECT_EQ(config->backends(0).load_balancing(), config::v1::Backend::PICK_FIRST);
  EXPECT_EQ(config->backends(0).tls().server_name(), "books.internal");
  EXPECT_EQ(config->services(0).backend(), "books");
  EXPECT_EQ(config->limits().max_message_bytes(), 1048576u);
  EXPECT_EQ(config->runtime().worker_threads(), 3u);
  EXPECT_EQ(config->runtime().shutdown_grace().seconds(), 1);
  EXPECT_EQ(config->runtime().shutdown_grace().nanos(), 500000000);
}

TEST(ConfigLoader, ParsesJsonWithCamelCaseNames) {
  absl::StatusOr<config::v1::Config> config = ParseConfigText(R"json({
  "grpcListener": {"address": "127.0.0.1:9090"},
  "descriptorSets": ["a.pb"],
  "backends": [{"name": "b", "target": "unix:/tmp/b.sock"}],
  "services": [{"name": "x.Y", "backend": "b"}],
  "runtime": {"shutdownGrace": "250ms"}
})json",
                                                              "test.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_listener().address(), "127.0.0.1:9090");
  EXPECT_EQ(config->backends(0).target(), "unix:/tmp/b.sock");
  EXPECT_EQ(config->runtime().shutdown_grace().nanos(), 250000000);
}

TEST(ConfigLoader, EmptyDocumentIsAnEmptyConfig) {
  absl::StatusOr<config::v1::Config> config = ParseConfigText("", "empty.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->has_grpc_listener());
}

struct BadConfig {
  const char* name;
  const char* text;
  const char* message;
};

class ConfigLoaderRejects : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigLoaderRejects, WithAMessageNamingTheKey) {
  absl::StatusOr<config::v1::Config> config = ParseConfigText(GetParam().text, "gw.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    BadConfigs, ConfigLoaderRejects,
    ::testing::Values(
        BadConfig{"UnknownTopLevelKey", "grpc_listner: {address: x}\n",
                  "gw.yaml:1: grpc_listner: unknown key; known keys here: grpc_listener, "
                  "descriptor_sets"},
        BadConfig{"UnknownNestedKey",
                  "backends:\n  - name: a\n    targte: dns:///x:1\n",
                  "gw.yaml:3: backends[0].targte: unknown key; known keys here: name, target"},
        BadConfig{"ListWhereMapExpected", "grpc_listener: [a, b]\n",
                  "grpc_listener: expected a map of keys, got a list"},
        BadConfig{"ScalarWhereListExpected", "descriptor_sets: a.pb\n",
                  "descriptor_sets: expected a list, got \"a.pb\""},
        BadConfig{"MapWhereStringExpected", "grpc_listener:\n  address: {host: x}\n",
                  "grpc_listener.address: expected a single value, got a map"},
        BadConfig{"NegativeUnsigned", "runtime:\n  worker_threads: -1\n",
                  "runtime.worker_threads: expected a non-negative integer up to 4294967295, "
                  "got \"-1\""},
        BadConfig{"NotANumber", "limits:\n  max_message_bytes: lots\n",
                  "limits.max_message_bytes: expected a non-negative integer"},
        BadConfig{"Overflow", "limits:\n  max_message_bytes: 99999999999\n",
                  "limits.max_message_bytes: expected a non-negative integer"},
        BadConfig{"BadDuration", "runtime:\n  shutdown_grace: soon\n",
                  "runtime.shutdown_grace: expected a non-negative duration such as \"10s\""},
        BadConfig{"NegativeDuration", "runtime:\n  shutdown_grace: -5s\n",
                  "runtime.shutdown_grace: expected a non-negative duration"},
        BadConfig{"UnknownEnumValue",
                  "backends:\n  - name: a\n    load_balancing: RANDOM\n",
                  "backends[0].load_balancing: unknown value \"RANDOM\"; expected one of "
                  "ROUND_ROBIN, PICK_FIRST"},
        BadConfig{"DuplicateKey",
                  "grpc_listener:\n  address: a:1\n  address: b:2\n",
                  "grpc_listener.address: duplicate key"},
        BadConfig{"KeyGivenTwiceByBothNames",
                  "descriptor_sets: [a]\ndescriptorSets: [b]\n",
                  "descriptorSets: duplicate key"},
        BadConfig{"MissingValue", "grpc_listener:\n  address:\n",
                  "grpc_listener.address: missing value"},
        BadConfig{"TopLevelList", "- a\n- b\n",
                  "(top level): expected a map of keys, got a list"},
        BadConfig{"BrokenYaml", "grpc_listener: {address: [\n",
                  "gw.yaml:2:1: not valid YAML or JSON"},
        BadConfig{"BrokenJson", "{\"grpc_listener\": {\"address\": \"x\"}",
                  "not valid YAML or JSON"},
        BadConfig{"BoolForString", "backends:\n  - tls: yes\n",
                  "backends[0].tls: expected a map of keys, got \"yes\""},
        BadConfig{"TwoKeysOfAOneof",
                  "auth:\n  api_keys:\n    from:\n      - header: x-key\n"
                  "        query_parameter: key\n",
                  "gw.yaml:5: auth.api_keys.from[0].query_parameter: cannot be set together "
                  "with header (only one of header, query_parameter)"},
        BadConfig{"InvalidUtf8", "grpc_listener:\n  address: a\xff\n",
                  "gw.yaml:2: grpc_listener.address: not valid UTF-8: \"a\\xff\""},
        BadConfig{"NulInString", "descriptor_sets: [\"a.pb\\0.txt\"]\n",
                  "descriptor_sets[0]: contains a NUL byte: \"a.pb\\x00.txt\""},
        BadConfig{"UnknownAlias", "grpc_listener: *listener\n",
                  "not valid YAML or JSON: the referenced anchor is not defined"}),
    [](const ::testing::TestParamInfo<BadConfig>& info) { return info.param.name; });

TEST(ConfigLoader, MissingFileNamesThePath) {
  absl::StatusOr<config::v1::Config> config = LoadConfigFile("/nonexistent/gateway.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("/nonexistent/gateway.yaml: No such file or directory"));
}

TEST(ConfigLoader, DeepNestingIsRejectedNotOverflowed) {
  std::string text = "grpc_listener: ";
  for (int i = 0; i < 5000; ++i) text += "[";
  absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "deep.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("deep.yaml:1:1: lists or maps nested too deeply"));
}

TEST(ConfigLoader, DeepBalancedNestingIsRejected) {
  // Well-formed flow and block nesting, deeper than yaml-cpp's parser allows.
  std::string flow = "grpc_listener: ";
  for (int i = 0; i < 1000; ++i) flow += "{a: ";
  flow += "1";
  for (int i = 0; i < 1000; ++i) flow += "}";
  std::string block;
  for (int i = 0; i < 1000; ++i) block += std::string(i, ' ') + "a:\n";
  for (const std::string& text : {flow, block}) {
    absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "deep.yaml");
    ASSERT_FALSE(config.ok());
    EXPECT_THAT(std::string(config.status().message()),
                HasSubstr("lists or maps nested too deeply"));
  }
}

TEST(ConfigLoader, NestingOfMessagesWithinTheParserLimitIsRejectedByKey) {
  // Accepted by yaml-cpp; the first level that is not a config message names the key.
  std::string text = "grpc_listener: ";
  for (int i = 0; i < 200; ++i) text += "{tls: ";
  text += "1";
  for (int i = 0; i < 200; ++i) text += "}";
  absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "nest.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("grpc_listener.tls.tls: unknown key; known keys here: cert_file"));
}

TEST(ConfigLoader, AliasesWithinLimitsAreExpanded) {
  absl::StatusOr<config::v1::Config> config = ParseConfigText(R"yaml(
backends:
  - name: a
    target: dns:///a:1
    tls: &tls {ca_file: ca.pem, server_name: internal}
  - name: b
    target: dns:///b:1
    tls: *tls
)yaml",
                                                              "alias.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->backends_size(), 2);
  EXPECT_EQ(config->backends(1).tls().ca_file(), "ca.pem");
  EXPECT_EQ(config->backends(1).tls().server_name(), "internal");
}

// "Billion laughs": YAML aliases repeat an anchored node for the price of its name. The
// schema nests lists two deep at most (lists of messages holding lists), so the attacks are
// a large scalar repeated, and a list of messages repeating a list.
TEST(ConfigLoader, RepeatedLargeScalarThroughAliasesIsRefused) {
  // 1 MiB, repeated through 10,000 three-byte aliases: 10 GB of strings.
  std::string text = "descriptor_sets:\n  - &s " + std::string(1 << 20, 'x') + "\n";
  for (int i = 0; i < 10000; ++i) text += "  - *s\n";
  absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "bomb.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("descriptor_sets[16]: the config's strings add up to more than "
                        "16777216 bytes (do YAML aliases repeat a large part of it?)"));
}

TEST(ConfigLoader, NestedAliasesRepeatingMessagesAreRefused) {
  // 1000 providers, each repeating the same 1000 credential sources: 10^6 values from
  // 12 KB of text.
  std::string text = "auth:\n  jwt_providers:\n    - &p\n      name: p\n      from: [";
  for (int i = 0; i < 1000; ++i) text += i == 0 ? "&h {header: h}" : ", *h";
  text += "]\n";
  for (int i = 0; i < 1000; ++i) text += "    - *p\n";
  absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "bomb.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("the config holds more than 100000 values (do YAML aliases repeat "
                        "a large part of it?)"));
}

TEST(ConfigLoader, SelfReferenceThroughAnAliasIsRejected) {
  // yaml-cpp builds a cycle for an alias inside its own anchor.
  for (const char* text : {"descriptor_sets: &a [*a]\n", "backends: &a [*a]\n",
                           "grpc_listener: &a {tls: *a}\n"}) {
    absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "cycle.yaml");
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ConfigLoader, LongValuesAreCutAndEscapedInErrors) {
  const std::string text =
      "runtime:\n  worker_threads: \"" + std::string(100000, '7') + "\\x01\"\n";
  absl::StatusOr<config::v1::Config> config = ParseConfigText(text, "big.yaml");
  ASSERT_FALSE(config.ok());
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("runtime.worker_threads: expected a non-negative integer up to "
                                 "4294967295, got \"" + std::string(64, '7') +
                                 "\"... (100001 bytes)"));
  EXPECT_LT(message.size(), 300u);
  absl::StatusOr<config::v1::Config> control =
      ParseConfigText("runtime:\n  worker_threads: \"1\\x01\"\n", "ctl.yaml");
  ASSERT_FALSE(control.ok());
  EXPECT_THAT(std::string(control.status().message()), HasSubstr("got \"1\\x01\""));
}

}  // namespace
}  // namespace gateway
