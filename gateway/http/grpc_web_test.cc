#include "gateway/http/grpc_web.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace gateway::http::grpc_web {
namespace {

std::string Frame5(uint8_t flags, absl::string_view payload) {
  return EncodeFrame(flags, payload, Encoding::kBinary);
}

TEST(GrpcWebContentType, RecognizesTheFourTypesAndIgnoresParameters) {
  for (const char* type : {"application/grpc-web", "application/grpc-web+proto",
                           "Application/GRPC-Web+Proto; charset=utf-8"}) {
    std::optional<GrpcWebType> t = ParseContentType(type);
    ASSERT_TRUE(t.has_value()) << type;
    EXPECT_EQ(t->encoding, Encoding::kBinary) << type;
    EXPECT_TRUE(t->proto) << type;
  }
  for (const char* type : {"application/grpc-web-text", "application/grpc-web-text+proto",
                           " application/grpc-web-text+proto ;x=y"}) {
    std::optional<GrpcWebType> t = ParseContentType(type);
    ASSERT_TRUE(t.has_value()) << type;
    EXPECT_EQ(t->encoding, Encoding::kText) << type;
    EXPECT_TRUE(t->proto) << type;
  }
}

TEST(GrpcWebContentType, OtherCodecsAreGrpcWebButNotProto) {
  std::optional<GrpcWebType> t = ParseContentType("application/grpc-web+json");
  ASSERT_TRUE(t.has_value());
  EXPECT_FALSE(t->proto);
}

TEST(GrpcWebContentType, NativeGrpcJsonAndLookalikesAreNotGrpcWeb) {
  for (const char* type : {"", "application/grpc", "application/grpc+proto", "application/json",
                           "application/grpc-webx", "application/grpc-web-textual",
                           "text/grpc-web"}) {
    EXPECT_FALSE(ParseContentType(type).has_value()) << type;
  }
}

TEST(GrpcWebContentType, ResponseTypesNameProto) {
  EXPECT_EQ(ResponseContentType(Encoding::kBinary), "application/grpc-web+proto");
  EXPECT_EQ(ResponseContentType(Encoding::kText), "application/grpc-web-text+proto");
}

TEST(GrpcWebFrames, EncodeFrameWritesFlagsAndBigEndianLength) {
  const std::string payload(300, 'x');
  const std::string frame = Frame5(kMessageFrame, payload);
  ASSERT_EQ(frame.size(), 305u);
  EXPECT_EQ(frame.substr(0, 5), std::string("\x00\x00\x00\x01\x2c", 5));
  EXPECT_EQ(frame.substr(5), payload);
  EXPECT_EQ(Frame5(kTrailerFrame, "")[0], '\x80');
}

TEST(GrpcWebFrames, TextFramesAreSelfContainedPaddedBase64) {
  const std::string text = EncodeFrame(kMessageFrame, "ab", Encoding::kText);
  EXPECT_EQ(text, absl::Base64Escape(std::string("\x00\x00\x00\x00\x02" "ab", 7)));
  EXPECT_EQ(text.size() % 4, 0u);
}

TEST(GrpcWebFrames, SplitsSeveralFrames) {
  const std::string body = Frame5(0, "one") + Frame5(0, "") + Frame5(0x80, "t");
  absl::StatusOr<std::vector<Frame>> frames = SplitFrames(body, 100);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 3u);
  EXPECT_EQ((*frames)[0].payload, "one");
  EXPECT_EQ((*frames)[1].payload, "");
  EXPECT_EQ((*frames)[2].flags, 0x80);
  EXPECT_EQ((*frames)[2].payload, "t");
}

TEST(GrpcWebFrames, EmptyBodyHasNoFrames) {
  absl::StatusOr<std::vector<Frame>> frames = SplitFrames("", 100);
  ASSERT_TRUE(frames.ok());
  EXPECT_TRUE(frames->empty());
}

TEST(GrpcWebFrames, HeaderCutShortIsInvalidArgument) {
  const std::string body = Frame5(0, "abc") + std::string("\x00\x00", 2);
  absl::StatusOr<std::vector<Frame>> frames = SplitFrames(body, 100);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(frames.status().message().find("frame 1 at byte 8: header cut short"),
            std::string::npos)
      << frames.status();
}

TEST(GrpcWebFrames, LengthBeyondTheBodyIsInvalidArgument) {
  std::string body = Frame5(0, "abcdef");
  body.resize(body.size() - 1);
  absl::StatusOr<std::vector<Frame>> frames = SplitFrames(body, 100);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(frames.status().message().find("length 6 but only 5 bytes follow"),
            std::string::npos)
      << frames.status();
}

TEST(GrpcWebFrames, HugeDeclaredLengthIsRefusedBeforeAnyAllocation) {
  const std::string body("\x00\xff\xff\xff\xff", 5);
  absl::StatusOr<std::vector<Frame>> frames = SplitFrames(body, 1 << 20);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kResourceExhausted);
  // Within the limit but larger than what follows: cut short, not exhausted.
  frames = SplitFrames(body, 0xffffffffu);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcWebRequest, CompressedFrameIsInternal) {
  std::string storage;
  absl::StatusOr<std::vector<Frame>> frames =
      DecodeRequestBody(Frame5(0x01, "zz"), Encoding::kBinary, 100, &storage);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(frames.status().message().find("compressed"), std::string::npos);
}

TEST(GrpcWebRequest, TrailerFrameAndUnknownFlagsAreInvalidArgument) {
  std::string storage;
  EXPECT_EQ(DecodeRequestBody(Frame5(0, "a") + Frame5(0x80, "grpc-status: 0\r\n"),
                              Encoding::kBinary, 100, &storage)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<Frame>> frames =
      DecodeRequestBody(Frame5(0x42, "a"), Encoding::kBinary, 100, &storage);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(frames.status().message().find("unknown flags 0x42"), std::string::npos)
      << frames.status();
}

TEST(GrpcWebRequest, TextBodyMadeOfSeveralPaddedChunks) {
  // A client that flushed after the header: two base64 chunks, each padded.
  const std::string frame = Frame5(0, "hello");
  const std::string text =
      absl::Base64Escape(frame.substr(0, 4)) + absl::Base64Escape(frame.substr(4));
  ASSERT_NE(text.find('='), text.size() - 1);  // padding inside the text
  std::string storage;
  absl::StatusOr<std::vector<Frame>> frames =
      DecodeRequestBody(text, Encoding::kText, 100, &storage);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), 1u);
  EXPECT_EQ((*frames)[0].payload, "hello");
}

TEST(GrpcWebBase64, DecodesEveryPaddingForm) {
  for (const std::string& raw : {std::string(""), std::string("a"), std::string("ab"),
                                 std::string("abc"), std::string("\x00\xff\x10", 3)}) {
    absl::StatusOr<std::string> decoded = DecodeBase64Chunks(absl::Base64Escape(raw));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, raw);
  }
  absl::StatusOr<std::string> joined = DecodeBase64Chunks("YQ==YWI=YWJj");
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(*joined, "aababc");
}

TEST(GrpcWebBase64, RefusesHostileText) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"YWJ", "not a multiple of 4"},
      {"YW J", "byte 2 is not base64"},
      {"YW-_", "byte 2 is not base64"},
      {"Y===", "misplaced padding"},
      {"=AAA", "misplaced padding"},
      {"YW=j", "misplaced padding"},
      {"YWJj\r\n==", "byte 4 is not base64"},
      {std::string("YWJj\0AAA", 8), "byte 4 is not base64"},
  };
  for (const auto& [text, error] : cases) {
    absl::StatusOr<std::string> decoded = DecodeBase64Chunks(text);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(decoded.status().message().find(error), std::string::npos)
        << text << ": " << decoded.status();
  }
}

TEST(GrpcWebTrailers, StatusMessageAndMetadataAsHeaderLines) {
  const std::string block =
      TrailerBlock(5, "shelf 9 not found", {{"x-echo-trailing", "done"}, {"x-id-bin", "\x01\xff"}});
  EXPECT_EQ(block,
            "grpc-status: 5\r\ngrpc-message: shelf 9 not found\r\n"
            "x-echo-trailing: done\r\nx-id-bin: Af8=\r\n");
  EXPECT_EQ(TrailerBlock(0, "", {}), "grpc-status: 0\r\n");
}

TEST(GrpcWebTrailers, NothingFromTheBackendCanBreakTheBlock) {
  const std::string block = TrailerBlock(
      2, "line1\r\nx-injected: 1",
      {{"x-a", "ok\r\nx-smuggled: 1"}, {"Bad Key", "v"}, {"grpc-status", "0"}, {"", "v"}});
  EXPECT_EQ(block, "grpc-status: 2\r\ngrpc-message: line1%0D%0Ax-injected: 1\r\n");
}

TEST(GrpcWebTrailers, PercentEncodingRoundTrips) {
  const std::string message = "100% sure \xc3\xa9t\xc3\xa9\n";
  const std::string encoded = PercentEncodeMessage(message);
  EXPECT_EQ(encoded, "100%25 sure %C3%A9t%C3%A9%0A");
  EXPECT_EQ(PercentDecodeMessage(encoded), message);
  EXPECT_EQ(PercentDecodeMessage("50%"), "50%");
  EXPECT_EQ(PercentDecodeMessage("%zz%4"), "%zz%4");
}


}  // namespace
}  // namespace gateway::http::grpc_web
