#include "transcoder/status_mapping.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/duration.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "transcoder/test_util.h"

namespace gateway::transcoder {
namespace {

TEST(HttpStatusFromCode, FollowsTheStandardMapping) {
  const std::pair<int, int> kTable[] = {
      {0, 200},  {1, 499},  {2, 500},  {3, 400},  {4, 504},  {5, 404},
      {6, 409},  {7, 403},  {8, 429},  {9, 400},  {10, 409}, {11, 400},
      {12, 501}, {13, 500}, {14, 503}, {15, 500}, {16, 401}, {17, 500},
      {-1, 500}, {1000, 500}};
  for (auto [grpc, http] : kTable) {
    EXPECT_EQ(HttpStatusFromGrpcStatus(grpc), http) << grpc;
  }
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFromCode(absl::StatusCode::kDeadlineExceeded), 504);
}

class ErrorBodyTest : public ::testing::Test {
 protected:
  ErrorBodyTest() : errors_(testing::BookstorePool()) {}
  ErrorBodyFormatter errors_;
};

TEST_F(ErrorBodyTest, StatusWithoutDetails) {
  EXPECT_EQ(errors_.Format(absl::NotFoundError("no book 7")),
            R"({"code":5,"message":"no book 7","details":[]})");
}

TEST_F(ErrorBodyTest, MessageIsEscapedAndInvalidUtf8Replaced) {
  EXPECT_EQ(errors_.Format(absl::StatusCode::kInternal, "a\"b\\c\n\x01\xff", ""),
            "{\"code\":13,\"message\":\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\",\"details\":[]}");
}

TEST_F(ErrorBodyTest, DetailsAreDecodedThroughThePool) {
  google::rpc::Status status;
  status.set_code(3);
  google::protobuf::Any* author = status.add_details();
  author->set_type_url("type.googleapis.com/gateway.transcoder.testing.Author");
  author->set_value(std::string("\n\003bob\020\x07", 7));
  google::protobuf::Duration d;
  d.set_seconds(2);
  status.add_details()->PackFrom(d);
  google::protobuf::Any* unknown = status.add_details();
  unknown->set_type_url("type.googleapis.com/no.Such");
  unknown->set_value("\x01\x02");
  EXPECT_EQ(
      errors_.Format(absl::StatusCode::kInvalidArgument, "bad", status.SerializeAsString()),
      R"({"code":3,"message":"bad","details":[)"
      R"({"@type":"type.googleapis.com/gateway.transcoder.testing.Author","name":"bob","birthYear":7},)"
      R"({"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"},)"
      R"({"@type":"type.googleapis.com/no.Such","value":"AQI="}]})");
}

TEST_F(ErrorBodyTest, UndecodableDetailsAreDropped) {
  EXPECT_EQ(errors_.Format(absl::StatusCode::kUnavailable, "down", "\xff\xff\xff"),
            R"({"code":14,"message":"down","details":[]})");
}

TEST_F(ErrorBodyTest, EmptyDetailMessageHasOnlyItsType) {
  google::rpc::Status status;
  status.add_details()->set_type_url("type.googleapis.com/gateway.transcoder.testing.Author");
  EXPECT_EQ(errors_.Format(absl::StatusCode::kAborted, "", status.SerializeAsString()),
            R"({"code":10,"message":"","details":[)"
            R"({"@type":"type.googleapis.com/gateway.transcoder.testing.Author"}]})");
}

}  // namespace
}  // namespace gateway::transcoder
