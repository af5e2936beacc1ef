#include "transcoder/request_translator.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "transcoder/field_text.h"
#include "transcoder/test_util.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;
using testing::BookstorePool;
using testing::kBookstoreService;

class Fixture {
 public:
  Fixture() {
    RouteSetOptions options;
    options.expose_grpc_paths = true;
    routes_ = *RouteSet::Create(BookstorePool(), {kBookstoreService}, options);
    translator_ = std::make_unique<RequestTranslator>(*routes_);
  }
  const RouteSet& routes() const { return *routes_; }
  const RequestTranslator& translator() const { return *translator_; }

  // Parses `bytes` as `type` and returns its text format, or "UNPARSEABLE".
  std::string ToText(const google::protobuf::Descriptor* type, const std::string& bytes) {
    std::unique_ptr<google::protobuf::Message> m(factory_.GetPrototype(type)->New());
    if (!m->ParseFromString(bytes)) return "UNPARSEABLE";
    return m->ShortDebugString();
  }

  // True when `bytes` and the text format `expected` are the same message.
  ::testing::AssertionResult Same(const google::protobuf::Descriptor* type,
                                  const std::string& bytes, const std::string& expected) {
    std::unique_ptr<google::protobuf::Message> got(factory_.GetPrototype(type)->New());
    std::unique_ptr<google::protobuf::Message> want(factory_.GetPrototype(type)->New());
    if (!got->ParseFromString(bytes)) return ::testing::AssertionFailure() << "unparseable";
    if (!google::protobuf::TextFormat::ParseFromString(expected, want.get())) {
      return ::testing::AssertionFailure() << "bad expectation: " << expected;
    }
    if (google::protobuf::util::MessageDifferencer::Equals(*got, *want)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "\n got: " << got->ShortDebugString()
                                         << "\nwant: " << want->ShortDebugString();
  }

 private:
  std::unique_ptr<const RouteSet> routes_;
  std::unique_ptr<RequestTranslator> translator_;
  google::protobuf::DynamicMessageFactory factory_;
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

struct Case {
  std::string name;
  std::string http_method;
  std::string path;
  std::string query;
  std::string body;
  std::string expected;  // text format of the input message, or "ERROR: <substring>"
  std::string flags = "";  // reject_unknown ignore_json ci_enums no_plus no_mask
  std::string content_type = "application/json";
};

RequestOptions OptionsFromFlags(absl::string_view flags) {
  RequestOptions o;
  o.reject_unknown_query_parameters = absl::StrContains(flags, "reject_unknown");
  o.ignore_unknown_json_fields = absl::StrContains(flags, "ignore_json");
  o.case_insensitive_enums = absl::StrContains(flags, "ci_enums");
  o.query_plus_as_space = !absl::StrContains(flags, "no_plus");
  o.fill_update_mask = !absl::StrContains(flags, "no_mask");
  o.ignored_query_parameters.insert("access_token");
  return o;
}

class TranslateTest : public ::testing::TestWithParam<Case> {};

TEST_P(TranslateTest, ProducesExpectedMessageOrError) {
  const Case& c = GetParam();
  absl::StatusOr<RouteMatch> m = F().routes().Match(c.http_method, c.path);
  ASSERT_TRUE(m.ok()) << m.status();
  absl::StatusOr<std::string> bytes = F().translator().Translate(
      *m, c.query, c.body, c.content_type, OptionsFromFlags(c.flags));
  if (absl::StartsWith(c.expected, "ERROR: ")) {
    ASSERT_FALSE(bytes.ok()) << "expected an error, got "
                             << F().ToText(m->plan->method->input_type(), *bytes);
    EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bytes.status().message()),
                HasSubstr(c.expected.substr(strlen("ERROR: "))));
    return;
  }
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_TRUE(F().Same(m->plan->method->input_type(), *bytes, c.expected));
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) { return info.param.name; }

const char kShelf7[] = "/v1/shelves/7/books";

INSTANTIATE_TEST_SUITE_P(
    Query, TranslateTest,
    ::testing::Values(
        Case{"PathOnly", "GET", kShelf7, "", "", "shelf: 7"},
        Case{"Int32Param", "GET", kShelf7, "page_size=5", "", "shelf: 7 page_size: 5"},
        Case{"StringParam", "GET", kShelf7, "page_token=abc", "",
             "shelf: 7 page_token: 'abc'"},
        Case{"CamelCaseName", "GET", kShelf7, "pageSize=5&pageToken=x", "",
             "shelf: 7 page_size: 5 page_token: 'x'"},
        Case{"NestedField", "GET", kShelf7, "filter.title=Dune", "",
             "shelf: 7 filter { title: 'Dune' }"},
        Case{"DeeplyNestedField", "GET", kShelf7, "filter.author.name=Frank", "",
             "shelf: 7 filter { author { name: 'Frank' } }"},
        Case{"NestedFieldsMerge", "GET", kShelf7,
             "filter.author.name=F&filter.author.birth_year=1920&filter.title=D", "",
             "shelf: 7 filter { title: 'D' author { name: 'F' birth_year: 1920 } }"},
        Case{"CustomJsonName", "GET", kShelf7, "filter.displayTitle=X", "",
             "shelf: 7 filter { display_name: 'X' }"},
        Case{"RepeatedByRepetition", "GET", kShelf7, "tags=a&tags=b&tags=a", "",
             "shelf: 7 tags: 'a' tags: 'b' tags: 'a'"},
        Case{"RepeatedInt64", "GET", kShelf7, "ids=-5&ids=9223372036854775807", "",
             "shelf: 7 ids: -5 ids: 9223372036854775807"},
        Case{"EnumByName", "GET", kShelf7, "genres=FICTION&genres=SCIENCE", "",
             "shelf: 7 genres: FICTION genres: SCIENCE"},
        Case{"EnumByNumber", "GET", kShelf7, "genres=2", "", "shelf: 7 genres: SCIENCE"},
        Case{"EnumCaseInsensitive", "GET", kShelf7, "genres=fiction", "",
             "shelf: 7 genres: FICTION", "ci_enums"},
        Case{"EnumCaseSensitiveByDefault", "GET", kShelf7, "genres=fiction", "",
             "ERROR: invalid value for query parameter \"genres\": \"fiction\" is not a "
             "value of enum gateway.transcoder.testing.Genre"},
        Case{"BoolTrue", "GET", kShelf7, "in_stock=true", "", "shelf: 7 in_stock: true"},
        Case{"BoolOne", "GET", kShelf7, "in_stock=1", "", "shelf: 7 in_stock: true"},
        Case{"BoolFalseUpper", "GET", kShelf7, "in_stock=FALSE", "", "shelf: 7"},
        Case{"BoolInvalid", "GET", kShelf7, "in_stock=yes", "",
             "ERROR: invalid value for query parameter \"in_stock\": \"yes\" is not a "
             "valid bool"},
        Case{"Uint64Max", "GET", kShelf7, "big=18446744073709551615", "",
             "shelf: 7 big: 18446744073709551615"},
        Case{"Uint64Overflow", "GET", kShelf7, "big=18446744073709551616", "",
             "ERROR: \"18446744073709551616\" is out of range for uint64"},
        Case{"Uint64Negative", "GET", kShelf7, "big=-1", "",
             "ERROR: \"-1\" is out of range for uint64"},
        Case{"Int32Overflow", "GET", kShelf7, "page_size=2147483648", "",
             "ERROR: invalid value for query parameter \"page_size\": \"2147483648\" is "
             "out of range for int32"},
        Case{"Int32Garbage", "GET", kShelf7, "page_size=5x", "",
             "ERROR: \"5x\" is not a valid int32"},
        Case{"EmptyInt", "GET", kShelf7, "page_size=", "",
             "ERROR: \"\" is not a valid int32"},
        Case{"Double", "GET", kShelf7, "min_price=1.5", "", "shelf: 7 min_price: 1.5"},
        Case{"DoubleExponent", "GET", kShelf7, "min_price=-2.5e3", "",
             "shelf: 7 min_price: -2500"},
        Case{"DoubleInfinity", "GET", kShelf7, "min_price=Infinity", "",
             "shelf: 7 min_price: inf"},
        Case{"DoubleMinusInfinity", "GET", kShelf7, "min_price=-Infinity", "",
             "shelf: 7 min_price: -inf"},
        Case{"DoubleOutOfRange", "GET", kShelf7, "min_price=1e400", "",
             "ERROR: \"1e400\" is out of range"},
        Case{"Float", "GET", kShelf7, "max_rating=3.25", "", "shelf: 7 max_rating: 3.25"},
        Case{"FloatOutOfRange", "GET", kShelf7, "max_rating=1e39", "",
             "ERROR: \"1e39\" is out of range for a float"},
        Case{"BytesBase64", "GET", kShelf7, "token=aGVsbG8=", "",
             "shelf: 7 token: 'hello'"},
        Case{"BytesBase64Url", "GET", kShelf7, "token=-_8=", "",
             "shelf: 7 token: '\\373\\377'"},
        Case{"BytesBase64PlusDecodedAsSpace", "GET", kShelf7, "token=+/8=", "",
             "shelf: 7 token: '\\373\\377'"},
        Case{"BytesPercentEncoded", "GET", kShelf7, "token=%2B%2F8%3D", "",
             "shelf: 7 token: '\\373\\377'"},
        Case{"BytesInvalid", "GET", kShelf7, "token=!!!", "",
             "ERROR: \"!!!\" is not valid base64 or base64url"},
        Case{"Int64Wrapper", "GET", kShelf7, "min_id=5", "", "shelf: 7 min_id { value: 5 }"},
        Case{"DoubleWrapper", "GET", kShelf7, "score=2.5", "", "shelf: 7 score { value: 2.5 }"},
        Case{"BoolWrapperFalseIsPresent", "GET", kShelf7, "flag=false", "",
             "shelf: 7 flag { }"},
        Case{"StringWrapper", "GET", kShelf7, "name_filter=x", "",
             "shelf: 7 name_filter { value: 'x' }"},
        Case{"BytesWrapper", "GET", kShelf7, "blob=aGk=", "", "shelf: 7 blob { value: 'hi' }"},
        Case{"WrapperBadValue", "GET", kShelf7, "min_id=x", "",
             "ERROR: invalid value for query parameter \"min_id\": \"x\" is not a valid int64"},
        Case{"Timestamp", "GET", kShelf7, "since=2024-01-02T03:04:05Z", "",
             "shelf: 7 since { seconds: 1704164645 }"},
        Case{"TimestampWithOffsetAndFraction", "GET", kShelf7,
             "since=2024-01-02T04:04:05.5%2B01:00", "",
             "shelf: 7 since { seconds: 1704164645 nanos: 500000000 }"},
        Case{"TimestampInvalid", "GET", kShelf7, "since=yesterday", "",
             "ERROR: \"yesterday\" is not an RFC 3339 timestamp"},
        Case{"Duration", "GET", kShelf7, "max_age=1.5s", "",
             "shelf: 7 max_age { seconds: 1 nanos: 500000000 }"},
        Case{"NegativeDuration", "GET", kShelf7, "max_age=-2s", "",
             "shelf: 7 max_age { seconds: -2 }"},
        Case{"DurationWithoutUnit", "GET", kShelf7, "max_age=5", "",
             "ERROR: \"5\" is not a duration"},
        Case{"FieldMask", "GET", kShelf7, "read_mask=title,author.name", "",
             "shelf: 7 read_mask { paths: 'title' paths: 'author.name' }"},
        Case{"FieldMaskCamelCase", "GET", kShelf7, "read_mask=displayName,coAuthors", "",
             "shelf: 7 read_mask { paths: 'display_name' paths: 'co_authors' }"},
        Case{"MapEntries", "GET", kShelf7, "labels[env]=prod&labels[tier]=gold", "",
             "shelf: 7 labels { key: 'env' value: 'prod' } labels { key: 'tier' value: "
             "'gold' }"},
        Case{"MapPercentEncodedBrackets", "GET", kShelf7, "labels%5Benv%5D=prod", "",
             "shelf: 7 labels { key: 'env' value: 'prod' }"},
        Case{"MapIntKey", "GET", kShelf7, "by_number[3]=x", "",
             "shelf: 7 by_number { key: 3 value: 'x' }"},
        Case{"MapBadIntKey", "GET", kShelf7, "by_number[x]=y", "",
             "ERROR: invalid value for query parameter \"by_number[x]\": \"x\" is not a "
             "valid int32"},
        Case{"MapEnumValue", "GET", kShelf7, "genre_labels[a]=HISTORY", "",
             "shelf: 7 genre_labels { key: 'a' value: HISTORY }"},
        Case{"MapWithoutKey", "GET", kShelf7, "labels=x", "",
             "ERROR: invalid query parameter \"labels\": field 'labels' is a map; use "
             "labels[key]=value"},
        Case{"KeyOnNonMap", "GET", kShelf7, "tags[x]=1", "",
             "ERROR: invalid query parameter \"tags[x]\": field 'tags' is not a map"},
        Case{"UnknownIgnored", "GET", kShelf7, "foo=bar&filter.nope=1", "", "shelf: 7"},
        Case{"UnknownRejected", "GET", kShelf7, "foo=bar", "",
             "ERROR: unknown query parameter \"foo\": no such field", "reject_unknown"},
        Case{"UnknownNestedRejected", "GET", kShelf7, "filter.nope=1", "",
             "ERROR: unknown query parameter \"filter.nope\": no such field",
             "reject_unknown"},
        Case{"IgnoredParameterNeverRejected", "GET", kShelf7, "access_token=x", "",
             "shelf: 7", "reject_unknown"},
        Case{"PercentEncodedKeyAndValue", "GET", kShelf7, "page%5Ftoken=a%20b", "",
             "shelf: 7 page_token: 'a b'"},
        Case{"PlusAsSpace", "GET", kShelf7, "page_token=a+b", "", "shelf: 7 page_token: 'a b'"},
        Case{"PlusKept", "GET", kShelf7, "page_token=a+b", "", "shelf: 7 page_token: 'a+b'",
             "no_plus"},
        Case{"InvalidUtf8Rejected", "GET", kShelf7, "page_token=%FF%FE", "",
             "ERROR: invalid value for query parameter \"page_token\": the value is not "
             "valid UTF-8"},
        Case{"NulIsData", "GET", kShelf7, "page_token=a%00b", "",
             "shelf: 7 page_token: 'a\\000b'"},
        Case{"PathWinsOverQuery", "GET", kShelf7, "shelf=9", "", "shelf: 7"},
        Case{"MessageFieldRejected", "GET", kShelf7, "filter=x", "",
             "ERROR: field 'filter' is a message (gateway.transcoder.testing.Book) and "
             "cannot be set from text"},
        Case{"StructFieldRejected", "GET", kShelf7, "filter.metadata=x", "",
             "ERROR: field 'metadata' is a message (google.protobuf.Struct)"},
        Case{"KeyWithoutValue", "GET", kShelf7, "page_token", "", "shelf: 7"},
        Case{"EmptyPairsSkipped", "GET", kShelf7, "&&page_size=1&&", "",
             "shelf: 7 page_size: 1"},
        Case{"OtherIntegerEncodings", "GET", kShelf7,
             "filter.balance=-3&filter.checksum=7&filter.shelf_pos=-2&filter.shelf_hint="
             "4294967295",
             "",
             "shelf: 7 filter { balance: -3 checksum: 7 shelf_pos: -2 shelf_hint: 4294967295 }"},
        Case{"RepeatedMessageNotTraversed", "GET", kShelf7, "filter.co_authors.name=x", "",
             "ERROR: unknown query parameter \"filter.co_authors.name\"", "reject_unknown"},
        Case{"SecondBindingWithoutPathVariables", "GET", "/v1/books", "shelf=3", "",
             "shelf: 3"},
        Case{"GetBook", "GET", "/v1/shelves/1/books/2", "view=FULL", "",
             "shelf: 1 book: 2 view: 'FULL'"},
        Case{"BodyIgnoredWithoutBodyRule", "GET", "/v1/shelves/1/books/2", "",
             "{\"view\":\"x\"}", "shelf: 1 book: 2"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    Path, TranslateTest,
    ::testing::Values(
        Case{"InvalidPathInt", "GET", "/v1/shelves/abc/books", "", "",
             "ERROR: invalid value for path variable 'shelf': \"abc\" is not a valid int64"},
        Case{"NegativePathInt", "GET", "/v1/shelves/-4/books", "", "", "shelf: -4"},
        Case{"PathOverflow", "GET", "/v1/shelves/99999999999999999999/books", "", "",
             "ERROR: invalid value for path variable 'shelf'"},
        Case{"MultiSegmentKeepsEncodedSlash", "GET", "/v1/resources/r%201/items/i%2F2", "",
             "", "name: 'resources/r 1/items/i%2F2'"},
        Case{"DoubleWildcard", "GET", "/v1/files/a/b/c.txt", "", "", "path: 'a/b/c.txt'"},
        Case{"DotSegmentsAreData", "GET", "/v1/files/../etc/passwd", "", "",
             "path: '../etc/passwd'"},
        Case{"CustomMethod", "HEAD", "/v1/shelves/x", "", "", "name: 'shelves/x'"},
        Case{"PathInvalidUtf8", "PUT", "/v1/uploads/%FF", "", "",
             "ERROR: invalid value for path variable 'name': the value is not valid UTF-8"}));

// Two members of one oneof in one request are refused, as protobuf's JSON mapping does.
INSTANTIATE_TEST_SUITE_P(
    Oneof, TranslateTest,
    ::testing::Values(
        Case{"TwoQueryParameters", "GET", kShelf7, "filter.ebookUrl=u&filter.paper_weight=3", "",
             "ERROR: query parameter 'filter.ebook_url' and query parameter "
             "'filter.paper_weight' set two members of oneof 'filter.format' ('ebook_url' and "
             "'paper_weight'); set at most one"},
        Case{"OneMemberAndOtherFields", "GET", kShelf7, "filter.ebookUrl=u&filter.title=t", "",
             "shelf: 7 filter { ebook_url: 'u' title: 't' }"},
        Case{"SameMemberTwiceIsNoConflict", "GET", kShelf7,
             "filter.paperWeight=2&filter.paper_weight=3", "", "shelf: 7 filter { paper_weight: 3 }"},
        Case{"PathVariableAndQueryParameter", "GET", "/v1/resources/r/items/i", "path=x", "",
             "ERROR: query parameter 'path' and path variable 'name' set two members of oneof "
             "'target' ('path' and 'name'); set at most one"},
        Case{"TwoJsonMembers", "POST", "/v1/shelves/1/books", "",
             R"({"ebookUrl":"u","paperWeight":3})",
             "ERROR: invalid JSON body for field 'book': (): fields 'ebook_url' and "
             "'paper_weight' are both members of oneof 'format'; set at most one"},
        Case{"TwoJsonMembersOfTheWholeBody", "POST", "/v1/echo", "",
             R"({"book":{"paper_weight":3,"ebook_url":""}})",
             "ERROR: invalid JSON body: (book): fields 'paper_weight' and 'ebook_url' are both "
             "members of oneof 'format'; set at most one"},
        Case{"NullMemberSetsNothing", "POST", "/v1/shelves/1/books", "",
             R"({"ebookUrl":null,"paperWeight":3})", "shelf: 1 book { paper_weight: 3 }"}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    Body, TranslateTest,
    ::testing::Values(
        Case{"BodyField", "POST", "/v1/shelves/1/books", "request_id=r1",
             R"({"title":"Dune","author":{"name":"Frank","birthYear":1920}})",
             "shelf: 1 book { title: 'Dune' author { name: 'Frank' birth_year: 1920 } } "
             "request_id: 'r1'"},
        Case{"BodyJsonNameAndProtoName", "POST", "/v1/shelves/1/books", "",
             R"({"displayTitle":"x","in_stock":true,"birth_year_is_unknown":null})",
             "ERROR: birth_year_is_unknown"},
        Case{"BodyJsonNameAndProtoNameAccepted", "POST", "/v1/shelves/1/books", "",
             R"({"displayTitle":"x","in_stock":true,"co_authors":[{"name":"a"}]})",
             "shelf: 1 book { display_name: 'x' in_stock: true co_authors { name: 'a' } }"},
        Case{"BodyOriginalNameOfJsonNameField", "POST", "/v1/shelves/1/books", "",
             R"({"display_name":"y"})", "shelf: 1 book { display_name: 'y' }"},
        Case{"QueryCannotSetBodyField", "POST", "/v1/shelves/1/books", "book.title=x", "",
             "shelf: 1"},
        Case{"QueryForBodyFieldRejected", "POST", "/v1/shelves/1/books", "book.title=x", "",
             "ERROR: unknown query parameter \"book.title\": the field is set by the body",
             "reject_unknown"},
        Case{"EveryFieldKind", "POST", "/v1/shelves/1/books", "",
             R"({"id":"5","tags":["a","b"],"genre":"SCIENCE","labels":{"k":"v"},)"
             R"("published":"2024-01-02T03:04:05Z","readTime":"3s","pages":300,)"
             R"("cover":"aGk=","price":1.5,"rating":"Infinity","inStock":true,"isbn":"123",)"
             R"("metadata":{"a":[1,"x",null,true]},"ebookUrl":"u","balance":"-7",)"
             R"("checksum":"9","ratings":[1,2],"editions":{"1":{"name":"A"}},)"
             R"("subtitle":"s","signed":false,"note":3,"genres":[1,"HISTORY"],)"
             R"("extra":{"@type":"type.googleapis.com/gateway.transcoder.testing.Author",)"
             R"("name":"any"}})",
             R"pb(shelf: 1 book {
               id: 5 tags: "a" tags: "b" genre: SCIENCE labels { key: "k" value: "v" }
               published { seconds: 1704164645 } read_time { seconds: 3 } pages { value: 300 }
               cover: "hi" price: 1.5 rating: inf in_stock: true isbn: 123
               metadata { fields { key: "a" value { list_value {
                 values { number_value: 1 } values { string_value: "x" }
                 values { null_value: NULL_VALUE } values { bool_value: true } } } } }
               ebook_url: "u" balance: -7 checksum: 9 ratings: 1 ratings: 2
               editions { key: 1 value { name: "A" } } subtitle { value: "s" } signed { }
               note { number_value: 3 } genres: FICTION genres: HISTORY
               extra { type_url: "type.googleapis.com/gateway.transcoder.testing.Author"
                       value: "\n\003any" } })pb"},
        Case{"EmptyBody", "POST", "/v1/shelves/1/books", "", "", "shelf: 1"},
        Case{"WhitespaceBody", "POST", "/v1/shelves/1/books", "", " \n", "shelf: 1"},
        Case{"TruncatedJson", "POST", "/v1/shelves/1/books", "", R"({"title":)",
             "ERROR: invalid JSON body for field 'book': invalid JSON at byte 9: "
             "unexpected end of input"},
        Case{"TrailingGarbage", "POST", "/v1/shelves/1/books", "", R"({} x)",
             "ERROR: invalid JSON at byte 3: unexpected data after the JSON value"},
        Case{"UnknownJsonFieldRejected", "POST", "/v1/shelves/1/books", "", R"({"nope":1})",
             "ERROR: invalid JSON body for field 'book': "},
        Case{"UnknownJsonFieldIgnored", "POST", "/v1/shelves/1/books", "",
             R"({"nope":{"x":[1]},"title":"t"})", "shelf: 1 book { title: 't' }",
             "ignore_json"},
        Case{"WrongJsonType", "POST", "/v1/shelves/1/books", "", R"({"inStock":"maybe"})",
             "ERROR: invalid JSON body for field 'book': (in_stock): \"maybe\" is not a "
             "valid bool"},
        Case{"Int64OutOfRange", "POST", "/v1/shelves/1/books", "",
             R"({"id":"99999999999999999999"})", "ERROR: id"},
        Case{"Int32OutOfRangeNumber", "POST", "/v1/shelves/1/books", "",
             R"({"pages":1e20})", "ERROR: pages"},
        Case{"EnumUnknownName", "POST", "/v1/shelves/1/books", "", R"({"genre":"POETRY"})",
             "ERROR: genre"},
        Case{"EnumCaseInsensitiveInBody", "POST", "/v1/shelves/1/books", "",
             R"({"genre":"science"})", "shelf: 1 book { genre: SCIENCE }", "ci_enums"},
        Case{"BadTimestampInBody", "POST", "/v1/shelves/1/books", "",
             R"({"published":"noon"})", "ERROR: published"},
        Case{"AnyWithUnknownType", "POST", "/v1/shelves/1/books", "",
             R"({"extra":{"@type":"type.googleapis.com/no.Such","a":1}})", "ERROR: no.Such"},
        Case{"NotAnObject", "POST", "/v1/shelves/1/books", "", "[1,2]",
             "ERROR: invalid JSON body for field 'book'"},
        Case{"InvalidUtf8InJsonString", "POST", "/v1/shelves/1/books", "",
             "{\"title\":\"\xff\xfe\"}", "ERROR: invalid JSON body for field 'book'"},
        Case{"ControlCharacterInJsonString", "POST", "/v1/shelves/1/books", "",
             "{\"title\":\"a\x01\"}", "ERROR: control character in a string"},
        Case{"EscapedUnicode", "POST", "/v1/shelves/1/books", "",
             R"({"title":"\u00e9\ud83d\ude00"})",
             "shelf: 1 book { title: '\303\251\360\237\230\200' }"},
        Case{"WholeBody", "POST", "/v1/shelves/1/books/2:move", "", R"({"targetShelf":"3"})",
             "shelf: 1 book: 2 target_shelf: 3"},
        Case{"PathWinsOverWholeBody", "POST", "/v1/shelves/1/books/2:move", "",
             R"({"shelf":"5","target_shelf":3})", "shelf: 1 book: 2 target_shelf: 3"},
        Case{"QueryWithWholeBodyIgnored", "POST", "/v1/shelves/1/books/2:move",
             "target_shelf=4", "", "shelf: 1 book: 2"},
        Case{"QueryWithWholeBodyRejected", "POST", "/v1/shelves/1/books/2:move",
             "target_shelf=4", "",
             "ERROR: unknown query parameter \"target_shelf\": the body is the whole request",
             "reject_unknown"},
        Case{"HttpBodyTakesRawBytes", "PUT", "/v1/uploads/u1", "",
             std::string("\x00\x01raw{", 6),
             "name: 'u1' body { content_type: 'image/png' data: '\\000\\001raw{' }", "",
             "image/png"},
        Case{"WellKnownTypesInEcho", "POST", "/v1/echo", "",
             R"({"data":{"k":{"n":[1,{"m":null}]}},"value":"s","list":[1,"a"],"empty":{},)"
             R"("any":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"2s"}})",
             R"pb(data { fields { key: "k" value { struct_value { fields { key: "n" value {
                    list_value { values { number_value: 1 } values { struct_value {
                    fields { key: "m" value { null_value: NULL_VALUE } } } } } } } } } } }
                  value { string_value: "s" }
                  list { values { number_value: 1 } values { string_value: "a" } }
                  empty { }
                  any { type_url: "type.googleapis.com/google.protobuf.Duration"
                        value: "\010\002" })pb"},
        Case{"NullValueForMessageField", "POST", "/v1/echo", "", R"({"book":null})", ""}),
    CaseName);

INSTANTIATE_TEST_SUITE_P(
    UpdateMask, TranslateTest,
    ::testing::Values(
        Case{"FilledFromBodyKeys", "PATCH", "/v1/shelves/1/books/2", "",
             R"({"title":"x","author":{"name":"y","birthYear":1}})",
             "shelf: 1 book { id: 2 title: 'x' author { name: 'y' birth_year: 1 } } "
             "update_mask { paths: 'title' paths: 'author.name' paths: 'author.birth_year' }"},
        Case{"GivenInQueryIsKept", "PATCH", "/v1/shelves/1/books/2", "update_mask=title",
             R"({"title":"x","price":2})",
             "shelf: 1 book { id: 2 title: 'x' price: 2 } update_mask { paths: 'title' }"},
        Case{"GivenInQueryCamelCase", "PATCH", "/v1/shelves/1/books/2",
             "updateMask=displayTitle", R"({"displayTitle":"x"})",
             "shelf: 1 book { id: 2 display_name: 'x' } update_mask { paths: "
             "'display_title' }"},
        Case{"EmptyObjectIsALeaf", "PATCH", "/v1/shelves/1/books/2", "",
             R"({"author":{}})",
             "shelf: 1 book { id: 2 author { } } update_mask { paths: 'author' }"},
        Case{"WellKnownTypesMapsAndListsAreLeaves", "PATCH", "/v1/shelves/1/books/2", "",
             R"({"published":"2024-01-02T03:04:05Z","labels":{"a":"b"},"tags":["t"],)"
             R"("metadata":{"x":1},"displayTitle":"d"})",
             R"pb(shelf: 1 book { id: 2 published { seconds: 1704164645 }
                  labels { key: "a" value: "b" } tags: "t"
                  metadata { fields { key: "x" value { number_value: 1 } } }
                  display_name: "d" }
                  update_mask { paths: "published" paths: "labels" paths: "tags"
                                paths: "metadata" paths: "display_name" })pb"},
        Case{"NotFilledWhenDisabled", "PATCH", "/v1/shelves/1/books/2", "",
             R"({"title":"x"})", "shelf: 1 book { id: 2 title: 'x' }", "no_mask"},
        Case{"PathWinsOverBodyId", "PATCH", "/v1/shelves/1/books/2", "", R"({"id":"9"})",
             "shelf: 1 book { id: 2 } update_mask { paths: 'id' }"},
        Case{"EmptyBodyEmptyMask", "PATCH", "/v1/shelves/1/books/2", "", "{}",
             "shelf: 1 book { id: 2 } update_mask { }"}),
    CaseName);

TEST(RequestTranslator, RepeatedQueryKeysAndJsonBodyGiveTheSameMessage) {
  const char kQuery[] =
      "tags=a&tags=b&genres=FICTION&genres=2&labels[k]=v&labels[j]=w&filter.title=t&"
      "filter.author.name=n&since=2024-01-02T03:04:05Z&max_age=2s&read_mask=a,b.c&"
      "min_id=9&token=aGk=&ids=1&ids=2&in_stock=true&min_price=0.5&big=7";
  const char kBody[] = R"({"tags":["a","b"],"genres":["FICTION","SCIENCE"],
      "labels":{"k":"v","j":"w"},"filter":{"title":"t","author":{"name":"n"}},
      "since":"2024-01-02T03:04:05Z","maxAge":"2s","readMask":"a,b.c","minId":"9",
      "token":"aGk=","ids":["1",2],"inStock":true,"minPrice":0.5,"big":"7"})";
  absl::StatusOr<RouteMatch> by_query = F().routes().Match("GET", "/v1/books");
  absl::StatusOr<RouteMatch> by_body =
      F().routes().Match("POST", "/gateway.transcoder.testing.Bookstore/ListBooks");
  ASSERT_TRUE(by_query.ok() && by_body.ok());
  absl::StatusOr<std::string> a =
      F().translator().Translate(*by_query, kQuery, "", "", RequestOptions());
  absl::StatusOr<std::string> b =
      F().translator().Translate(*by_body, "", kBody, "application/json", RequestOptions());
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  const google::protobuf::Descriptor* type = by_query->plan->method->input_type();
  EXPECT_TRUE(F().Same(type, *a, F().ToText(type, *b)));
}

TEST(RequestTranslator, ClientStreamMessagesTranslateOneByOne) {
  absl::StatusOr<RouteMatch> m = F().routes().Match("POST", "/v1/books:bulk");
  ASSERT_TRUE(m.ok());
  absl::StatusOr<std::string> bytes = F().translator().TranslateStreamMessage(
      *m->plan, R"({"title":"a","id":"3"})", RequestOptions());
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_TRUE(F().Same(m->plan->method->input_type(), *bytes, "id: 3 title: 'a'"));
  absl::StatusOr<std::string> bad =
      F().translator().TranslateStreamMessage(*m->plan, R"({"title":)", RequestOptions());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("invalid JSON stream message: invalid JSON at byte 9"));
}

// ---------------------------------------------------------------------------
// Hostile input.

absl::StatusOr<std::string> CreateBook(const std::string& body,
                                       RequestOptions options = RequestOptions()) {
  absl::StatusOr<RouteMatch> m = F().routes().Match("POST", "/v1/shelves/1/books");
  return F().translator().Translate(*m, "", body, "application/json", options);
}

TEST(RequestTranslatorHostile, DeepJsonNestingIsRejectedBeforeConversion) {
  std::string body = R"({"metadata":{"a":)";
  for (int i = 0; i < 100000; ++i) body += "[";
  for (int i = 0; i < 100000; ++i) body += "]";
  body += "}}";
  absl::StatusOr<std::string> r = CreateBook(body);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("nesting deeper than 64"));
}

TEST(RequestTranslatorHostile, NestingWithinTheLimitIsAccepted) {
  std::string body = R"({"metadata":{"a":)";
  for (int i = 0; i < 30; ++i) body += "[";
  for (int i = 0; i < 30; ++i) body += "]";
  body += "}}";
  EXPECT_TRUE(CreateBook(body).ok()) << CreateBook(body).status();
}

TEST(RequestTranslatorHostile, DepthLimitIsAnOption) {
  RequestOptions options;
  options.max_json_depth = 2;
  absl::StatusOr<std::string> r = CreateBook(R"({"author":{"aliases":["x"]}})", options);
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("invalid JSON at byte 21: nesting deeper than 2"));
}

TEST(RequestTranslatorHostile, TenMegabyteStringIsCarried) {
  std::string title(10 << 20, 'x');
  absl::StatusOr<std::string> r = CreateBook(R"({"title":")" + title + R"("})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->size(), 10u << 20);
}

TEST(RequestTranslatorHostile, TenMegabyteQueryValueIsCarried) {
  absl::StatusOr<RouteMatch> m = F().routes().Match("GET", kShelf7);
  absl::StatusOr<std::string> r = F().translator().Translate(
      *m, "page_token=" + std::string(10 << 20, 'y'), "", "", RequestOptions());
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->size(), 10u << 20);
}

TEST(RequestTranslatorHostile, DuplicateKeysAreRejected) {
  absl::StatusOr<std::string> r = CreateBook(R"({"title":"a","title":"b"})");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "invalid JSON body for field 'book': invalid JSON at byte 13: duplicate key "
            "\"title\"");
  r = CreateBook(R"({"author":{"name":"a","aliases":[],"name":"b"}})");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("duplicate key \"name\""));
  // The same key in different objects is fine.
  EXPECT_TRUE(CreateBook(R"({"title":"a","author":{"title":"b"}})",
                         [] { RequestOptions o; o.ignore_unknown_json_fields = true; return o; }())
                  .ok());
}

TEST(RequestTranslatorHostile, ManyDistinctKeysAreAccepted) {
  std::string body = R"({"metadata":{)";
  for (int i = 0; i < 5000; ++i) body += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  body += "}}";
  EXPECT_TRUE(CreateBook(body).ok());
  body.insert(body.size() - 2, ",\"k4321\":2");
  EXPECT_THAT(std::string(CreateBook(body).status().message()),
              HasSubstr("duplicate key \"k4321\""));
}

TEST(RequestTranslatorHostile, NumbersOutOfRangeAreRejected) {
  for (const char* body : {R"({"pages":2147483648})", R"({"isbn":-1})",
                           R"({"id":9223372036854775808})", R"({"rating":1e39})",
                           R"({"price":1e999})", R"({"shelfHint":4294967296})"}) {
    absl::StatusOr<std::string> r = CreateBook(body);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(RequestTranslatorHostile, GarbageBodiesNeverCrash) {
  for (const char* body : {"{", "}", "[", "\"", "nul", "{\"a\"", "{\"a\":}", "{,}",
                           "{\"title\":\"\\u12\"}", "{\"title\":\"\\ud800\"}", "\xff",
                           "{\"title\":1,}", "{\"author\":{\"name\":[}}", "-", "1e",
                           "{\"ratings\":[1,,2]}"}) {
    absl::StatusOr<std::string> r = CreateBook(body);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST(AppendFieldFromText, NaNIsAcceptedForFloatingPoint) {
  const google::protobuf::Descriptor* book =
      BookstorePool().FindMessageTypeByName("gateway.transcoder.testing.Book");
  std::string out;
  ASSERT_TRUE(AppendFieldFromText(book->FindFieldByName("price"), "NaN", false, &out).ok());
  EXPECT_EQ(out.size(), 9u);
  out.clear();
  ASSERT_TRUE(AppendFieldFromText(book->FindFieldByName("rating"), "NaN", false, &out).ok());
  EXPECT_EQ(out.size(), 5u);
}

}  // namespace
}  // namespace gateway::transcoder
