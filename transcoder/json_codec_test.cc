#include "transcoder/json_codec.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "transcoder/cached_type_resolver.h"
#include "transcoder/json_scan.h"
#include "transcoder/test_util.h"

namespace gateway::transcoder {
namespace {

using testing::BookstorePool;

constexpr char kPackage[] = "gateway.transcoder.testing.";

class JsonCodecTest : public ::testing::Test {
 protected:
  JsonCodecTest()
      : resolver_(BookstorePool(), Roots()), codec_(BookstorePool(), Roots(), &resolver_) {}

  static std::vector<const google::protobuf::Descriptor*> Roots() {
    std::vector<const google::protobuf::Descriptor*> roots;
    for (const char* name : {"Book", "ListBooksRequest", "EchoRequest", "ListBooksResponse"}) {
      roots.push_back(BookstorePool().FindMessageTypeByName(std::string(kPackage) + name));
    }
    return roots;
  }

  const google::protobuf::Descriptor* Type(const std::string& name) {
    return BookstorePool().FindMessageTypeByName(kPackage + name);
  }

  std::unique_ptr<google::protobuf::Message> New(const google::protobuf::Descriptor* d) {
    return std::unique_ptr<google::protobuf::Message>(factory_.GetPrototype(d)->New());
  }

  static std::string Canonical(const google::protobuf::Message& m) {
    std::string out;
    {
      google::protobuf::io::StringOutputStream stream(&out);
      google::protobuf::io::CodedOutputStream coded(&stream);
      coded.SetSerializationDeterministic(true);
      m.SerializeToCodedStream(&coded);
    }  // the streams trim `out` when they close
    return out;
  }

  CachedTypeResolver resolver_;
  JsonCodec codec_;
  google::protobuf::DynamicMessageFactory factory_;
};

struct JsonCase {
  std::string type;
  std::string json;
};

class JsonToProtoDifferentialTest : public JsonCodecTest,
                                    public ::testing::WithParamInterface<JsonCase> {};

// The codec must build the same message as protobuf's own converter.
TEST_P(JsonToProtoDifferentialTest, MatchesProtobufJsonParser) {
  const google::protobuf::Descriptor* d = Type(GetParam().type);
  std::string ours;
  absl::Status s = codec_.JsonToProto(d, GetParam().json, JsonParseConfig(), &ours);
  ASSERT_TRUE(s.ok()) << s;
  std::string theirs;
  ASSERT_TRUE(google::protobuf::util::JsonToBinaryString(&resolver_, TypeUrl(d),
                                                         GetParam().json, &theirs)
                  .ok());
  auto a = New(d);
  auto b = New(d);
  ASSERT_TRUE(a->ParseFromString(ours));
  ASSERT_TRUE(b->ParseFromString(theirs));
  // Deterministic re-serialization compares NaN payloads too.
  EXPECT_EQ(Canonical(*a), Canonical(*b))
      << "\n ours: " << a->ShortDebugString() << "\ntheirs: " << b->ShortDebugString();
}

INSTANTIATE_TEST_SUITE_P(
    JsonCodec, JsonToProtoDifferentialTest,
    ::testing::Values(
        JsonCase{"Book", "{}"},
        JsonCase{"Book", R"({"title":"x","author":{"name":"y"},"displayTitle":"d"})"},
        JsonCase{"Book", R"({"id":"1","title":"t","author":{"name":"n","birthYear":3}})"},
        JsonCase{"Book", R"({"id":1,"isbn":"18446744073709551615","balance":"-9",)"
                         R"("checksum":"18446744073709551615","shelfHint":4294967295,)"
                         R"("shelfPos":-2147483648})"},
        JsonCase{"Book", R"({"price":1e308,"rating":-3.4e38,"pages":2147483647})"},
        JsonCase{"Book", R"({"price":"NaN","rating":"-Infinity"})"},
        JsonCase{"Book", R"({"tags":[],"labels":{},"coAuthors":[{},{"name":"x"}]})"},
        JsonCase{"Book", R"({"genre":"HISTORY","genres":["FICTION",2,"SCIENCE"]})"},
        JsonCase{"Book", R"({"cover":"AAEC/w==","displayTitle":"x"})"},
        JsonCase{"Book", R"({"display_name":"x","in_stock":false,"co_authors":[]})"},
        JsonCase{"Book", R"({"labels":{"a":"b","":"empty"},"editions":{"-1":{"name":"m"}}})"},
        JsonCase{"Book", R"({"published":"1970-01-01T00:00:00Z","readTime":"-1.5s"})"},
        JsonCase{"Book", R"({"published":"2024-02-29T23:59:59.999999999+05:30"})"},
        JsonCase{"Book", R"({"pages":0,"subtitle":"","signed":true})"},
        JsonCase{"Book", R"({"metadata":{"a":null,"b":[],"c":{},"d":[1.5,"s",false,{"e":[]}]}})"},
        JsonCase{"Book", R"({"note":null,"subtitle":null,"author":null,"tags":null})"},
        JsonCase{"Book", R"({"note":{"k":[null]}})"},
        JsonCase{"Book", R"({"note":"s"})"},
        JsonCase{"Book", R"({"ebookUrl":"u"})"},
        JsonCase{"Book", R"({"paperWeight":7})"},
        JsonCase{"Book", R"({"ebookUrl":null,"paperWeight":7})"},
        JsonCase{"Book", R"({"paperWeight":7,"ebookUrl":null,"title":"t"})"},
        JsonCase{"Book", R"({"title":"\u00e9\n\t\"\\\/\ud83d\ude00"})"},
        JsonCase{"Book", R"({"extra":{"@type":"type.googleapis.com/gateway.transcoder.testing.Author","name":"a"}})"},
        JsonCase{"Book", R"({"extra":{"@type":"type.googleapis.com/google.protobuf.Timestamp","value":"2024-01-01T00:00:00Z"}})"},
        JsonCase{"Book", " { \"id\" : \"5\" , \"tags\" : [ \"a\" , \"b\" ] } "},
        JsonCase{"ListBooksRequest",
                 R"({"readMask":"a,bC.dE","minId":"-5","score":1.5,"flag":false,)"
                 R"("nameFilter":"","blob":"aGk=","since":"2024-01-02T03:04:05Z",)"
                 R"("maxAge":"0.000000001s","byNumber":{"1":"a"},"genreLabels":{"x":"SCIENCE"}})"},
        JsonCase{"EchoRequest",
                 R"({"data":{},"value":{"a":1},"list":[[],{}],"empty":{},)"
                 R"("any":{"@type":"type.googleapis.com/google.protobuf.Struct","value":{"a":1}}})"},
        JsonCase{"EchoRequest", R"({"value":null,"list":[null,true]})"},
        JsonCase{"ListBooksResponse", R"({"books":[{"id":"1"},{"title":"x"}],"nextPageToken":"n"})"}));

// Protobuf's converter refuses two members of one oneof too; a member given as
// null does not count (differential cases above).
TEST_F(JsonCodecTest, TwoMembersOfOneOneofAreRefusedLikeProtobuf) {
  const google::protobuf::Descriptor* d = Type("Book");
  for (const char* json : {R"({"ebookUrl":"u","paperWeight":1})",
                           R"({"paperWeight":0,"ebook_url":""})"}) {
    std::string ours;
    std::string theirs;
    EXPECT_FALSE(codec_.JsonToProto(d, json, JsonParseConfig(), &ours).ok()) << json;
    EXPECT_FALSE(
        google::protobuf::util::JsonToBinaryString(&resolver_, TypeUrl(d), json, &theirs).ok())
        << json;
  }
}

struct ErrorCase {
  std::string json;
  std::string error;
};

class JsonToProtoErrorTest : public JsonCodecTest,
                             public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(JsonToProtoErrorTest, NamesTheFieldAndTheProblem) {
  std::string out;
  absl::Status s = codec_.JsonToProto(Type("Book"), GetParam().json, JsonParseConfig(), &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << GetParam().json;
  EXPECT_EQ(s.message(), GetParam().error) << GetParam().json;
}

INSTANTIATE_TEST_SUITE_P(
    JsonCodec, JsonToProtoErrorTest,
    ::testing::Values(
        ErrorCase{R"({"nope":1})",
                  "(): unknown field \"nope\" in gateway.transcoder.testing.Book"},
        ErrorCase{R"({"author":{"nope":1}})",
                  "(author): unknown field \"nope\" in gateway.transcoder.testing.Author"},
        ErrorCase{R"({"title":5})", "(title): \"5\" is not a string"},
        ErrorCase{R"({"ebookUrl":"u","paperWeight":1})",
                  "(): fields 'ebook_url' and 'paper_weight' are both members of oneof "
                  "'format'; set at most one"},
        ErrorCase{R"({"paperWeight":0,"title":"t","ebookUrl":""})",
                  "(): fields 'paper_weight' and 'ebook_url' are both members of oneof "
                  "'format'; set at most one"},
        ErrorCase{R"({"inStock":"true"})", "(in_stock): \"true\" is not a valid bool"},
        ErrorCase{R"({"pages":2147483648})",
                  "(pages): \"2147483648\" is out of range for int32"},
        ErrorCase{R"({"id":"9223372036854775808"})",
                  "(id): \"9223372036854775808\" is out of range for int64"},
        ErrorCase{R"({"isbn":-1})", "(isbn): \"-1\" is out of range for uint64"},
        ErrorCase{R"({"id":1.5})", "(id): \"1.5\" is not an integer"},
        ErrorCase{R"({"id":"x"})", "(id): \"x\" is not a valid int64"},
        ErrorCase{R"({"price":1e999})", "(price): \"1e999\" is out of range"},
        ErrorCase{R"({"price":"inf"})", "(price): \"inf\" is not a valid number"},
        ErrorCase{R"({"rating":1e39})", "(rating): \"1e39\" is out of range for a float"},
        ErrorCase{R"({"genre":"POETRY"})",
                  "(genre): \"POETRY\" is not a value of enum gateway.transcoder.testing.Genre"},
        ErrorCase{R"({"cover":"***"})", "(cover): \"***\" is not valid base64"},
        ErrorCase{R"({"tags":"a"})", "(tags): expected an array for a repeated field"},
        ErrorCase{R"({"tags":[null]})", "(tags): null is not a valid element of a repeated field"},
        ErrorCase{R"({"labels":[]})", "(labels): expected an object for a map field"},
        ErrorCase{R"({"editions":{"x":{}}})",
                  "(editions): map key: \"x\" is not a valid int32"},
        ErrorCase{R"({"author":"x"})",
                  "(author): expected an object for gateway.transcoder.testing.Author"},
        ErrorCase{R"({"published":"noon"})",
                  "(published): \"noon\" is not an RFC 3339 timestamp (e.g. "
                  "\"2024-01-02T03:04:05Z\")"},
        ErrorCase{R"({"readTime":5})",
                  "(read_time): expected a string for google.protobuf.Duration"},
        ErrorCase{R"({"title":"a","title":"b"})", "invalid JSON at byte 13: duplicate key \"title\""},
        ErrorCase{R"({"title":"a","display_name":"b","displayTitle":"c"})",
                  "invalid JSON at byte 32: duplicate key \"displayTitle\""},
        ErrorCase{R"({"labels":{"a":"1","a":"2"}})", "invalid JSON at byte 19: duplicate key \"a\""},
        ErrorCase{R"({"metadata":{"a":1,"a":2}})", "invalid JSON at byte 19: duplicate key \"a\""},
        ErrorCase{R"({"title":"a"} x)", "invalid JSON at byte 14: unexpected data after the JSON value"},
        ErrorCase{R"({"title":)", "invalid JSON at byte 9: unexpected end of input"},
        ErrorCase{R"({"title":"a)", "invalid JSON at byte 9: unterminated string"},
        ErrorCase{R"({"title" "a"})", "invalid JSON at byte 9: expected ':'"},
        ErrorCase{R"({"title":"a" "b":1})", "invalid JSON at byte 13: expected ',' or '}'"},
        ErrorCase{"{\"title\":\"a\x01\"}", "invalid JSON at byte 11: control character in a string"},
        ErrorCase{R"({"title":"\ud800"})", "(title): unpaired surrogate in a \\u escape"},
        ErrorCase{"{\"title\":\"\xc3\"}", "(title): invalid UTF-8 in a string"},
        ErrorCase{"[]", "(): expected an object for gateway.transcoder.testing.Book"}));

TEST_F(JsonCodecTest, IntegersMayBeWrittenWithAFractionOrExponent) {
  std::string out;
  ASSERT_TRUE(codec_
                  .JsonToProto(Type("Book"), R"({"id":"1e3","pages":1.0,"ratings":[1,"2",3e0]})",
                               JsonParseConfig(), &out)
                  .ok());
  auto m = New(Type("Book"));
  ASSERT_TRUE(m->ParseFromString(out));
  EXPECT_EQ(m->ShortDebugString(), "id: 1000 pages { value: 1 } ratings: 1 ratings: 2 ratings: 3");
}

TEST_F(JsonCodecTest, AnyOfAnUnknownTypeNamesTheField) {
  std::string out;
  absl::Status s = codec_.JsonToProto(
      Type("Book"), R"({"extra":{"@type":"type.googleapis.com/no.Such"}})", JsonParseConfig(),
      &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::StartsWith("(extra): "));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("no.Such"));
}

TEST_F(JsonCodecTest, UnknownFieldsAndEnumNamesCanBeIgnored) {
  JsonParseConfig config;
  config.ignore_unknown_fields = true;
  std::string out;
  ASSERT_TRUE(codec_
                  .JsonToProto(Type("Book"), R"({"nope":{"a":[1]},"genre":"POETRY","id":"2"})",
                               config, &out)
                  .ok());
  auto m = New(Type("Book"));
  ASSERT_TRUE(m->ParseFromString(out));
  EXPECT_EQ(m->ShortDebugString(), "id: 2");
}

TEST_F(JsonCodecTest, LongNestedMessagesGetMultiByteLengths) {
  std::string json = R"({"author":{"name":")" + std::string(100000, 'n') +
                     R"("},"coAuthors":[{"name":")" + std::string(200, 'c') + R"("}]})";
  std::string out;
  ASSERT_TRUE(codec_.JsonToProto(Type("Book"), json, JsonParseConfig(), &out).ok());
  auto m = New(Type("Book"));
  ASSERT_TRUE(m->ParseFromString(out));
  std::string back;
  ASSERT_TRUE(codec_.ProtoToJson(Type("Book"), out, JsonPrintConfig(), &back).ok());
  EXPECT_EQ(back, json);
}

// `json` with the members of every object sorted by key.
std::string SortedJson(absl::string_view json) {
  if (json.empty()) return "";
  if (json[0] == '{') {
    std::vector<std::pair<std::string, std::string>> members;
    (void)ForEachJsonMember(json, [&](absl::string_view k, absl::string_view v) {
      members.emplace_back(std::string(k), SortedJson(v));
    });
    std::sort(members.begin(), members.end());
    std::string out = "{";
    for (const auto& [k, v] : members) {
      if (out.size() > 1) out += ',';
      out += k + ":" + v;
    }
    return out + "}";
  }
  if (json[0] == '[') {
    std::string out = "[";
    (void)ForEachJsonElement(json, [&](absl::string_view e) {
      if (out.size() > 1) out += ',';
      out += SortedJson(e);
    });
    return out + "]";
  }
  return std::string(json);
}

class ProtoToJsonDifferentialTest : public JsonCodecTest,
                                    public ::testing::WithParamInterface<JsonCase> {};

// The codec must print what protobuf's own printer prints (`json` holds the
// message in text format here).
TEST_P(ProtoToJsonDifferentialTest, MatchesProtobufJsonPrinter) {
  const google::protobuf::Descriptor* d = Type(GetParam().type);
  auto m = New(d);
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(GetParam().json, m.get()));
  std::string bytes = m->SerializeAsString();
  for (int variant = 0; variant < 4; ++variant) {
    JsonPrintConfig config;
    google::protobuf::util::JsonPrintOptions options;
    config.emit_default_values = options.always_print_primitive_fields = variant & 1;
    config.use_proto_field_names = options.preserve_proto_field_names = variant & 2;
    config.enums_as_ints = options.always_print_enums_as_ints = variant == 3;
    std::string ours;
    absl::Status s = codec_.ProtoToJson(d, bytes, config, &ours);
    ASSERT_TRUE(s.ok()) << s;
    std::string theirs;
    ASSERT_TRUE(google::protobuf::util::BinaryToJsonString(&resolver_, TypeUrl(d), bytes,
                                                           &theirs, options)
                    .ok());
    if (config.emit_default_values) {
      // protobuf orders default-valued and message fields differently; the
      // member order of a JSON object carries no meaning.
      EXPECT_EQ(SortedJson(ours), SortedJson(theirs)) << "variant " << variant;
    } else {
      EXPECT_EQ(ours, theirs) << "variant " << variant;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    JsonCodec, ProtoToJsonDifferentialTest,
    ::testing::Values(
        JsonCase{"Book", ""},
        JsonCase{"Book", R"pb(id: 1 title: "t" author { name: "n" birth_year: 3 aliases: "a" })pb"},
        JsonCase{"Book", R"pb(id: -1 isbn: 18446744073709551615 balance: -9
                              checksum: 18446744073709551615 shelf_hint: 4294967295
                              shelf_pos: -2147483648)pb"},
        JsonCase{"Book", "price: 0.1 rating: 3.4028235e38 pages { value: 0 }"},
        JsonCase{"Book", "price: 1e300 rating: 1.5e-38"},
        JsonCase{"Book", "price: 123456789.125 rating: 0.3"},
        JsonCase{"Book", "price: nan rating: -inf"},
        JsonCase{"Book", R"pb(tags: "x" tags: "" ratings: 1 ratings: -2 genres: HISTORY
                              genres: FICTION)pb"},
        JsonCase{"Book", R"pb(labels { key: "b" value: "2" } labels { key: "a" value: "1" }
                              editions { key: -3 value { name: "e" } })pb"},
        JsonCase{"Book", R"pb(cover: "\000\001\377" title: "\"quoted\"\n\\\t\001 é")pb"},
        JsonCase{"Book", R"pb(published { seconds: 1704164645 nanos: 10 }
                              read_time { seconds: -1 nanos: -500000000 })pb"},
        JsonCase{"Book", R"pb(published { } read_time { nanos: 1000 } subtitle { }
                              signed { value: true })pb"},
        JsonCase{"Book", R"pb(metadata { fields { key: "z" value { number_value: 1e21 } }
                                         fields { key: "a" value { list_value {
                                           values { null_value: NULL_VALUE }
                                           values { struct_value { } }
                                           values { string_value: "s" } } } } }
                              note { bool_value: false })pb"},
        JsonCase{"Book", R"pb(extra { type_url: "type.googleapis.com/gateway.transcoder.testing.Author"
                                      value: "\n\001x" })pb"},
        JsonCase{"Book", R"pb(co_authors { } co_authors { name: "b" } ebook_url: ""
                              display_name: "d" genre: GENRE_UNSPECIFIED)pb"},
        JsonCase{"Book", "genre: 7 genres: 9"},
        JsonCase{"ListBooksRequest",
                 R"pb(read_mask { paths: "a" paths: "b_c.d_e" } min_id { value: -5 }
                      score { value: 1.5 } flag { } name_filter { value: "" } blob { value: "hi" }
                      by_number { key: 1 value: "a" } genre_labels { key: "x" value: SCIENCE }
                      ids: 1 ids: 2)pb"},
        JsonCase{"EchoRequest", R"pb(data { } empty { } list { values { number_value: 2 } }
                                     value { string_value: "v" })pb"},
        JsonCase{"ListBooksResponse", R"pb(books { id: 1 } books { } next_page_token: "n")pb"}));

TEST_F(JsonCodecTest, Int64AsNumberReachesEvery64BitField) {
  auto m = New(Type("ListBooksRequest"));
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(shelf: 1 filter { id: 2 co_authors { name: "x" } balance: -3 checksum: 4 }
           min_id { value: 5 } ids: 6 ids: -7 big: 18446744073709551615)pb",
      m.get()));
  JsonPrintConfig config;
  config.int64_as_number = true;
  std::string json;
  ASSERT_TRUE(codec_.ProtoToJson(Type("ListBooksRequest"), m->SerializeAsString(), config, &json)
                  .ok());
  EXPECT_EQ(json,
            R"({"shelf":1,"filter":{"id":2,"coAuthors":[{"name":"x"}],"balance":-3,)"
            R"("checksum":4},"minId":5,"big":18446744073709551615,"ids":[6,-7]})");
}

TEST_F(JsonCodecTest, MalformedWireFormatIsAnError) {
  std::string out;
  for (const std::string& bad :
       {std::string("\x0a\x05" "ab", 4), std::string("\x08", 1), std::string("\xff", 1),
        std::string("\x00\x01", 2), std::string("\x1a\x02\x0a\x05", 4),
        std::string("\x09\x01\x02", 3)}) {
    out.clear();
    EXPECT_EQ(codec_.ProtoToJson(Type("Book"), bad, JsonPrintConfig(), &out).code(),
              absl::StatusCode::kInvalidArgument)
        << absl::CEscape(bad);
  }
}

TEST_F(JsonCodecTest, UnknownFieldsAndGroupsInWireFormatAreSkipped) {
  // field 99 varint, field 98 group containing a varint, then title.
  std::string bytes("\x98\x06\x01\x93\x06\x08\x01\x94\x06\x12\x01x", 12);
  std::string out;
  ASSERT_TRUE(codec_.ProtoToJson(Type("Book"), bytes, JsonPrintConfig(), &out).ok());
  EXPECT_EQ(out, R"({"title":"x"})");
}

// JSON strings are scanned several bytes at a time; these cases put the byte that
// ends the plain run at every offset of a 40-byte string, behind openings of
// every length mod 8, and pass the JSON in a buffer of its exact size (so that
// ASan sees a read past its end).
class JsonStringScanTest : public JsonCodecTest {
 protected:
  // Parses {"title":<k spaces>"<content>"} as a Book; returns the title, or the error.
  std::string Title(int k, absl::string_view content, absl::string_view after = "\"}") {
    std::string json = "{\"title\":" + std::string(k, ' ') + "\"" + std::string(content) +
                       std::string(after);
    std::unique_ptr<char[]> exact(new char[json.size()]);
    std::memcpy(exact.get(), json.data(), json.size());
    std::string out;
    absl::Status s = codec_.JsonToProto(Type("Book"), absl::string_view(exact.get(), json.size()),
                                        JsonParseConfig(), &out);
    if (!s.ok()) return "error: " + std::string(s.message());
    auto m = New(Type("Book"));
    if (!m->ParseFromString(out)) return "error: unparsable output";
    return m->GetReflection()->GetString(*m, Type("Book")->FindFieldByName("title"));
  }

  // 40 'a'..'z' letters with `special` inserted before letter i.
  static std::string With(int i, absl::string_view special) {
    std::string s;
    for (int j = 0; j < 40; ++j) s.push_back(static_cast<char>('a' + j % 26));
    return s.insert(i, std::string(special));
  }
};

TEST_F(JsonStringScanTest, PlainStringsOfEveryLength) {
  for (int k = 0; k < 8; ++k) {
    for (int n = 0; n <= 40; ++n) {
      std::string content = With(0, "").substr(0, n);
      EXPECT_EQ(Title(k, content), content) << k << " " << n;
      // Space, DEL and tilde are plain characters too.
      std::string edges = std::string(n, ' ') + "\x7f~";
      EXPECT_EQ(Title(k, edges), edges) << k << " " << n;
    }
  }
}

TEST_F(JsonStringScanTest, AQuoteEndsTheStringAtEveryOffset) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i <= 40; ++i) {
      EXPECT_EQ(Title(k, With(i, "\"")),
                absl::StrCat("error: invalid JSON at byte ", 11 + k + i, ": expected ',' or '}'"))
          << k << " " << i;
      EXPECT_EQ(Title(k, With(i, "\"").substr(0, i + 1), "}"), With(0, "").substr(0, i))
          << k << " " << i;
    }
  }
}

TEST_F(JsonStringScanTest, EscapesAtEveryOffset) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i <= 40; ++i) {
      EXPECT_EQ(Title(k, With(i, "\\\"")), With(i, "\"")) << k << " " << i;
      EXPECT_EQ(Title(k, With(i, "\\\\")), With(i, "\\")) << k << " " << i;
      EXPECT_EQ(Title(k, With(i, "\\n\\u00e9")), With(i, "\n\xc3\xa9")) << k << " " << i;
      // A plain run after an escape, with another escape at every offset.
      EXPECT_EQ(Title(k, "\\t" + With(i, "\\/")), "\t" + With(i, "/")) << k << " " << i;
      EXPECT_EQ(Title(k, With(i, "\\x")), "error: (title): invalid escape in a string")
          << k << " " << i;
    }
  }
}

TEST_F(JsonStringScanTest, ControlCharactersAtEveryOffset) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i <= 40; ++i) {
      for (const std::string& c : {std::string("\x01"), std::string("\x1f"), std::string("\n"),
                                   std::string(1, '\0')}) {
        EXPECT_EQ(Title(k, With(i, c)),
                  absl::StrCat("error: invalid JSON at byte ", 10 + k + i,
                               ": control character in a string"))
            << k << " " << i << " " << int{c[0]};
        // After an escape (the second loop).
        EXPECT_EQ(Title(k, "\\b" + With(i, c)),
                  absl::StrCat("error: invalid JSON at byte ", 12 + k + i,
                               ": control character in a string"))
            << k << " " << i << " " << int{c[0]};
      }
    }
  }
}

TEST_F(JsonStringScanTest, Utf8AtEveryOffset) {
  for (int k = 0; k < 8; ++k) {
    for (int i = 0; i <= 40; ++i) {
      for (const char* good : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f"}) {
        EXPECT_EQ(Title(k, With(i, good)), With(i, good)) << k << " " << i << " " << good;
        EXPECT_EQ(Title(k, "\\r" + With(i, good)), "\r" + With(i, good)) << k << " " << i;
      }
      for (const char* bad : {"\xc3", "\x80", "\xff", "\xe2\x82", "\xed\xa0\x80", "\xc0\xaf"}) {
        EXPECT_EQ(Title(k, With(i, bad)), "error: (title): invalid UTF-8 in a string")
            << k << " " << i << " " << absl::CEscape(bad);
        EXPECT_EQ(Title(k, "\\r" + With(i, bad)), "error: (title): invalid UTF-8 in a string")
            << k << " " << i << " " << absl::CEscape(bad);
      }
    }
  }
}

TEST_F(JsonStringScanTest, UnterminatedStringsOfEveryLength) {
  for (int k = 0; k < 8; ++k) {
    for (int n = 0; n <= 40; ++n) {
      std::string content = With(0, "").substr(0, n);
      std::string expected = absl::StrCat("error: invalid JSON at byte ", 9 + k, ": unterminated string");
      EXPECT_EQ(Title(k, content, ""), expected) << k << " " << n;
      EXPECT_EQ(Title(k, "\\f" + content, ""), expected) << k << " " << n;
      EXPECT_EQ(Title(k, content + "\\", ""), expected) << k << " " << n;
      EXPECT_EQ(Title(k, content + "\xc3\xa9", ""), expected) << k << " " << n;
    }
  }
}

// Bytes fields: base64 or base64url, with or without padding, whitespace from
// escapes ignored; the length prefix is right when whitespace makes the
// decoded size smaller than the characters suggest.
TEST_F(JsonCodecTest, BytesFieldsDecodeBothAlphabetsAndAnyLength) {
  for (int n = 0; n <= 300; n += (n < 40 ? 1 : 37)) {
    std::string bytes;
    for (int i = 0; i < n; ++i) bytes.push_back(static_cast<char>(i * 97 + n));
    std::string web = absl::WebSafeBase64Escape(bytes);
    std::string spaced;
    for (size_t i = 0; i < web.size(); ++i) spaced += (i % 3 == 0 ? "\\n" : "") + web.substr(i, 1);
    for (const std::string& text : {absl::Base64Escape(bytes), web, spaced + "\\t"}) {
      std::string out;
      absl::Status s = codec_.JsonToProto(Type("Book"), R"({"cover":")" + text + R"(","id":"7"})",
                                          JsonParseConfig(), &out);
      ASSERT_TRUE(s.ok()) << s << " " << text;
      auto m = New(Type("Book"));
      ASSERT_TRUE(m->ParseFromString(out)) << text;
      EXPECT_EQ(m->GetReflection()->GetString(*m, Type("Book")->FindFieldByName("cover")), bytes)
          << text;
      EXPECT_EQ(m->GetReflection()->GetInt64(*m, Type("Book")->FindFieldByName("id")), 7) << text;
      std::string json;
      ASSERT_TRUE(codec_.ProtoToJson(Type("Book"), out, JsonPrintConfig(), &json).ok());
      EXPECT_EQ(json, R"({"id":"7","cover":")" + absl::Base64Escape(bytes) + R"("})");
    }
  }
  std::string out;
  EXPECT_EQ(codec_.JsonToProto(Type("Book"), R"({"cover":"ab+_"})", JsonParseConfig(), &out)
                .message(),
            "(cover): \"ab+_\" is not valid base64");
}

}  // namespace
}  // namespace gateway::transcoder
