#include "gateway/http/grpc_call.h"

#include <string>

#include "gtest/gtest.h"

namespace gateway::http {
namespace {

std::string Frame(absl::string_view payload, char flag = 0) {
  std::string out(1, flag);
  const uint32_t n = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(payload.data(), payload.size());
  return out;
}

TEST(IsGrpcContentType, AcceptsGrpcAndItsSubtypes) {
  EXPECT_TRUE(IsGrpcContentType("application/grpc"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc+proto"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc+json"));
  EXPECT_TRUE(IsGrpcContentType("Application/GRPC+proto"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc;charset=utf-8"));
}

TEST(IsGrpcContentType, RefusesGrpcWebAndOthers) {
  EXPECT_FALSE(IsGrpcContentType("application/grpc-web"));
  EXPECT_FALSE(IsGrpcContentType("application/grpc-web+proto"));
  EXPECT_FALSE(IsGrpcContentType("application/grpcx"));
  EXPECT_FALSE(IsGrpcContentType("application/json"));
  EXPECT_FALSE(IsGrpcContentType("application/grp"));
  EXPECT_FALSE(IsGrpcContentType(""));
}

TEST(GrpcMessageReader, SplitsMessagesFedByteByByte) {
  const std::string body = Frame("hello") + Frame("") + Frame("world!");
  GrpcMessageReader reader(1024);
  for (char c : body) ASSERT_TRUE(reader.Feed(absl::string_view(&c, 1)).ok());
  EXPECT_EQ(reader.Next(), "hello");
  EXPECT_EQ(reader.Next(), "");
  EXPECT_EQ(reader.Next(), "world!");
  EXPECT_EQ(reader.Next(), std::nullopt);
  EXPECT_TRUE(reader.CheckComplete().ok());
}

TEST(GrpcMessageReader, SplitsMessagesFedAtOnce) {
  GrpcMessageReader reader(1024);
  ASSERT_TRUE(reader.Feed(Frame("a") + Frame("bc") + Frame("def").substr(0, 6)).ok());
  EXPECT_EQ(reader.Next(), "a");
  EXPECT_EQ(reader.Next(), "bc");
  EXPECT_EQ(reader.Next(), std::nullopt);
  ASSERT_TRUE(reader.Feed("ef").ok());
  EXPECT_EQ(reader.Next(), "def");
}

TEST(GrpcMessageReader, RefusesAnOversizedPrefixBeforeItsBody) {
  GrpcMessageReader reader(1024);
  // 4 GiB - 1 announced: refused at the prefix, nothing buffered.
  const absl::Status status = reader.Feed(std::string("\x00\xff\xff\xff\xff", 5));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("4294967295 bytes is larger than the limit of 1024"),
            std::string::npos)
      << status.message();
  // The reader stays failed.
  EXPECT_EQ(reader.Feed(Frame("x")).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(reader.Next(), std::nullopt);
}

TEST(GrpcMessageReader, AcceptsAMessageOfExactlyTheLimit) {
  GrpcMessageReader reader(4);
  ASSERT_TRUE(reader.Feed(Frame("abcd")).ok());
  EXPECT_EQ(reader.Next(), "abcd");
  EXPECT_EQ(reader.Feed(Frame("abcde")).code(), absl::StatusCode::kResourceExhausted);
}

TEST(GrpcMessageReader, RefusesCompressedAndUnknownFlags) {
  GrpcMessageReader compressed(1024);
  EXPECT_EQ(compressed.Feed(Frame("zz", 1)).code(), absl::StatusCode::kUnimplemented);
  GrpcMessageReader unknown(1024);
  const absl::Status status = unknown.Feed(Frame("zz", 7));
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("flag byte 7"), std::string::npos) << status.message();
}

TEST(GrpcMessageReader, ReportsATruncatedMessageAtTheEnd) {
  GrpcMessageReader in_prefix(1024);
  ASSERT_TRUE(in_prefix.Feed(std::string("\x00\x00", 2)).ok());
  EXPECT_EQ(in_prefix.CheckComplete().message(),
            "request message truncated: the stream ended after 2 of the 5 prefix bytes");
  GrpcMessageReader in_body(1024);
  ASSERT_TRUE(in_body.Feed(Frame("abcdef").substr(0, 8)).ok());
  EXPECT_EQ(in_body.CheckComplete().message(),
            "request message truncated: the stream ended after 3 of its 6 bytes");
}

}  // namespace
}  // namespace gateway::http
