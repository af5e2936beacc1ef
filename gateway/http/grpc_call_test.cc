#include "gateway/http/grpc_call.h"

#include "gtest/gtest.h"

namespace gateway::http {
namespace {

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

}  // namespace
}  // namespace gateway::http
