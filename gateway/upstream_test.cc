#include "gateway/upstream.h"

#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/byte_buffer.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DescribeTransportFailure, NamesWhatFailedWithoutAddresses) {
  EXPECT_EQ(DescribeTransportFailure(
                "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
                "Failed to connect to remote host: Connection refused"),
            "failed to connect");
  EXPECT_EQ(DescribeTransportFailure(
                "failed to connect to all addresses; last error: UNAVAILABLE: "
                "ipv4:10.0.0.1:443: Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL "
                "routines::certificate verify failed"),
            "TLS handshake failed");
  EXPECT_EQ(DescribeTransportFailure(
                "DNS resolution failed for backend:50051: C-ares status is not ARES_SUCCESS"),
            "name resolution failed");
  EXPECT_EQ(DescribeTransportFailure("Socket closed"), "connection lost");
  EXPECT_EQ(DescribeTransportFailure("Received RST_STREAM with error code 2"),
            "connection lost");
  EXPECT_EQ(DescribeTransportFailure("something new at ipv4:10.1.2.3:80"),
            "transport failure");
  EXPECT_THAT(DescribeTransportFailure("ipv4:10.1.2.3:80: Connection refused"),
              Not(HasSubstr("10.1.2.3")));
}

}  // namespace
}  // namespace gateway
