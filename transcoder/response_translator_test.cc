#include "transcoder/response_translator.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "transcoder/json_stream.h"
#include "transcoder/test_util.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;
using testing::BookstorePool;
using testing::kBookstoreService;

class ResponseTest : public ::testing::Test {
 protected:
  ResponseTest()
      : routes_(*RouteSet::Create(BookstorePool(), {kBookstoreService})),
        translator_(*routes_) {}

  // Serializes the text format `text` as `type`.
  std::string Bytes(const std::string& type, const std::string& text) {
    const google::protobuf::Descriptor* d = BookstorePool().FindMessageTypeByName(type);
    EXPECT_NE(d, nullptr) << type;
    std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(d)->New());
    google::protobuf::TextFormat::Parser parser;
    EXPECT_TRUE(parser.ParseFromString(text, m.get())) << text;
    return m->SerializeAsString();
  }

  const MethodPlan& Plan(const std::string& http_method, const std::string& path) {
    plans_.push_back(*routes_->Match(http_method, path));
    return *plans_.back().plan;
  }

  std::string Json(const MethodPlan& plan, const std::string& bytes,
                   const ResponseOptions& options = ResponseOptions()) {
    absl::StatusOr<HttpResponseBody> r = translator_.Translate(plan, bytes, options);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->content_type, "application/json");
    return r->body;
  }

  static constexpr char kBook[] = "gateway.transcoder.testing.Book";
  std::unique_ptr<const RouteSet> routes_;
  ResponseTranslator translator_;
  google::protobuf::DynamicMessageFactory factory_;
  std::vector<RouteMatch> plans_;
};

TEST_F(ResponseTest, MessageBecomesLowerCamelCaseJsonWithQuotedInt64) {
  const MethodPlan& plan = Plan("GET", "/v1/shelves/1/books/2");
  EXPECT_EQ(Json(plan, Bytes(kBook, R"pb(id: 5 title: "Dune" author { name: "F" birth_year: 1920 }
                                         display_name: "d" in_stock: true)pb")),
            R"({"id":"5","title":"Dune","author":{"name":"F","birthYear":1920},)"
            R"("inStock":true,"displayTitle":"d"})");
}

TEST_F(ResponseTest, EmptyMessageIsEmptyObject) {
  EXPECT_EQ(Json(Plan("GET", "/v1/shelves/1/books/2"), ""), "{}");
}

TEST_F(ResponseTest, EmitDefaultValuesPrintsEveryPrimitiveField) {
  ResponseOptions options;
  options.emit_default_values = true;
  std::string json = Json(Plan("GET", "/v1/shelves/1/books/2"), "", options);
  EXPECT_THAT(json, HasSubstr(R"("id":"0")"));
  EXPECT_THAT(json, HasSubstr(R"("title":"")"));
  EXPECT_THAT(json, HasSubstr(R"("tags":[])"));
  EXPECT_THAT(json, HasSubstr(R"("genre":"GENRE_UNSPECIFIED")"));
  EXPECT_THAT(json, HasSubstr(R"("labels":{})"));
}

TEST_F(ResponseTest, ProtoFieldNamesAndEnumsAsInts) {
  ResponseOptions options;
  options.use_proto_field_names = true;
  options.enums_as_ints = true;
  EXPECT_EQ(Json(Plan("GET", "/v1/shelves/1/books/2"),
                 Bytes(kBook, "display_name: 'x' genre: SCIENCE in_stock: true"), options),
            R"({"genre":2,"in_stock":true,"display_name":"x"})");
}

TEST_F(ResponseTest, Int64AsNumberRewritesEvery64BitField) {
  ResponseOptions options;
  options.int64_as_number = true;
  EXPECT_EQ(
      Json(Plan("GET", "/v1/shelves/1/books/2"),
           Bytes(kBook, R"pb(id: -5 isbn: 18446744073709551615 balance: -7 checksum: 9
                             title: "123" editions { key: 1 value { name: "A" } }
                             ratings: 1)pb"),
           options),
      R"({"id":-5,"title":"123","isbn":18446744073709551615,"balance":-7,)"
      R"("checksum":9,"ratings":[1],"editions":{"1":{"name":"A"}}})");
}

TEST_F(ResponseTest, Int64AsNumberReachesRepeatedMessagesWrappersAndMaps) {
  const google::protobuf::Descriptor* req =
      BookstorePool().FindMessageTypeByName("gateway.transcoder.testing.ListBooksRequest");
  ResponseOptions options;
  options.int64_as_number = true;
  absl::StatusOr<std::string> json = translator_.MessageToJson(
      req,
      Bytes("gateway.transcoder.testing.ListBooksRequest",
            R"pb(shelf: 1 filter { id: 2 co_authors { name: "x" } } min_id { value: 3 }
                 ids: 4 ids: -5 big: 6 page_token: "7")pb"),
      options);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(*json,
            R"({"shelf":1,"pageToken":"7","filter":{"id":2,"coAuthors":[{"name":"x"}]},)"
            R"("minId":3,"big":6,"ids":[4,-5]})");
  const google::protobuf::Descriptor* list =
      BookstorePool().FindMessageTypeByName("gateway.transcoder.testing.ListBooksResponse");
  json = translator_.MessageToJson(
      list,
      Bytes("gateway.transcoder.testing.ListBooksResponse",
            "books { id: 1 } books { id: 2 balance: 3 }"),
      options);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, R"({"books":[{"id":1},{"id":2,"balance":3}]})");
}

TEST_F(ResponseTest, PrettyPrintIndents) {
  ResponseOptions options;
  options.pretty_print = true;
  std::string json =
      Json(Plan("GET", "/v1/shelves/1/books/2"), Bytes(kBook, "id: 1 tags: 'a'"), options);
  EXPECT_THAT(json, HasSubstr("\n"));
  EXPECT_THAT(json, HasSubstr("\"id\": \"1\""));
  options.int64_as_number = true;
  EXPECT_EQ(Json(Plan("GET", "/v1/shelves/1/books/2"),
                 Bytes(kBook, "id: 1 tags: 'a' author { }"), options),
            "{\n  \"id\": 1,\n  \"author\": {},\n  \"tags\": [\n    \"a\"\n  ]\n}");
}

TEST_F(ResponseTest, WellKnownTypesUseTheirJsonForms) {
  std::string json = Json(
      Plan("GET", "/v1/shelves/1/books/2"),
      Bytes(kBook, R"pb(published { seconds: 1704164645 nanos: 500000000 }
                        read_time { seconds: 90 } pages { value: 3 } subtitle { value: "s" }
                        signed { value: false } note { null_value: NULL_VALUE }
                        metadata { fields { key: "k" value { list_value {
                          values { number_value: 1.5 } values { bool_value: true } } } } }
                        extra { type_url: "type.googleapis.com/gateway.transcoder.testing.Author"
                                value: "\n\003any" }
                        rating: inf price: nan cover: "\373\377")pb"));
  EXPECT_THAT(json, HasSubstr(R"("published":"2024-01-02T03:04:05.500Z")"));
  EXPECT_THAT(json, HasSubstr(R"("readTime":"90s")"));
  EXPECT_THAT(json, HasSubstr(R"("pages":3)"));
  EXPECT_THAT(json, HasSubstr(R"("subtitle":"s")"));
  EXPECT_THAT(json, HasSubstr(R"("signed":false)"));
  EXPECT_THAT(json, HasSubstr(R"("note":null)"));
  EXPECT_THAT(json, HasSubstr(R"("metadata":{"k":[1.5,true]})"));
  EXPECT_THAT(json, HasSubstr(
                        R"("extra":{"@type":"type.googleapis.com/gateway.transcoder.testing.Author","name":"any"})"));
  EXPECT_THAT(json, HasSubstr(R"("rating":"Infinity")"));
  EXPECT_THAT(json, HasSubstr(R"("price":"NaN")"));
  EXPECT_THAT(json, HasSubstr(R"("cover":"+/8=")"));
}

TEST_F(ResponseTest, EchoOfStructListEmptyAndAnyWellKnown) {
  const MethodPlan& plan = Plan("POST", "/v1/echo");
  EXPECT_EQ(Json(plan, Bytes("gateway.transcoder.testing.EchoRequest",
                             R"pb(list { values { string_value: "a" } } empty { }
                                  any { type_url: "type.googleapis.com/google.protobuf.Duration"
                                        value: "\010\002" })pb")),
            R"({"any":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"},)"
            R"("list":["a"],"empty":{}})");
}

TEST_F(ResponseTest, ResponseBodySelectsAScalarField) {
  const MethodPlan& plan = Plan("GET", "/v1/shelves/1/books/2/title");
  EXPECT_EQ(Json(plan, Bytes(kBook, "id: 1 title: 'Dune'")), "\"Dune\"");
  EXPECT_EQ(Json(plan, Bytes(kBook, "id: 1")), "\"\"");
}

TEST_F(ResponseTest, HttpBodyResponsePassesRaw) {
  const MethodPlan& plan = Plan("GET", "/v1/downloads/x");
  absl::StatusOr<HttpResponseBody> r = translator_.Translate(
      plan,
      Bytes("google.api.HttpBody", R"pb(content_type: "image/png" data: "\000\001png")pb"),
      ResponseOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content_type, "image/png");
  EXPECT_EQ(r->body, std::string("\0\001png", 5));
}

TEST_F(ResponseTest, MalformedResponseBytesAreAnError) {
  absl::StatusOr<HttpResponseBody> r =
      translator_.Translate(Plan("GET", "/v1/shelves/1/books/2"), std::string("\x0a\x05" "ab"), ResponseOptions());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("cannot convert response gateway.transcoder.testing.Book to JSON"));
  r = translator_.Translate(Plan("GET", "/v1/shelves/1/books/2/title"), "\xff",
                            ResponseOptions());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ResponseTest, ServerStreamFramedAsJsonArrayNdjsonAndSse) {
  const MethodPlan& plan = Plan("GET", "/v1/shelves/1/events");
  ASSERT_TRUE(plan.server_streaming);
  std::string m1 = Json(plan, Bytes("gateway.transcoder.testing.BookEvent", "id: 1 kind: 'a'"));
  std::string m2 = Json(plan, Bytes("gateway.transcoder.testing.BookEvent", "id: 2"));
  const std::string error = R"({"code":14,"message":"backend gone","details":[]})";

  // Each call in its own statement: the framer is stateful.
  StreamFramer array(StreamFormat::kJsonArray);
  std::string out = array.Message(m1);
  out += array.Message(m2);
  out += array.Error(error);
  EXPECT_EQ(out, R"([{"id":"1","kind":"a"},{"id":"2"},{"error":)" + error + "}]");

  StreamFramer ndjson(StreamFormat::kNdjson);
  out = ndjson.Message(m1);
  out += ndjson.Message(m2);
  out += ndjson.End();
  EXPECT_EQ(out, "{\"id\":\"1\",\"kind\":\"a\"}\n{\"id\":\"2\"}\n");

  StreamFramer sse(StreamFormat::kServerSentEvents);
  out = sse.Message(m1);
  out += sse.Error(error);
  EXPECT_EQ(out, "data: {\"id\":\"1\",\"kind\":\"a\"}\n\nevent: error\ndata: " + error + "\n\n");
}

}  // namespace
}  // namespace gateway::transcoder
