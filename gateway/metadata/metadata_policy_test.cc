#include "gateway/metadata/metadata_policy.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::metadata {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(IsValidKey, FollowsGrpcRules) {
  for (const char* key : {"x-request-id", "a", "trace_parent", "x.y", "0-9", "custom-bin"}) {
    EXPECT_TRUE(IsValidKey(key)) << key;
  }
  for (const char* key : {"", "X-Upper", "x upper", ":path", "caf\xc3\xa9", "x\ty", "x/y",
                          "x:y", "x\"y"}) {
    EXPECT_FALSE(IsValidKey(key)) << key;
  }
}

TEST(MetadataSize, CountsNameValueAnd32PerEntryBinaryAsBase64) {
  const std::vector<OwnedEntry> entries = {{"x-a", "12345"}, {"x-b-bin", "\x01\x02\x03\x04"}};
  // 3 + 5 + 32, then 7 + 8 (4 bytes as base64, padded) + 32.
  EXPECT_EQ(MetadataSize(entries), 40u + 47u);
  EXPECT_EQ(MetadataSize({}), 0u);
}

TEST(CheckMetadataSize, RefusesOverTheLimitNamingItAndTheLargestHeader) {
  const std::vector<OwnedEntry> entries = {{"x-small", "1"}, {"x-big", std::string(100, 'a')}};
  const size_t size = MetadataSize(entries);
  EXPECT_TRUE(CheckMetadataSize(entries, size).ok());
  absl::Status over = CheckMetadataSize(entries, size - 1);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(over.message(), HasSubstr("limits.max_metadata_bytes"));
  EXPECT_THAT(over.message(), HasSubstr("largest header is x-big (137 bytes)"));
}

TEST(IsValidTextValue, PrintableAsciiOnly) {
  EXPECT_TRUE(IsValidTextValue(""));
  EXPECT_TRUE(IsValidTextValue("Bearer abc.def ~!"));
  EXPECT_FALSE(IsValidTextValue("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidTextValue("a\r\nx-evil: 1"));
  EXPECT_FALSE(IsValidTextValue(absl::string_view("a\0b", 3)));
  EXPECT_FALSE(IsValidTextValue("tab\there"));
  EXPECT_FALSE(IsValidTextValue("\x7f"));
}

TEST(CheckEntry, BinaryValuesTakeAnyBytesTextValuesDoNot) {
  EXPECT_TRUE(CheckEntry("x-data-bin", absl::string_view("\0\xff\n", 3)).ok());
  absl::Status text = CheckEntry("x-data", "a\nb");
  EXPECT_EQ(text.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(text.message(), HasSubstr("header x-data: value has bytes not allowed"));
  absl::Status key = CheckEntry("X-Upper", "1");
  EXPECT_THAT(key.message(), HasSubstr("metadata name \"X-Upper\" is not valid"));
  EXPECT_THAT(CheckEntry("", "1").message(), HasSubstr("empty name"));
}

TEST(CheckEntry, ErrorNeverQuotesTheValue) {
  absl::Status status = CheckEntry("authorization", "Bearer secret\x01");
  EXPECT_THAT(std::string(status.message()), ::testing::Not(HasSubstr("secret")));
}

TEST(DecodeBinaryText, AcceptsPaddedAndUnpaddedBase64Only) {
  EXPECT_EQ(*DecodeBinaryText("x-bin", "AAEC"), std::string("\0\1\2", 3));
  EXPECT_EQ(*DecodeBinaryText("x-bin", "AAE="), std::string("\0\1", 2));
  EXPECT_EQ(*DecodeBinaryText("x-bin", "AAE"), std::string("\0\1", 2));
  absl::StatusOr<std::string> bad = DecodeBinaryText("x-bin", "!!!not base64");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("header x-bin: binary metadata"));
}

TEST(IsProtocolHeader, CoversPseudoGrpcAndHopByHopHeaders) {
  for (const char* key :
       {"", ":path", ":authority", "grpc-timeout", "grpc-status", "grpc-trace-bin", "te",
        "content-type", "content-length", "content-encoding", "user-agent", "host",
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "accept-encoding", "trailer", "expect", "http2-settings"}) {
    EXPECT_TRUE(IsProtocolHeader(key)) << key;
  }
  for (const char* key : {"authorization", "x-request-id", "traceparent", "te-custom",
                          "hostname", "accept", "cookie", "custom-bin"}) {
    EXPECT_FALSE(IsProtocolHeader(key)) << key;
  }
}

TEST(MetadataPolicy, CreateRefusesNamesItCannotOwn) {
  EXPECT_THAT(MetadataPolicy::Create({"X Payload"}).status().message(),
              HasSubstr("\"X Payload\" is not a valid metadata name"));
  EXPECT_THAT(MetadataPolicy::Create({"x-payload-bin"}).status().message(),
              HasSubstr("ends in -bin"));
  EXPECT_THAT(MetadataPolicy::Create({"grpc-payload"}).status().message(),
              HasSubstr("header of HTTP or gRPC itself"));
  absl::StatusOr<MetadataPolicy> policy = MetadataPolicy::Create({"X-JWT-Payload"});
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->IsOwned("x-jwt-payload"));
  EXPECT_TRUE(policy->IsReserved("x-jwt-payload"));
  EXPECT_TRUE(policy->IsReserved("te"));
  EXPECT_TRUE(policy->IsReserved("x-trace-bin"));
  EXPECT_FALSE(policy->IsReserved("x-request-id"));
}

TEST(MetadataPolicy, OwnedHeadersNeverComeFromTheClientOnAnyFrontEnd) {
  const MetadataPolicy policy = *MetadataPolicy::Create({"x-jwt-payload"});
  // Even a listener that lists the header does not forward the client's copy.
  const absl::flat_hash_set<std::string> listed = {"x-jwt-payload", "x-request-id"};
  for (Protocol p : {Protocol::kGrpc, Protocol::kGrpcWeb, Protocol::kRest}) {
    EXPECT_FALSE(policy.ForwardsFromClient(p, "x-jwt-payload", &listed));
    EXPECT_TRUE(policy.ForwardsFromClient(p, "x-request-id", &listed));
    EXPECT_FALSE(policy.ForwardsFromClient(p, "grpc-timeout", &listed));
  }
}

TEST(MetadataPolicy, FrontEndsForwardTheirOwnSets) {
  const MetadataPolicy policy;
  const absl::flat_hash_set<std::string> listed = {"x-request-id", "cookie"};
  EXPECT_TRUE(policy.ForwardsFromClient(Protocol::kGrpc, "x-anything", &listed));
  EXPECT_TRUE(policy.ForwardsFromClient(Protocol::kGrpc, "cookie", nullptr));
  EXPECT_TRUE(policy.ForwardsFromClient(Protocol::kGrpcWeb, "x-anything", nullptr));
  EXPECT_FALSE(policy.ForwardsFromClient(Protocol::kGrpcWeb, "origin", &listed));
  EXPECT_TRUE(policy.ForwardsFromClient(Protocol::kGrpcWeb, "cookie", &listed));
  EXPECT_FALSE(policy.ForwardsFromClient(Protocol::kGrpcWeb, "cookie", nullptr));
  EXPECT_FALSE(policy.ForwardsFromClient(Protocol::kRest, "x-anything", &listed));
  EXPECT_TRUE(policy.ForwardsFromClient(Protocol::kRest, "cookie", &listed));
}

TEST(CollectRequestMetadata, SetReplacesTheClientsCopyAndOrderIsKept) {
  const MetadataPolicy policy = *MetadataPolicy::Create({"x-jwt-payload"});
  const std::vector<Entry> client = {{"x-jwt-payload", "forged"},
                                     {"x-a", "1"},
                                     {"x-tenant", "client"},
                                     {"authorization", "Bearer t"},
                                     {"x-drop", "gone"}};
  MetadataEdits edits;
  edits.Add("x-jwt-payload", "first");
  edits.Set("x-jwt-payload", "verified");
  edits.Set("x-tenant", "gateway");
  edits.Remove("x-drop");
  std::vector<OwnedEntry> out;
  ASSERT_TRUE(
      policy.CollectRequestMetadata(Protocol::kGrpc, client, nullptr, &edits, &out).ok());
  EXPECT_THAT(out, ElementsAre(Pair("x-a", "1"), Pair("authorization", "Bearer t"),
                               Pair("x-jwt-payload", "verified"), Pair("x-tenant", "gateway")));
}

TEST(CollectRequestMetadata, InvalidNamesAreDroppedInvalidValuesRefused) {
  const MetadataPolicy policy;
  std::vector<OwnedEntry> out;
  const std::vector<Entry> names = {{"X-Upper", "1"}, {"x sp", "1"}, {"", "1"}, {"x-ok", "1"}};
  ASSERT_TRUE(policy.CollectRequestMetadata(Protocol::kGrpc, names, nullptr, nullptr, &out).ok());
  EXPECT_THAT(out, ElementsAre(Pair("x-ok", "1")));

  const std::vector<Entry> value = {{"x-ok", "caf\xc3\xa9"}};
  absl::Status status =
      policy.CollectRequestMetadata(Protocol::kGrpc, value, nullptr, nullptr, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("header x-ok"));
}

TEST(CollectRequestMetadata, BinaryTextIsDecodedOverHttpOnly) {
  const MetadataPolicy policy;
  std::vector<OwnedEntry> out;
  const std::vector<Entry> good = {{"x-data-bin", "AAEC"}};
  ASSERT_TRUE(
      policy.CollectRequestMetadata(Protocol::kGrpcWeb, good, nullptr, nullptr, &out).ok());
  EXPECT_THAT(out, ElementsAre(Pair("x-data-bin", std::string("\0\1\2", 3))));
  out.clear();
  // Over gRPC the transport already decoded it: raw bytes pass as they are.
  const std::vector<Entry> raw = {{"x-data-bin", absl::string_view("\0\xff", 2)}};
  ASSERT_TRUE(policy.CollectRequestMetadata(Protocol::kGrpc, raw, nullptr, nullptr, &out).ok());
  EXPECT_THAT(out, ElementsAre(Pair("x-data-bin", std::string("\0\xff", 2))));
  const std::vector<Entry> bad = {{"x-data-bin", "!!!"}};
  absl::Status status =
      policy.CollectRequestMetadata(Protocol::kGrpcWeb, bad, nullptr, nullptr, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("not base64"));
}

TEST(CollectRequestMetadata, InvalidInterceptorEntryIsInternalNeverPassedOn) {
  const MetadataPolicy policy;
  MetadataEdits edits;
  edits.Add("X-Bad", "1");
  std::vector<OwnedEntry> out;
  absl::Status status = policy.CollectRequestMetadata(Protocol::kRest, {}, nullptr, &edits, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("X-Bad"));
  MetadataEdits value;
  value.Set("x-payload", "a\nb");
  EXPECT_EQ(policy.CollectRequestMetadata(Protocol::kRest, {}, nullptr, &value, &out).code(),
            absl::StatusCode::kInternal);
  MetadataEdits protocol;
  protocol.Set("te", "trailers");
  absl::Status te = policy.CollectRequestMetadata(Protocol::kGrpc, {}, nullptr, &protocol, &out);
  EXPECT_EQ(te.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(te.message(), HasSubstr("\"te\", a header of HTTP or gRPC itself"));
}

TEST(ForwardsToClient, DropsProtocolAndInvalidMetadata) {
  const MetadataPolicy policy;
  EXPECT_TRUE(policy.ForwardsToClient("x-echo-initial", "3"));
  EXPECT_TRUE(policy.ForwardsToClient("x-raw-bin", absl::string_view("\0", 1)));
  EXPECT_FALSE(policy.ForwardsToClient("X-Upper", "1"));
  EXPECT_FALSE(policy.ForwardsToClient("x-ok", "caf\xc3\xa9"));
  EXPECT_FALSE(policy.ForwardsToClient("grpc-status", "0"));
  EXPECT_FALSE(policy.ForwardsToClient("content-type", "application/grpc"));
}

}  // namespace
}  // namespace gateway::metadata
