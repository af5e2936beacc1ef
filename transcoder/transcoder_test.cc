#include "transcoder/transcoder.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/dynamic_message.h"
#include "gtest/gtest.h"
#include "transcoder/test_util.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;
using testing::BookstorePool;
using testing::kBookstoreService;

TEST(Transcoder, UnaryCallRoundTrip) {
  absl::StatusOr<std::unique_ptr<const Transcoder>> t =
      Transcoder::Create(BookstorePool(), {kBookstoreService});
  ASSERT_TRUE(t.ok()) << t.status();
  absl::StatusOr<RouteMatch> m = (*t)->Match("POST", "/v1/shelves/3/books");
  ASSERT_TRUE(m.ok());
  absl::StatusOr<std::string> request = (*t)->TranslateRequest(
      *m, "request_id=r", R"({"title":"Dune","id":"8"})", "application/json");
  ASSERT_TRUE(request.ok()) << request.status();

  // The "backend" echoes the book of the request.
  google::protobuf::DynamicMessageFactory factory;
  std::unique_ptr<google::protobuf::Message> req(
      factory.GetPrototype(m->plan->method->input_type())->New());
  ASSERT_TRUE(req->ParseFromString(*request));
  const google::protobuf::Message& book = req->GetReflection()->GetMessage(
      *req, req->GetDescriptor()->FindFieldByName("book"));
  absl::StatusOr<HttpResponseBody> response =
      (*t)->TranslateResponse(*m->plan, book.SerializeAsString());
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, R"({"id":"8","title":"Dune"})");
}

TEST(Transcoder, NoRouteIsNotFoundAndBadInputIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<const Transcoder>> t =
      Transcoder::Create(BookstorePool(), {kBookstoreService});
  ASSERT_TRUE(t.ok());
  absl::StatusOr<RouteMatch> none = (*t)->Match("GET", "/v9/nothing");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(HttpStatusFromCode(none.status().code()), 404);

  absl::StatusOr<RouteMatch> m = (*t)->Match("GET", "/v1/shelves/x/books");
  ASSERT_TRUE(m.ok());
  absl::StatusOr<std::string> bad = (*t)->TranslateRequest(*m, "", "", "");
  EXPECT_EQ(HttpStatusFromCode(bad.status().code()), 400);
  EXPECT_EQ((*t)->ErrorBody(bad.status()),
            R"({"code":3,"message":"invalid value for path variable 'shelf': \"x\" is not )"
            R"(a valid int64","details":[]})");
}

TEST(Transcoder, OptionsGivenAtCreateApply) {
  TranscoderOptions options;
  options.request.reject_unknown_query_parameters = true;
  options.response.int64_as_number = true;
  options.default_stream_format = StreamFormat::kNdjson;
  absl::StatusOr<std::unique_ptr<const Transcoder>> t =
      Transcoder::Create(BookstorePool(), {kBookstoreService}, options);
  ASSERT_TRUE(t.ok());
  absl::StatusOr<RouteMatch> m = (*t)->Match("GET", "/v1/shelves/1/books/2");
  EXPECT_THAT(std::string((*t)->TranslateRequest(*m, "x=1", "", "").status().message()),
              HasSubstr("unknown query parameter \"x\""));
  EXPECT_EQ((*t)->TranslateResponse(*m->plan, std::string("\x08\x05", 2))->body,
            R"({"id":5})");
  EXPECT_EQ((*t)->StreamFormatFor("*/*"), StreamFormat::kNdjson);
  EXPECT_EQ((*t)->StreamFormatFor("text/event-stream"), StreamFormat::kServerSentEvents);
}

TEST(Transcoder, SharedInstanceServesManyThreadsAtOnce) {
  absl::StatusOr<std::unique_ptr<const Transcoder>> t =
      Transcoder::Create(BookstorePool(), {kBookstoreService});
  ASSERT_TRUE(t.ok());
  const Transcoder& transcoder = **t;
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&transcoder, &failures, i] {
      for (int n = 0; n < 500; ++n) {
        absl::StatusOr<RouteMatch> m = transcoder.Match("PATCH", "/v1/shelves/1/books/2");
        if (!m.ok()) {
          ++failures[i];
          continue;
        }
        absl::StatusOr<std::string> request = transcoder.TranslateRequest(
            *m, "", R"({"title":"t","author":{"name":"n"},"published":"2024-01-02T03:04:05Z"})",
            "application/json");
        absl::StatusOr<HttpResponseBody> response =
            transcoder.TranslateResponse(*m->plan, std::string("\x08\x07\x12\x01t", 5));
        if (!request.ok() || !response.ok() || response->body != R"({"id":"7","title":"t"})") {
          ++failures[i];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(Transcoder, InvalidRulesFailCreate) {
  absl::StatusOr<std::unique_ptr<const Transcoder>> t =
      Transcoder::Create(BookstorePool(), {"missing.Service"});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gateway::transcoder
