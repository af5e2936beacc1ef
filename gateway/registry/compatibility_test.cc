#include "gateway/registry/compatibility.h"

#include <memory>
#include <string>

#include "absl/strings/str_replace.h"
#include "gateway/descriptor_sets.h"
#include "gateway/registry/test_descriptors.h"
#include "google/api/http.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// bookstore.v1.Bookstore with a Book message, an enum, and rules of every shape the
// tests change.
constexpr char kBookstoreV1[] = R"pb(
  name: "bookstore.proto" package: "bookstore.v1" syntax: "proto3"
  dependency: "google/api/annotations.proto"
  message_type {
    name: "Book"
    field { name: "id" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "id" }
    field { name: "title" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "title" }
    field { name: "tags" number: 3 type: TYPE_STRING label: LABEL_REPEATED json_name: "tags" }
    field { name: "genre" number: 4 type: TYPE_ENUM type_name: ".bookstore.v1.Genre"
            label: LABEL_OPTIONAL json_name: "genre" }
  }
  message_type {
    name: "GetShelfRequest"
    field { name: "shelf" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "shelf" }
  }
  message_type {
    name: "Shelf"
    field { name: "id" number: 1 type: TYPE_INT64 label: LABEL_OPTIONAL json_name: "id" }
    field { name: "books" number: 2 type: TYPE_MESSAGE type_name: ".bookstore.v1.Book"
            label: LABEL_REPEATED json_name: "books" }
  }
  enum_type {
    name: "Genre"
    value { name: "GENRE_UNSPECIFIED" number: 0 }
    value { name: "FICTION" number: 1 }
  }
  service {
    name: "Bookstore"
    method { name: "GetShelf" input_type: ".bookstore.v1.GetShelfRequest"
             output_type: ".bookstore.v1.Shelf"
             options { [google.api.http] { get: "/v1/shelves/{shelf}" } } }
    method { name: "ListBooks" input_type: ".bookstore.v1.GetShelfRequest"
             output_type: ".bookstore.v1.Book"
             options { [google.api.http] { get: "/v1/shelves/{shelf}/books" } } }
  }
)pb";

// Holds a pool so the returned descriptor stays valid.
struct Built {
  std::shared_ptr<const google::protobuf::DescriptorPool> pool;
  const google::protobuf::ServiceDescriptor* service = nullptr;
};

Built Build(const std::string& text) {
  DescriptorSetBuilder builder;
  EXPECT_TRUE(builder.AddSerialized(testing::DescriptorSetFromText(text), "test").ok());
  absl::StatusOr<std::shared_ptr<const google::protobuf::DescriptorPool>> pool =
      builder.Build();
  EXPECT_TRUE(pool.ok()) << pool.status();
  Built built;
  built.pool = *pool;
  built.service = built.pool->FindServiceByName("bookstore.v1.Bookstore");
  EXPECT_NE(built.service, nullptr);
  return built;
}

std::vector<std::string> Changes(const std::string& after_text) {
  Built before = Build(kBookstoreV1);
  Built after = Build(after_text);
  return BreakingChanges(*before.service, *after.service);
}

std::string Replace(absl::string_view from, absl::string_view to) {
  std::string out = absl::StrReplaceAll(kBookstoreV1, {{from, to}});
  EXPECT_NE(out, kBookstoreV1) << "pattern not found: " << from;
  return out;
}

TEST(BreakingChanges, IdenticalServiceHasNone) {
  EXPECT_THAT(Changes(kBookstoreV1), IsEmpty());
}

TEST(BreakingChanges, AddedMethodAndFieldAreNotBreaking) {
  std::string v2 = Replace(
      R"(field { name: "tags")",
      R"(field { name: "isbn" number: 9 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "isbn" }
         field { name: "tags")");
  v2 = absl::StrReplaceAll(
      v2, {{R"(name: "Bookstore")",
            R"(name: "Bookstore"
               method { name: "Ping" input_type: ".bookstore.v1.Book" output_type: ".bookstore.v1.Book" })"}});
  EXPECT_THAT(Changes(v2), IsEmpty());
}

TEST(BreakingChanges, RemovedMethodIsNamed) {
  std::string v2 = Replace(R"(method { name: "GetShelf" input_type: ".bookstore.v1.GetShelfRequest"
             output_type: ".bookstore.v1.Shelf"
             options { [google.api.http] { get: "/v1/shelves/{shelf}" } } })",
                           "");
  EXPECT_THAT(Changes(v2), ElementsAre("bookstore.v1.Bookstore.GetShelf: removed"));
}

TEST(BreakingChanges, ChangedFieldNumberShowsBothNumbers) {
  EXPECT_THAT(Changes(Replace(R"(name: "title" number: 2)", R"(name: "title" number: 5)")),
              ElementsAre("bookstore.v1.Book.title: field number changed 2 -> 5"));
}

TEST(BreakingChanges, ChangedFieldTypeShowsBothTypes) {
  EXPECT_THAT(Changes(Replace(R"(name: "title" number: 2 type: TYPE_STRING)",
                              R"(name: "title" number: 2 type: TYPE_BYTES)")),
              ElementsAre("bookstore.v1.Book.title: type changed string -> bytes"));
}

TEST(BreakingChanges, RemovedFieldIsNamed) {
  EXPECT_THAT(
      Changes(Replace(
          R"(field { name: "tags" number: 3 type: TYPE_STRING label: LABEL_REPEATED json_name: "tags" })",
          "")),
      ElementsAre("bookstore.v1.Book.tags: removed"));
}

TEST(BreakingChanges, RenamedFieldNamesTheNewName) {
  EXPECT_THAT(Changes(Replace(R"(name: "title" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "title")",
                              R"(name: "name" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL json_name: "name")")),
              ElementsAre("bookstore.v1.Book.title: renamed to name (field 2)"));
}

TEST(BreakingChanges, RepeatedBecomingSingularIsACardinalityChange) {
  EXPECT_THAT(Changes(Replace(R"(name: "tags" number: 3 type: TYPE_STRING label: LABEL_REPEATED)",
                              R"(name: "tags" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL)")),
              ElementsAre("bookstore.v1.Book.tags: cardinality changed repeated -> singular"));
}

TEST(BreakingChanges, ChangedStreamingKindShowsBothKinds) {
  EXPECT_THAT(Changes(Replace(R"(output_type: ".bookstore.v1.Book")",
                              R"(output_type: ".bookstore.v1.Book" server_streaming: true)")),
              ElementsAre("bookstore.v1.Bookstore.ListBooks: streaming kind changed unary -> "
                          "server streaming"));
}

TEST(BreakingChanges, ChangedHttpRuleShowsBothRules) {
  EXPECT_THAT(Changes(Replace(R"(get: "/v1/shelves/{shelf}" })", R"(get: "/v2/shelves/{shelf}" })")),
              ElementsAre("bookstore.v1.Bookstore.GetShelf: http rule changed "
                          "GET /v1/shelves/{shelf} -> GET /v2/shelves/{shelf}"));
}

TEST(BreakingChanges, RemovedHttpRuleShowsNone) {
  EXPECT_THAT(Changes(Replace(R"(options { [google.api.http] { get: "/v1/shelves/{shelf}" } })", "")),
              ElementsAre("bookstore.v1.Bookstore.GetShelf: http rule changed "
                          "GET /v1/shelves/{shelf} -> none"));
}

TEST(BreakingChanges, ChangedResponseTypeIsNamed) {
  EXPECT_THAT(Changes(Replace(R"(output_type: ".bookstore.v1.Shelf")",
                              R"(output_type: ".bookstore.v1.Book")")),
              ElementsAre("bookstore.v1.Bookstore.GetShelf: response type changed "
                          "bookstore.v1.Shelf -> bookstore.v1.Book"));
}

TEST(BreakingChanges, NestedMessagesAndEnumsAreCompared) {
  // Book is reached through Shelf.books; Genre through Book.genre.
  std::string v2 = Replace(R"(value { name: "FICTION" number: 1 })",
                           R"(value { name: "FICTION" number: 2 })");
  EXPECT_THAT(Changes(v2), ElementsAre("bookstore.v1.Genre.FICTION: value changed 1 -> 2"));
}

TEST(BreakingChanges, SeveralChangesAreListedOnePerEntryInOrder) {
  std::string v2 = Replace(R"(get: "/v1/shelves/{shelf}" })", R"(get: "/v2/shelves/{shelf}" })");
  v2 = absl::StrReplaceAll(v2, {{R"(name: "title" number: 2)", R"(name: "title" number: 5)"}});
  EXPECT_THAT(Changes(v2),
              ElementsAre("bookstore.v1.Bookstore.GetShelf: http rule changed "
                          "GET /v1/shelves/{shelf} -> GET /v2/shelves/{shelf}",
                          "bookstore.v1.Book.title: field number changed 2 -> 5"));
}

TEST(HttpRuleTexts, ListsTheRuleThenAdditionalBindingsWithBodies) {
  Built built = Build(Replace(
      R"(get: "/v1/shelves/{shelf}/books" })",
      R"(post: "/v1/shelves/{shelf}/books" body: "*"
         additional_bindings { get: "/v1/books" response_body: "title" } })"));
  EXPECT_THAT(HttpRuleTexts(*built.service->FindMethodByName("ListBooks")),
              ElementsAre("POST /v1/shelves/{shelf}/books body=*",
                          "GET /v1/books response_body=title"));
}

// --- Two copies of one shared file. ---

// google/api/http.proto as protoc writes it into a descriptor set (with json_name).
google::protobuf::FileDescriptorProto ProtocHttpProto() {
  const google::protobuf::FileDescriptor* file = google::api::HttpRule::descriptor()->file();
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  file->CopyJsonNameTo(&proto);
  return proto;
}

// The same file as Python's descriptors (and its server reflection) give it: no json_name.
google::protobuf::FileDescriptorProto PythonHttpProto() {
  google::protobuf::FileDescriptorProto proto;
  google::api::HttpRule::descriptor()->file()->CopyTo(&proto);
  return proto;
}

google::protobuf::FieldDescriptorProto* FieldOf(google::protobuf::FileDescriptorProto* file,
                                                const std::string& message,
                                                const std::string& field) {
  for (auto& m : *file->mutable_message_type()) {
    if (m.name() != message) continue;
    for (auto& f : *m.mutable_field()) {
      if (f.name() == field) return &f;
    }
  }
  ADD_FAILURE() << message << "." << field << " not found";
  static google::protobuf::FieldDescriptorProto none;
  return &none;
}

TEST(FileDifferences, CopyWithoutJsonNamesIsEquivalent) {
  google::protobuf::FileDescriptorProto python = PythonHttpProto();
  ASSERT_FALSE(FieldOf(&python, "HttpRule", "response_body")->has_json_name());
  ASSERT_EQ(FieldOf(&python, "HttpRule", "response_body")->name(), "response_body");
  EXPECT_THAT(FileDifferences(ProtocHttpProto(), "a.pb", python, "b.pb"), IsEmpty());
}

TEST(FileDifferences, FileOptionsAndSourceInfoAreCosmetic) {
  google::protobuf::FileDescriptorProto copy = ProtocHttpProto();
  copy.mutable_options()->set_java_package("com.example.api");
  copy.mutable_options()->set_go_package("example.com/api");
  copy.mutable_options()->set_cc_enable_arenas(false);
  copy.mutable_source_code_info()->add_location()->add_path(4);
  copy.add_dependency("google/protobuf/any.proto");
  FieldOf(&copy, "HttpRule", "body")->mutable_options()->set_deprecated(true);
  EXPECT_THAT(FileDifferences(ProtocHttpProto(), "a.pb", copy, "b.pb"), IsEmpty());
}

TEST(FileDifferences, ChangedFieldTypeIsNamedExactly) {
  google::protobuf::FileDescriptorProto changed = PythonHttpProto();
  FieldOf(&changed, "HttpRule", "body")->set_type(google::protobuf::FieldDescriptorProto::TYPE_BYTES);
  EXPECT_THAT(FileDifferences(changed, "service x.v1.X v1", ProtocHttpProto(), "bookstore.pb"),
              ElementsAre("google/api/http.proto: message google.api.HttpRule field 'body' (7): "
                          "type bytes (service x.v1.X v1) vs string (bookstore.pb)"));
}

TEST(FileDifferences, EveryKindOfWireOrMappingChangeIsReported) {
  const google::protobuf::FileDescriptorProto before = testing::FileFromText(kBookstoreV1);
  google::protobuf::FileDescriptorProto after = before;
  auto* book = after.mutable_message_type(0);
  book->mutable_field(0)->set_number(9);                    // id: 1 -> 9
  book->mutable_field(1)->set_json_name("bookTitle");        // a JSON name of its own
  book->mutable_field(2)->set_label(google::protobuf::FieldDescriptorProto::LABEL_OPTIONAL);
  book->add_oneof_decl()->set_name("kind");
  book->mutable_field(3)->set_oneof_index(0);
  after.mutable_enum_type(0)->mutable_value(1)->set_number(7);
  auto* methods = after.mutable_service(0)->mutable_method();
  methods->Mutable(0)->set_server_streaming(true);
  *methods->Mutable(1)->mutable_options() = testing::FileFromText(R"pb(
    name: "x.proto"
    service { name: "S" method { name: "M" options { [google.api.http] { get: "/v2/books" } } } }
  )pb").service(0).method(0).options();
  EXPECT_THAT(
      FileDifferences(before, "A", after, "B"),
      ElementsAre(
          "bookstore.proto: message bookstore.v1.Book field 'id' (1): only in A",
          "bookstore.proto: message bookstore.v1.Book field 'title' (2): json_name title (A) vs "
          "bookTitle (B)",
          "bookstore.proto: message bookstore.v1.Book field 'tags' (3): label repeated (A) vs "
          "optional (B)",
          "bookstore.proto: message bookstore.v1.Book field 'genre' (4): oneof none (A) vs kind "
          "(B)",
          "bookstore.proto: message bookstore.v1.Book field 'id' (9): only in B",
          "bookstore.proto: enum bookstore.v1.Genre value FICTION: number 1 (A) vs 7 (B)",
          "bookstore.proto: method bookstore.v1.Bookstore.GetShelf: server streaming no (A) vs "
          "yes (B)",
          "bookstore.proto: method bookstore.v1.Bookstore.ListBooks: option google.api.http GET "
          "/v1/shelves/{shelf}/books (A) vs GET /v2/books (B)"));
}

TEST(FileDifferences, LongListsAreCut) {
  google::protobuf::FileDescriptorProto after = PythonHttpProto();
  after.set_package("other.api");
  for (auto& field : *after.mutable_message_type(1)->mutable_field()) {
    field.set_type(google::protobuf::FieldDescriptorProto::TYPE_BYTES);
  }
  std::vector<std::string> lines = FileDifferences(ProtocHttpProto(), "A", after, "B", 3);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "google/api/http.proto: file: package google.api (A) vs other.api (B)");
  EXPECT_THAT(lines[3], ::testing::MatchesRegex("\\(and [0-9]+ more differences\\)"));
}

}  // namespace
}  // namespace gateway::registry
