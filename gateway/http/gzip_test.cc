#include "gateway/http/gzip.h"

#include <string>

#include "gtest/gtest.h"

namespace gateway::http::gzip {
namespace {

TEST(Gzip, RoundTrips) {
  const std::string data(100000, 'a');
  const std::string packed = Compress(data);
  EXPECT_LT(packed.size(), 1000u);
  EXPECT_EQ(packed.substr(0, 2), "\x1f\x8b");
  EXPECT_EQ(*Decompress(packed, data.size()), data);
  EXPECT_EQ(*Decompress(Compress(""), 0), "");
}

TEST(Gzip, RefusesABombAtTheLimit) {
  const std::string packed = Compress(std::string(64 << 20, '\0'));  // 64 MiB -> ~64 KiB
  absl::StatusOr<std::string> out = Decompress(packed, 1 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(out.status().message().find("limits.max_message_bytes"), std::string::npos);
}

TEST(Gzip, RefusesMalformedTruncatedAndTrailingBytes) {
  const std::string packed = Compress("hello world");
  EXPECT_EQ(Decompress("not gzip", 100).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(packed.substr(0, packed.size() - 3), 100).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(packed + "x", 100).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gateway::http::gzip
