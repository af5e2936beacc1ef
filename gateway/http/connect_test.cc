#include "gateway/http/connect.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace gateway::http::connect {
namespace {

TEST(ConnectContentType, RecognizesUnaryAndStreamingCodecs) {
  auto unary = ParseContentType("application/json; charset=utf-8");
  ASSERT_TRUE(unary.has_value());
  EXPECT_FALSE(unary->streaming);
  EXPECT_EQ(unary->codec, Codec::kJson);
  auto stream = ParseContentType("Application/Connect+Proto");
  ASSERT_TRUE(stream.has_value());
  EXPECT_TRUE(stream->streaming);
  EXPECT_EQ(stream->codec, Codec::kProto);
  EXPECT_FALSE(ParseContentType("application/grpc").has_value());
  EXPECT_FALSE(ParseContentType("application/connect+thrift").has_value());
  EXPECT_FALSE(ParseContentType("text/json").has_value());
  EXPECT_EQ(ContentTypeName(*stream), "application/connect+proto");
}

TEST(ConnectTimeout, ParsesMillisecondsAndRejectsMalformed) {
  EXPECT_EQ(*ParseTimeoutMs("250"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseTimeoutMs("9999999999"), absl::Milliseconds(9999999999));
  for (const char* bad : {"", "-1", "1.5", "12345678901", "10s"}) {
    absl::StatusOr<absl::Duration> d = ParseTimeoutMs(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("connect-timeout-ms"), std::string::npos);
  }
}

TEST(ConnectCodes, NamesAndHttpStatusFollowTheSpec) {
  EXPECT_EQ(CodeName(absl::StatusCode::kCancelled), "canceled");
  EXPECT_EQ(CodeName(absl::StatusCode::kUnauthenticated), "unauthenticated");
  EXPECT_EQ(*CodeFromName("resource_exhausted"), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(CodeFromName("ok").has_value());
  const std::pair<absl::StatusCode, int> table[] = {
      {absl::StatusCode::kCancelled, 499},          {absl::StatusCode::kUnknown, 500},
      {absl::StatusCode::kInvalidArgument, 400},    {absl::StatusCode::kDeadlineExceeded, 504},
      {absl::StatusCode::kNotFound, 404},           {absl::StatusCode::kAlreadyExists, 409},
      {absl::StatusCode::kPermissionDenied, 403},   {absl::StatusCode::kResourceExhausted, 429},
      {absl::StatusCode::kFailedPrecondition, 400}, {absl::StatusCode::kAborted, 409},
      {absl::StatusCode::kOutOfRange, 400},         {absl::StatusCode::kUnimplemented, 501},
      {absl::StatusCode::kInternal, 500},           {absl::StatusCode::kUnavailable, 503},
      {absl::StatusCode::kDataLoss, 500},           {absl::StatusCode::kUnauthenticated, 401},
  };
  for (const auto& [code, http] : table) EXPECT_EQ(HttpStatusFor(code), http) << CodeName(code);
}

TEST(ConnectError, JsonCarriesCodeMessageAndDetails) {
  // google.rpc.Status{code: 5, message: "x", details: [Any{type_url:
  // "type.googleapis.com/google.rpc.ErrorInfo", value: "\x0a\x01r"}]}
  std::string any = std::string("\x0a\x28", 2) + "type.googleapis.com/google.rpc.ErrorInfo" +
                    std::string("\x12\x03\x0a\x01r", 5);
  std::string status = std::string("\x08\x05\x12\x01x\x1a", 6) +
                       std::string(1, static_cast<char>(any.size())) + any;
  EXPECT_EQ(ErrorJson(absl::NotFoundError("no \"book\"\n"), status),
            "{\"code\":\"not_found\",\"message\":\"no \\\"book\\\"\\n\",\"details\":[{\"type\":"
            "\"google.rpc.ErrorInfo\",\"value\":\"CgFy\"}]}");
  // Details that do not parse are left out.
  EXPECT_EQ(ErrorJson(absl::InternalError(""), "\xff"), "{\"code\":\"internal\"}");
}

TEST(ConnectEndStream, ErrorAndMetadataGroupedByName) {
  EXPECT_EQ(EndStreamJson(absl::OkStatus(), "", {}), "{}");
  EXPECT_EQ(EndStreamJson(absl::UnavailableError("down"), "", {{"a", "1"}, {"b", "2"}, {"a", "3"}}),
            "{\"error\":{\"code\":\"unavailable\",\"message\":\"down\"},"
            "\"metadata\":{\"a\":[\"1\",\"3\"],\"b\":[\"2\"]}}");
}

TEST(ConnectEnvelope, SplitsPiecesIntoEnvelopes) {
  const std::string body = MakeEnvelope(0, "hello") + MakeEnvelope(kFlagEndStream, "{}");
  EnvelopeReader reader(1024);
  for (char c : body) ASSERT_TRUE(reader.Feed(std::string(1, c)).ok());
  std::optional<Envelope> a = reader.Next();
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->flags, 0);
  EXPECT_EQ(a->data, "hello");
  std::optional<Envelope> b = reader.Next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->flags, kFlagEndStream);
  EXPECT_EQ(b->data, "{}");
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_TRUE(reader.CheckComplete().ok());
}

TEST(ConnectEnvelope, RefusesOversizedAnnouncedLengthBeforeTheData) {
  EnvelopeReader reader(16);
  absl::Status s = reader.Feed(std::string("\x00\x7f\xff\xff\xff", 5));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("limits.max_message_bytes"), std::string::npos);
}

TEST(ConnectEnvelope, RefusesUnknownFlagsAndTruncatedBody) {
  EnvelopeReader reader(16);
  EXPECT_EQ(reader.Feed(std::string("\x80\x00\x00\x00\x00", 5)).code(),
            absl::StatusCode::kInvalidArgument);
  EnvelopeReader partial(16);
  ASSERT_TRUE(partial.Feed(std::string("\x00\x00\x00\x00\x03" "ab", 7)).ok());
  EXPECT_FALSE(partial.Next().has_value());
  EXPECT_EQ(partial.CheckComplete().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConnectGet, ParsesQueryWithBase64AndPercentEncoding) {
  absl::StatusOr<GetRequest> json =
      ParseGetQuery("connect=v1&encoding=json&message=%7B%22text%22%3A%22hi%22%7D");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->codec, Codec::kJson);
  EXPECT_EQ(json->message, "{\"text\":\"hi\"}");
  absl::StatusOr<GetRequest> proto =
      ParseGetQuery("message=CgJoaQ&base64=1&encoding=proto&connect=v1&x=y");
  ASSERT_TRUE(proto.ok()) << proto.status();
  EXPECT_EQ(proto->codec, Codec::kProto);
  EXPECT_EQ(proto->message, "\x0a\x02hi");
}

TEST(ConnectGet, NamesTheBadParameter) {
  const std::pair<const char*, const char*> cases[] = {
      {"encoding=json&message=x", "connect=v1 missing"},
      {"connect=v2&encoding=json&message=x", "query parameter connect"},
      {"connect=v1&encoding=xml&message=x", "query parameter encoding"},
      {"connect=v1&encoding=json", "message missing"},
      {"connect=v1&encoding=json&message=%zz", "malformed percent escape"},
      {"connect=v1&encoding=proto&message=***&base64=1", "not valid base64"},
      {"connect=v1&encoding=json&message=a&message=b", "given twice"},
  };
  for (const auto& [query, want] : cases) {
    absl::StatusOr<GetRequest> r = ParseGetQuery(query);
    ASSERT_FALSE(r.ok()) << query;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status();
  }
}

}  // namespace
}  // namespace gateway::http::connect
