#include "gateway/upstream/grpc_framing.h"

#include "gtest/gtest.h"

namespace gateway::upstream {
namespace {

TEST(GrpcDeframerTest, MessagesSplitAnywhere) {
  std::string wire;
  AppendGrpcFrame("hello", &wire);
  AppendGrpcFrame("", &wire);
  AppendGrpcFrame(std::string(300, 'z'), &wire);
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    GrpcDeframer d(1000);
    std::vector<std::string> got;
    for (size_t i = 0; i < wire.size(); i += chunk) {
      ASSERT_TRUE(d.Feed(absl::string_view(wire).substr(i, chunk)).ok());
      while (auto m = d.Next()) got.push_back(*m);
    }
    ASSERT_EQ(got.size(), 3u) << chunk;
    EXPECT_EQ(got[0], "hello");
    EXPECT_EQ(got[1], "");
    EXPECT_EQ(got[2], std::string(300, 'z'));
    EXPECT_TRUE(d.CheckComplete().ok());
  }
}

TEST(GrpcDeframerTest, OversizedMessageRefusedBeforeItsBody) {
  GrpcDeframer d(10);
  absl::Status s = d.Feed(absl::string_view("\0\0\0\0\x0b", 5));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("11 bytes"), std::string::npos) << s;
  EXPECT_EQ(d.Feed("x").code(), absl::StatusCode::kResourceExhausted);  // stays failed
}

TEST(GrpcDeframerTest, CompressedFlagAndTruncation) {
  GrpcDeframer d(10);
  EXPECT_EQ(d.Feed(absl::string_view("\x01\0\0\0\x01x", 6)).code(), absl::StatusCode::kInternal);
  GrpcDeframer t(100);
  ASSERT_TRUE(t.Feed(absl::string_view("\0\0\0\0\x10" "ab", 7)).ok());
  EXPECT_FALSE(t.HasMessage());
  EXPECT_EQ(t.CheckComplete().code(), absl::StatusCode::kInternal);
  GrpcDeframer h(100);
  ASSERT_TRUE(h.Feed(absl::string_view("\0\0", 2)).ok());
  EXPECT_EQ(h.CheckComplete().code(), absl::StatusCode::kInternal);
}

TEST(GrpcTimeoutTest, ShortestExactUnit) {
  EXPECT_EQ(*EncodeGrpcTimeout(absl::Seconds(1)), "1S");
  EXPECT_EQ(*EncodeGrpcTimeout(absl::Hours(2)), "2H");
  EXPECT_EQ(*EncodeGrpcTimeout(absl::Minutes(90)), "90M");
  EXPECT_EQ(*EncodeGrpcTimeout(absl::Milliseconds(1500)), "1500m");
  EXPECT_EQ(*EncodeGrpcTimeout(absl::Nanoseconds(7)), "7n");
  // 1.000000001 s is not exact in 8 digits of any unit: rounded up in the finest that fits.
  EXPECT_EQ(*EncodeGrpcTimeout(absl::Seconds(1) + absl::Nanoseconds(1)), "1000001u");
  EXPECT_EQ(EncodeGrpcTimeout(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(*EncodeGrpcTimeout(absl::InfiniteDuration()), "99999999H");
}

TEST(GrpcMessageTest, PercentDecoding) {
  EXPECT_EQ(PercentDecodeGrpcMessage("a%20b%C3%A9"), "a b\xc3\xa9");
  EXPECT_EQ(PercentDecodeGrpcMessage("100%"), "100%");
  EXPECT_EQ(PercentDecodeGrpcMessage("%zz%4"), "%zz%4");
}

TEST(HttpStatusTest, GrpcTable) {
  EXPECT_EQ(GrpcCodeForHttpStatus(400), absl::StatusCode::kInternal);
  EXPECT_EQ(GrpcCodeForHttpStatus(401), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(GrpcCodeForHttpStatus(403), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(GrpcCodeForHttpStatus(404), absl::StatusCode::kUnimplemented);
  for (int s : {429, 502, 503, 504}) {
    EXPECT_EQ(GrpcCodeForHttpStatus(s), absl::StatusCode::kUnavailable) << s;
  }
  EXPECT_EQ(GrpcCodeForHttpStatus(500), absl::StatusCode::kUnknown);
}

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

TEST(GrpcFrameScannerTest, FollowsFramesSplitAnywhere) {
  const std::string wire = Frame("hello") + Frame("") + Frame("zip!", 1) + Frame("world!");
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    GrpcFrameScanner scan(1024);
    for (size_t i = 0; i < wire.size(); i += chunk) {
      ASSERT_TRUE(scan.Scan(absl::string_view(wire).substr(i, chunk)).ok()) << chunk;
      if (i + chunk < wire.size()) {
        EXPECT_LT(scan.frames(), 4u) << chunk;
      }
    }
    EXPECT_EQ(scan.frames(), 4u) << chunk;
    EXPECT_EQ(scan.message_bytes(), 15u) << chunk;  // compressed frames count as they are
    EXPECT_TRUE(scan.CheckComplete().ok());
  }
}

TEST(GrpcFrameScannerTest, RefusesAHugeDeclaredLengthAtThePrefix) {
  GrpcFrameScanner scan(1024);
  ASSERT_TRUE(scan.Scan(Frame("ok")).ok());
  // 4 GiB - 1 announced: refused at the prefix, before any of its body.
  const absl::Status status = scan.Scan(std::string("\x00\xff\xff\xff\xff", 5));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("4294967295 bytes is larger than the limit of 1024"),
            std::string::npos)
      << status.message();
  EXPECT_EQ(scan.Scan(Frame("x")).code(), absl::StatusCode::kResourceExhausted);  // stays failed
  EXPECT_EQ(scan.frames(), 1u);
}

TEST(GrpcFrameScannerTest, AHugePrefixSplitAcrossChunksIsStillRefused) {
  GrpcFrameScanner scan(1024);
  ASSERT_TRUE(scan.Scan(std::string("\x01\x00", 2)).ok());
  EXPECT_EQ(scan.Scan(std::string("\x10\x00\x00", 3)).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(GrpcFrameScannerTest, AcceptsAMessageOfExactlyTheLimit) {
  GrpcFrameScanner scan(4);
  ASSERT_TRUE(scan.Scan(Frame("abcd")).ok());
  EXPECT_EQ(scan.frames(), 1u);
  EXPECT_EQ(scan.Scan(Frame("abcde")).code(), absl::StatusCode::kResourceExhausted);
}

TEST(GrpcFrameScannerTest, RefusesUnknownFlags) {
  GrpcFrameScanner scan(1024);
  const absl::Status status = scan.Scan(Frame("zz", 7));
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("flag byte 7"), std::string::npos) << status.message();
}

TEST(GrpcFrameScannerTest, ReportsATruncatedMessageAtTheEnd) {
  GrpcFrameScanner in_prefix(1024);
  ASSERT_TRUE(in_prefix.Scan(std::string("\x00\x00", 2)).ok());
  EXPECT_EQ(in_prefix.CheckComplete().code(), absl::StatusCode::kInternal);
  EXPECT_NE(in_prefix.CheckComplete().message().find("2 of 5 prefix bytes"), std::string::npos);
  GrpcFrameScanner in_body(1024);
  ASSERT_TRUE(in_body.Scan(Frame("abcdef").substr(0, 8)).ok());
  EXPECT_NE(in_body.CheckComplete().message().find("3 of 6 message bytes"), std::string::npos)
      << in_body.CheckComplete().message();
  EXPECT_EQ(in_body.message_bytes(), 3u);
}

}  // namespace
}  // namespace gateway::upstream
