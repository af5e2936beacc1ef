#include "gateway/grpc/metadata.h"

#include "gtest/gtest.h"

namespace gateway {
namespace {

TEST(IsForwardedHeader, PassesApplicationHeaders) {
  for (const char* key : {"authorization", "x-request-id", "traceparent", "x-echo-a",
                          "custom-bin", "accept", "cookie", "te-custom", "hostname"}) {
    EXPECT_TRUE(IsForwardedHeader(key)) << key;
  }
}

TEST(IsForwardedHeader, DropsHopByHopAndReservedHeaders) {
  for (const char* key :
       {":path", ":authority", "grpc-timeout", "grpc-status", "grpc-encoding",
        "grpc-accept-encoding", "grpc-trace-bin", "te", "content-type", "content-length",
        "user-agent", "host", "connection", "keep-alive", "proxy-connection",
        "transfer-encoding", "upgrade", "accept-encoding", ""}) {
    EXPECT_FALSE(IsForwardedHeader(key)) << key;
  }
}

}  // namespace
}  // namespace gateway
