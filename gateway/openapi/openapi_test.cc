#include "gateway/openapi/openapi.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "transcoder/route_set.h"

namespace gateway::openapi {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr char kService[] = "gateway.openapi.testing.Notes";

const google::protobuf::DescriptorPool& Pool() {
  static const google::protobuf::DescriptorPool* pool = [] {
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const char* workspace = std::getenv("TEST_WORKSPACE");
    const std::string path =
        absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "grpc_gateway",
                     "/gateway/openapi/testdata/openapi_test_proto.pb");
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    google::protobuf::FileDescriptorSet set;
    if (!in || !set.ParseFromString(bytes.str())) {
      ADD_FAILURE() << "cannot read " << path;
      std::abort();
    }
    auto* p = new google::protobuf::DescriptorPool();
    for (const auto& file : set.file()) {
      if (p->BuildFile(file) == nullptr) {
        ADD_FAILURE() << "cannot build " << file.name();
        std::abort();
      }
    }
    return p;
  }();
  return *pool;
}

std::unique_ptr<const transcoder::RouteSet> Routes() {
  absl::StatusOr<std::unique_ptr<const transcoder::RouteSet>> routes =
      transcoder::RouteSet::Create(Pool(), {kService});
  EXPECT_TRUE(routes.ok()) << routes.status();
  return *std::move(routes);
}

// The generated document, parsed back.
Struct Generate(const OpenApiOptions& options = OpenApiOptions(), std::string* text = nullptr) {
  std::unique_ptr<const transcoder::RouteSet> routes = Routes();
  absl::StatusOr<std::string> doc = GenerateOpenApi(*routes, {}, options);
  EXPECT_TRUE(doc.ok()) << doc.status();
  Struct out;
  auto status = google::protobuf::util::JsonStringToMessage(*doc, &out);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << *doc;
  if (text != nullptr) *text = *doc;
  return out;
}

// The value at `path` (object keys; "#N" indexes a list); fails the test when absent.
Value At(const Struct& root, const std::vector<std::string>& path) {
  Value v;
  *v.mutable_struct_value() = root;
  for (const std::string& key : path) {
    if (!key.empty() && key[0] == '#') {
      int i = std::atoi(key.c_str() + 1);
      if (!v.has_list_value() || i >= v.list_value().values_size()) {
        ADD_FAILURE() << "no element " << key << " in " << absl::StrJoin(path, " / ");
        return Value();
      }
      Value next = v.list_value().values(i);
      v = next;
      continue;
    }
    if (!v.has_struct_value() || !v.struct_value().fields().contains(key)) {
      ADD_FAILURE() << "no key " << key << " in " << absl::StrJoin(path, " / ");
      return Value();
    }
    Value next = v.struct_value().fields().at(key);
    v = next;
  }
  return v;
}

bool Has(const Struct& root, const std::vector<std::string>& path) {
  const Struct* s = &root;
  for (size_t i = 0; i < path.size(); ++i) {
    auto it = s->fields().find(path[i]);
    if (it == s->fields().end()) return false;
    if (i + 1 < path.size()) {
      if (!it->second.has_struct_value()) return false;
      s = &it->second.struct_value();
    }
  }
  return true;
}

std::vector<std::string> Keys(const Value& v) {
  std::vector<std::string> keys;
  for (const auto& [k, unused] : v.struct_value().fields()) keys.push_back(k);
  return keys;
}

// The parameters of an operation, as "in:name".
std::vector<std::string> Params(const Struct& doc, const std::string& path,
                                const std::string& method) {
  std::vector<std::string> out;
  if (!Has(doc, {"paths", path, method, "parameters"})) return out;
  const Value params = At(doc, {"paths", path, method, "parameters"});
  for (const Value& p : params.list_value().values()) {
    out.push_back(absl::StrCat(p.struct_value().fields().at("in").string_value(), ":",
                               p.struct_value().fields().at("name").string_value()));
  }
  return out;
}

// The parameter `name` of an operation.
Value Param(const Struct& doc, const std::string& path, const std::string& method,
            const std::string& name) {
  const Value params = At(doc, {"paths", path, method, "parameters"});
  for (const Value& p : params.list_value().values()) {
    if (p.struct_value().fields().at("name").string_value() == name) return p;
  }
  ADD_FAILURE() << "no parameter " << name << " in " << method << " " << path;
  return Value();
}

std::string Str(const Value& v) { return v.string_value(); }

TEST(OpenApi, DocumentHeaderTagsAndEveryCallableBinding) {
  Struct doc = Generate();
  EXPECT_EQ(Str(At(doc, {"openapi"})), "3.1.0");
  EXPECT_EQ(Str(At(doc, {"info", "title"})), "gatewayd");
  EXPECT_EQ(Str(At(doc, {"tags", "#0", "name"})), kService);
  EXPECT_EQ(Str(At(doc, {"tags", "#0", "description"})), "Keeps notes on shelves.");
  EXPECT_THAT(Keys(At(doc, {"paths"})),
              UnorderedElementsAre("/v1/shelves/{shelf}/notes",
                                   "/v1/shelves/{name_1}/notes/{name_2}", "/v1/notes/{name}",
                                   "/v1/notes", "/v1/notes/{note.id}", "/v1/notes/{name}/title",
                                   "/v1/files/{path}", "/v1/files:upload",
                                   "/v1/shelves/{shelf}/notes:watch", "/v1/notes:import"));
  // Bidi streams cannot be called over HTTP; ARCHIVE is no OpenAPI method.
  EXPECT_FALSE(Has(doc, {"paths", "/v1/notes:chat"}));
  EXPECT_THAT(Keys(At(doc, {"paths", "/v1/notes/{name}"})), ElementsAre("get"));
}

TEST(OpenApi, OperationsNameTheirMethodAndCarryItsComments) {
  Struct doc = Generate();
  const Value op = At(doc, {"paths", "/v1/shelves/{shelf}/notes", "get"});
  EXPECT_EQ(Str(At(op.struct_value(), {"operationId"})), "gateway.openapi.testing.Notes.ListNotes");
  EXPECT_EQ(Str(At(op.struct_value(), {"description"})), "Lists the notes of a shelf.");
  EXPECT_EQ(Str(At(op.struct_value(), {"x-grpc-method"})),
            "/gateway.openapi.testing.Notes/ListNotes");
  // The additional binding gets its own operation id.
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/shelves/{name_1}/notes/{name_2}", "get", "operationId"})),
            "gateway.openapi.testing.Notes.GetNote");
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes/{name}", "get", "operationId"})),
            "gateway.openapi.testing.Notes.GetNote_2");
}

TEST(OpenApi, QueryParametersFollowTheRequestTranslatorsRules) {
  Struct doc = Generate();
  // Path fields are not in the query; nested fields are dotted; cycles, repeated messages,
  // Struct and maps of messages are left out (the query cannot set them).
  EXPECT_THAT(Params(doc, "/v1/shelves/{shelf}/notes", "get"),
              ElementsAre("path:shelf", "query:pageSize", "query:tags", "query:color",
                          "query:labels", "query:filter.author", "query:filter.colors",
                          "query:since", "query:minWords", "query:readMask"));
  const std::string p = "/v1/shelves/{shelf}/notes";
  Value shelf = Param(doc, p, "get", "shelf");
  EXPECT_TRUE(At(shelf.struct_value(), {"required"}).bool_value());
  EXPECT_EQ(Str(At(shelf.struct_value(), {"description"})), "The shelf's id.");
  EXPECT_EQ(Str(At(shelf.struct_value(), {"schema", "type"})), "string");
  EXPECT_EQ(Str(At(shelf.struct_value(), {"schema", "format"})), "int64");

  Value tags = Param(doc, p, "get", "tags");
  EXPECT_EQ(Str(At(tags.struct_value(), {"schema", "type"})), "array");
  EXPECT_EQ(Str(At(tags.struct_value(), {"schema", "items", "type"})), "string");

  Value color = Param(doc, p, "get", "color");
  EXPECT_EQ(Str(At(color.struct_value(), {"schema", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note.Color");

  Value labels = Param(doc, p, "get", "labels");
  EXPECT_EQ(Str(At(labels.struct_value(), {"style"})), "deepObject");
  EXPECT_TRUE(At(labels.struct_value(), {"explode"}).bool_value());
  EXPECT_EQ(Str(At(labels.struct_value(), {"schema", "additionalProperties", "type"})),
            "string");
  EXPECT_THAT(Str(At(labels.struct_value(), {"description"})), HasSubstr("labels[KEY]=VALUE"));

  Value colors = Param(doc, p, "get", "filter.colors");
  EXPECT_EQ(Str(At(colors.struct_value(), {"schema", "items", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note.Color");
  EXPECT_EQ(Str(At(Param(doc, p, "get", "since").struct_value(), {"schema", "format"})),
            "date-time");
  EXPECT_EQ(Str(At(Param(doc, p, "get", "minWords").struct_value(), {"schema", "type", "#0"})),
            "integer");
}

TEST(OpenApi, QueryParameterNamesFollowUseProtoFieldNames) {
  OpenApiOptions options;
  options.use_proto_field_names = true;
  Struct doc = Generate(options);
  EXPECT_THAT(Params(doc, "/v1/shelves/{shelf}/notes", "get"),
              ElementsAre("path:shelf", "query:page_size", "query:tags", "query:color",
                          "query:labels", "query:filter.author", "query:filter.colors",
                          "query:since", "query:min_words", "query:read_mask"));
  EXPECT_TRUE(Has(doc, {"components", "schemas", "gateway.openapi.testing.Note", "properties",
                        "create_time"}));
}

TEST(OpenApi, MultiSegmentVariablesKeepTheirLiteralsAndDoubleWildcardsBindTheRest) {
  Struct doc = Generate();
  EXPECT_THAT(Params(doc, "/v1/shelves/{name_1}/notes/{name_2}", "get"),
              ElementsAre("path:name_1", "path:name_2"));
  EXPECT_THAT(Str(At(Param(doc, "/v1/shelves/{name_1}/notes/{name_2}", "get", "name_2")
                         .struct_value(),
                     {"description"})),
              HasSubstr("shelves/{name_1}/notes/{name_2}"));
  EXPECT_THAT(Params(doc, "/v1/files/{path}", "get"), ElementsAre("path:path"));
  EXPECT_THAT(Str(At(Param(doc, "/v1/files/{path}", "get", "path").struct_value(),
                     {"description"})),
              HasSubstr("several segments"));
}

TEST(OpenApi, RequestBodies) {
  Struct doc = Generate();
  // body "*": the whole request message, no query parameters.
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes", "post", "requestBody", "content",
                         "application/json", "schema", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note");
  EXPECT_FALSE(Has(doc, {"paths", "/v1/notes", "post", "parameters"}));
  // body "note": that field; the other fields (update_mask) come from the query, the path
  // field note.id from the path.
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes/{note.id}", "patch", "requestBody", "content",
                         "application/json", "schema", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note");
  EXPECT_THAT(Params(doc, "/v1/notes/{note.id}", "patch"),
              ElementsAre("path:note.id", "query:updateMask"));
  // google.api.HttpBody: any content type.
  EXPECT_TRUE(Has(doc, {"paths", "/v1/files:upload", "post", "requestBody", "content", "*/*"}));
  // A client stream: a JSON array or NDJSON.
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes:import", "post", "requestBody", "content",
                         "application/json", "schema", "type"})),
            "array");
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes:import", "post", "requestBody", "content",
                         "application/x-ndjson", "schema", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note");
  // No body: no requestBody.
  EXPECT_FALSE(Has(doc, {"paths", "/v1/shelves/{shelf}/notes", "get", "requestBody"}));
}

TEST(OpenApi, Responses) {
  Struct doc = Generate();
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes/{name}", "get", "responses", "200", "content",
                         "application/json", "schema", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note");
  // response_body "title".
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes/{name}/title", "get", "responses", "200",
                         "content", "application/json", "schema", "type"})),
            "string");
  // HttpBody: raw content.
  EXPECT_TRUE(Has(doc, {"paths", "/v1/files/{path}", "get", "responses", "200", "content",
                        "*/*"}));
  // A server stream: the three framings.
  const Value stream = At(doc, {"paths", "/v1/shelves/{shelf}/notes:watch", "get", "responses",
                                "200", "content"});
  EXPECT_THAT(Keys(stream),
              UnorderedElementsAre("application/json", "application/x-ndjson",
                                   "text/event-stream"));
  EXPECT_EQ(Str(At(stream.struct_value(), {"application/json", "schema", "items", "$ref"})),
            "#/components/schemas/gateway.openapi.testing.Note");
  // Errors: {code, message, details}.
  EXPECT_EQ(Str(At(doc, {"paths", "/v1/notes", "post", "responses", "default", "content",
                         "application/json", "schema", "$ref"})),
            "#/components/schemas/google.rpc.Status");
  EXPECT_THAT(Keys(At(doc, {"components", "schemas", "google.rpc.Status", "properties"})),
              UnorderedElementsAre("code", "message", "details"));
}

TEST(OpenApi, SchemasFollowTheProto3JsonMapping) {
  Struct doc = Generate();
  const Value note = At(doc, {"components", "schemas", "gateway.openapi.testing.Note"});
  const Struct& n = note.struct_value();
  EXPECT_EQ(Str(At(n, {"description"})), "A note.");
  EXPECT_EQ(Str(At(n, {"properties", "title", "description"})),
            "The title, at most 100 characters.");
  EXPECT_EQ(Str(At(n, {"properties", "id", "type"})), "string");
  EXPECT_EQ(Str(At(n, {"properties", "id", "format"})), "int64");
  EXPECT_EQ(Str(At(n, {"properties", "views", "format"})), "uint64");
  EXPECT_EQ(Str(At(n, {"properties", "score", "type"})), "number");
  EXPECT_EQ(Str(At(n, {"properties", "thumbnail", "format"})), "byte");
  EXPECT_EQ(Str(At(n, {"properties", "createTime", "format"})), "date-time");
  EXPECT_EQ(Str(At(n, {"properties", "ttl", "pattern"})), "^-?[0-9]+(\\.[0-9]{1,9})?s$");
  // google.protobuf.Value: any JSON value (no "type").
  EXPECT_FALSE(Has(n, {"properties", "data", "type"}));
  EXPECT_EQ(Str(At(n, {"properties", "attachment", "required", "#0"})), "@type");
  EXPECT_EQ(Str(At(n, {"properties", "items", "type"})), "array");
  EXPECT_EQ(Str(At(n, {"properties", "subtitle", "type", "#1"})), "null");
  EXPECT_EQ(Str(At(n, {"properties", "counts", "additionalProperties", "format"})), "int32");
  EXPECT_THAT(Str(At(n, {"properties", "url", "description"})),
              HasSubstr("oneof location: at most one of url, page"));
  const Value color = At(doc, {"components", "schemas", "gateway.openapi.testing.Note.Color"});
  EXPECT_EQ(Str(At(color.struct_value(), {"type"})), "string");
  EXPECT_EQ(Str(At(color.struct_value(), {"enum", "#1"})), "BLUE");
  EXPECT_THAT(Str(At(color.struct_value(), {"description"})),
              HasSubstr("- BLUE (1): Like the sky."));
}

TEST(OpenApi, EnumsAsIntsAreNumbers) {
  OpenApiOptions options;
  options.enums_as_ints = true;
  Struct doc = Generate(options);
  const Value color = At(doc, {"components", "schemas", "gateway.openapi.testing.Note.Color"});
  EXPECT_EQ(Str(At(color.struct_value(), {"type"})), "integer");
  EXPECT_EQ(At(color.struct_value(), {"enum", "#2"}).number_value(), 2);
}

TEST(OpenApi, SecuritySchemesAndRequirementsComeFromTheAuthRules) {
  OpenApiOptions options;
  config::v1::JwtProvider* jwt = options.auth.add_jwt_providers();
  jwt->set_name("corp");
  jwt->set_issuer("https://issuer.example");
  options.auth.mutable_api_keys()->add_from()->set_query_parameter("key");
  config::v1::AuthRule* open = options.auth.add_rules();
  open->add_selectors("gateway.openapi.testing.Notes.ListNotes");
  open->set_allow_unauthenticated(true);
  config::v1::AuthRule* rest = options.auth.add_rules();
  rest->add_selectors("gateway.openapi.testing.Notes.*");
  rest->add_providers("corp");
  rest->add_providers("api_key");
  rest->add_required_scopes("notes.read");
  config::v1::AuthRule* mtls = options.auth.add_rules();
  mtls->add_selectors("gateway.openapi.testing.Notes.Upload");
  mtls->add_identities("spiffe://prod/*");
  Struct doc = Generate(options);

  EXPECT_EQ(Str(At(doc, {"components", "securitySchemes", "corp", "scheme"})), "bearer");
  EXPECT_EQ(Str(At(doc, {"components", "securitySchemes", "api_key", "in"})), "query");
  EXPECT_EQ(Str(At(doc, {"components", "securitySchemes", "api_key", "name"})), "key");
  EXPECT_EQ(Str(At(doc, {"components", "securitySchemes", "mutual_tls", "type"})),
            "mutualTLS");
  // Open: an empty requirement list.
  EXPECT_EQ(At(doc, {"paths", "/v1/shelves/{shelf}/notes", "get", "security"})
                .list_value()
                .values_size(),
            0);
  // Either credential; the JWT with the rule's scopes.
  const Value sec = At(doc, {"paths", "/v1/notes", "post", "security"});
  ASSERT_EQ(sec.list_value().values_size(), 2);
  EXPECT_EQ(Str(At(sec.list_value().values(0).struct_value(), {"corp", "#0"})), "notes.read");
  EXPECT_TRUE(Has(sec.list_value().values(1).struct_value(), {"api_key"}));
  EXPECT_TRUE(Has(At(doc, {"paths", "/v1/files:upload", "post", "security", "#0"}).struct_value(),
                  {"mutual_tls"}));
}

TEST(OpenApi, MethodsNoRuleCoversAreMarkedRefused) {
  OpenApiOptions options;
  config::v1::AuthRule* open = options.auth.add_rules();
  open->add_selectors("gateway.openapi.testing.Notes.ListNotes");
  open->set_allow_unauthenticated(true);
  Struct doc = Generate(options);
  EXPECT_THAT(Str(At(doc, {"paths", "/v1/notes", "post", "description"})),
              HasSubstr("no auth rule covers this method"));
}

TEST(OpenApi, OneServiceDocumentAndUnknownService) {
  std::unique_ptr<const transcoder::RouteSet> routes = Routes();
  absl::StatusOr<std::string> doc = GenerateOpenApi(*routes, {kService}, OpenApiOptions());
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_THAT(*doc, HasSubstr("\"title\": \"gateway.openapi.testing.Notes\""));
  absl::StatusOr<std::string> missing =
      GenerateOpenApi(*routes, {"no.such.Service"}, OpenApiOptions());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("no.such.Service"));
}

TEST(OpenApi, OutputIsDeterministic) {
  std::string a, b;
  Generate(OpenApiOptions(), &a);
  Generate(OpenApiOptions(), &b);
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace gateway::openapi
