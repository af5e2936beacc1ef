#include "transcoder/route_set.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "google/api/annotations.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "transcoder/test_util.h"

namespace gateway::transcoder {
namespace {

using ::testing::HasSubstr;
using testing::BookstorePool;
using testing::kBookstoreService;

std::unique_ptr<const RouteSet> BookstoreRoutes() {
  absl::StatusOr<std::unique_ptr<const RouteSet>> r =
      RouteSet::Create(BookstorePool(), {kBookstoreService});
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : nullptr;
}

TEST(RouteSet, EveryBindingOfEveryMethodBecomesAPlan) {
  std::unique_ptr<const RouteSet> routes = BookstoreRoutes();
  ASSERT_NE(routes, nullptr);
  // 13 methods with rules, 2 + 3 bindings for ListBooks and GetResource.
  EXPECT_EQ(routes->plans().size(), 16u);
}

struct RouteCase {
  std::string http_method;
  std::string path;
  std::string method;    // short name, or "" for NOT_FOUND
  std::string bindings;  // joined with "|"
};

class RouteSetMatchTest : public ::testing::TestWithParam<RouteCase> {};

TEST_P(RouteSetMatchTest, RoutesToTheMethodWithBindings) {
  static const RouteSet* routes = BookstoreRoutes().release();
  const RouteCase& c = GetParam();
  absl::StatusOr<RouteMatch> m = routes->Match(c.http_method, c.path);
  if (c.method.empty()) {
    EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound) << c.path;
    return;
  }
  ASSERT_TRUE(m.ok()) << c.http_method << " " << c.path << ": " << m.status();
  EXPECT_EQ(m->plan->method->name(), c.method);
  EXPECT_EQ(absl::StrJoin(m->bindings, "|"), c.bindings);
}

INSTANTIATE_TEST_SUITE_P(
    RouteSet, RouteSetMatchTest,
    ::testing::Values(
        RouteCase{"GET", "/v1/shelves/1/books", "ListBooks", "1"},
        RouteCase{"GET", "/v1/books", "ListBooks", ""},
        RouteCase{"GET", "/v1/shelves/1/books/2", "GetBook", "1|2"},
        RouteCase{"POST", "/v1/shelves/1/books", "CreateBook", "1"},
        RouteCase{"PATCH", "/v1/shelves/1/books/2", "UpdateBook", "1|2"},
        RouteCase{"DELETE", "/v1/shelves/1/books/2", "DeleteBook", "1|2"},
        RouteCase{"POST", "/v1/shelves/1/books/2:move", "MoveBook", "1|2"},
        RouteCase{"GET", "/v1/shelves/1/books/2/title", "GetBookTitle", "1|2"},
        RouteCase{"GET", "/v1/shelves/s1/books/b2", "GetBook", "s1|b2"},
        RouteCase{"GET", "/v1/resources/r1/items/i%2F2", "GetResource",
                  "resources/r1/items/i%2F2"},
        RouteCase{"GET", "/v1/files/a/b/c", "GetResource", "a/b/c"},
        RouteCase{"HEAD", "/v1/shelves/7", "GetResource", "shelves/7"},
        RouteCase{"PUT", "/v1/uploads/u1", "Upload", "u1"},
        RouteCase{"GET", "/v1/downloads/d1", "Download", "d1"},
        RouteCase{"GET", "/v1/shelves/1/events", "WatchBooks", "1"},
        RouteCase{"POST", "/v1/books:bulk", "BulkCreate", ""},
        RouteCase{"POST", "/v1/echo", "Echo", ""},
        RouteCase{"GET", "/v1/echo", "", ""},
        RouteCase{"POST", "/gateway.transcoder.testing.Bookstore/NoHttp", "", ""}));

TEST(RouteSet, PlansResolveFieldsAtBuildTime) {
  std::unique_ptr<const RouteSet> routes = BookstoreRoutes();
  absl::StatusOr<RouteMatch> m = routes->Match("PATCH", "/v1/shelves/1/books/2");
  ASSERT_TRUE(m.ok());
  const MethodPlan& plan = *m->plan;
  EXPECT_EQ(plan.body_kind, MethodPlan::BodyKind::kField);
  EXPECT_EQ(plan.body_field->name(), "book");
  ASSERT_EQ(plan.path_fields.size(), 2u);
  EXPECT_EQ(plan.path_fields[1].size(), 2u);
  EXPECT_EQ(plan.path_fields[1][1]->full_name(), "gateway.transcoder.testing.Book.id");
  ASSERT_NE(plan.update_mask_field, nullptr);
  EXPECT_EQ(plan.update_mask_field->name(), "update_mask");
  EXPECT_EQ(plan.rule_text, "patch \"/v1/shelves/{shelf}/books/{book.id}\"");
}

TEST(RouteSet, HttpBodyAndStreamingAreDetected) {
  std::unique_ptr<const RouteSet> routes = BookstoreRoutes();
  EXPECT_TRUE(routes->Match("PUT", "/v1/uploads/x")->plan->body_is_http_body);
  EXPECT_TRUE(routes->Match("GET", "/v1/downloads/x")->plan->response_is_http_body);
  EXPECT_TRUE(routes->Match("GET", "/v1/shelves/1/events")->plan->server_streaming);
  EXPECT_TRUE(routes->Match("POST", "/v1/books:bulk")->plan->client_streaming);
  EXPECT_EQ(routes->Match("GET", "/v1/shelves/1/books/2/title")
                ->plan->response_body_field->name(),
            "title");
}

TEST(RouteSet, ExposeGrpcPathsAddsPostRoutesForEveryMethod) {
  RouteSetOptions options;
  options.expose_grpc_paths = true;
  absl::StatusOr<std::unique_ptr<const RouteSet>> routes =
      RouteSet::Create(BookstorePool(), {kBookstoreService}, options);
  ASSERT_TRUE(routes.ok()) << routes.status();
  absl::StatusOr<RouteMatch> m =
      (*routes)->Match("POST", "/gateway.transcoder.testing.Bookstore/NoHttp");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->plan->method->name(), "NoHttp");
  EXPECT_EQ(m->plan->body_kind, MethodPlan::BodyKind::kWhole);
}

// The gateway may parse descriptor sets without the google.api.http
// extension linked in; the rule then sits in the options' unknown fields.
TEST(RouteSet, ReadsRulesStoredAsUnknownFields) {
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(testing::BookstoreDescriptorSetBytes()));
  int moved = 0;
  for (google::protobuf::FileDescriptorProto& file : *set.mutable_file()) {
    for (google::protobuf::ServiceDescriptorProto& service : *file.mutable_service()) {
      for (google::protobuf::MethodDescriptorProto& method : *service.mutable_method()) {
        google::protobuf::MethodOptions* options = method.mutable_options();
        if (!options->HasExtension(google::api::http)) continue;
        std::string rule = options->GetExtension(google::api::http).SerializeAsString();
        options->ClearExtension(google::api::http);
        options->GetReflection()
            ->MutableUnknownFields(options)
            ->AddLengthDelimited(google::api::kHttpFieldNumber, rule);
        ++moved;
      }
    }
  }
  ASSERT_EQ(moved, 13);
  absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> pool =
      testing::PoolFromDescriptorSet(set.SerializeAsString());
  ASSERT_TRUE(pool.ok());
  absl::StatusOr<std::unique_ptr<const RouteSet>> routes =
      RouteSet::Create(**pool, {kBookstoreService});
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_EQ((*routes)->plans().size(), 16u);
  EXPECT_EQ((*routes)->Match("GET", "/v1/shelves/1/books/2")->plan->method->name(),
            "GetBook");
}

TEST(RouteSet, UnknownServiceIsRejected) {
  absl::StatusOr<std::unique_ptr<const RouteSet>> r =
      RouteSet::Create(BookstorePool(), {"no.Such"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "service 'no.Such' is not in the descriptor pool");
}

// A file with service bad.S whose methods carry the given rules (text format
// of google.api.HttpRule, one per method M0, M1, ...).
absl::StatusOr<std::unique_ptr<const RouteSet>> RoutesFor(
    const std::vector<std::string>& rules, std::unique_ptr<google::protobuf::DescriptorPool>* pool) {
  std::string methods;
  for (size_t i = 0; i < rules.size(); ++i) {
    absl::StrAppend(&methods, "method { name: 'M", i,
                    "' input_type: '.bad.Req' output_type: '.bad.Req' "
                    "options { [google.api.http] { ",
                    rules[i], " } } }\n");
  }
  std::string file = absl::StrCat(R"pb(
    name: "bad.proto"
    package: "bad"
    dependency: "google/api/annotations.proto"
    syntax: "proto3"
    message_type {
      name: "Req"
      field { name: "id" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
      field { name: "tags" number: 2 type: TYPE_STRING label: LABEL_REPEATED }
      field { name: "sub" number: 3 type: TYPE_MESSAGE label: LABEL_OPTIONAL type_name: ".bad.Req" }
      field { name: "n" number: 4 type: TYPE_INT64 label: LABEL_OPTIONAL }
    }
    service { name: "S" )pb",
                                  methods, "}");
  absl::StatusOr<std::unique_ptr<google::protobuf::DescriptorPool>> p =
      testing::PoolWithFile(file);
  if (!p.ok()) return p.status();
  *pool = *std::move(p);
  return RouteSet::Create(**pool, {"bad.S"});
}

struct BadRuleCase {
  std::vector<std::string> rules;
  std::string error;
};

class BadRuleTest : public ::testing::TestWithParam<BadRuleCase> {};

TEST_P(BadRuleTest, IsRejectedNamingMethodRuleAndPosition) {
  std::unique_ptr<google::protobuf::DescriptorPool> pool;
  absl::StatusOr<std::unique_ptr<const RouteSet>> r = RoutesFor(GetParam().rules, &pool);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    RouteSet, BadRuleTest,
    ::testing::Values(
        BadRuleCase{{"get: '/v1/{nope}'"},
                    "method bad.S.M0, rule get \"/v1/{nope}\": position 4: field 'nope' "
                    "(in 'nope') does not exist in bad.Req"},
        BadRuleCase{{"get: '/v1/{tags}'"},
                    "method bad.S.M0, rule get \"/v1/{tags}\": position 4: field 'tags' is "
                    "repeated; a path variable needs a singular scalar field"},
        BadRuleCase{{"get: '/v1/{sub}'"},
                    "method bad.S.M0, rule get \"/v1/{sub}\": position 4: field 'sub' is a "
                    "message (bad.Req); a path variable needs a scalar field"},
        BadRuleCase{{"get: '/v1/{sub.nope}'"},
                    "method bad.S.M0, rule get \"/v1/{sub.nope}\": position 4: field 'nope' "
                    "(in 'sub.nope') does not exist in bad.Req"},
        BadRuleCase{{"get: '/v1/{id.x}'"},
                    "method bad.S.M0, rule get \"/v1/{id.x}\": position 4: field path "
                    "'id.x' goes through non-message field 'id'"},
        BadRuleCase{{"get: '/v1/{tags.x}'"},
                    "method bad.S.M0, rule get \"/v1/{tags.x}\": position 4: field 'tags.x' "
                    "is repeated; only singular message fields may be traversed"},
        BadRuleCase{{"get: '/v1/x/{sub.sub.id}/{n}/**/y'"},
                    "method bad.S.M0, rule get \"/v1/x/{sub.sub.id}/{n}/**/y\": position "
                    "23: '**' must be the last segment"},
        BadRuleCase{{"get: '/v1/{id'"},
                    "method bad.S.M0, rule get \"/v1/{id\": position 4: unbalanced '{'"},
        BadRuleCase{{"post: '/v1' body: 'nope'"},
                    "method bad.S.M0, rule post \"/v1\": body field 'nope' does not exist in "
                    "bad.Req"},
        BadRuleCase{{"get: '/v1' response_body: 'nope'"},
                    "method bad.S.M0, rule get \"/v1\": response_body field 'nope' does not "
                    "exist in bad.Req"},
        BadRuleCase{{"body: '*'"},
                    "method bad.S.M0, rule (no pattern): the rule sets none of "
                    "get/put/post/delete/patch/custom"},
        BadRuleCase{{"custom { kind: '' path: '/x' }"},
                    "method bad.S.M0, rule custom \"/x\": custom rule has an empty kind"},
        BadRuleCase{{"get: '/v1/{id}'", "get: '/v1/{n}'"},
                    "conflicting HTTP rules: bad.S.M1 (get \"/v1/{n}\") and bad.S.M0 (get "
                    "\"/v1/{id}\") both match GET /v1/*"},
        BadRuleCase{{"get: '/v1/a' additional_bindings { get: '/v1/a' }"},
                    "conflicting HTTP rules: bad.S.M0 (get \"/v1/a\") and bad.S.M0 (get "
                    "\"/v1/a\") both match GET /v1/a"},
        BadRuleCase{{"get: '/v1/a' additional_bindings { get: '/v1/b' "
                     "additional_bindings { get: '/v1/c' } }"},
                    "method bad.S.M0, rule additional_bindings: additional_bindings may not "
                    "have additional_bindings of their own"}));

TEST(RouteSet, ValidCustomRulesAndVerbsBuild) {
  std::unique_ptr<google::protobuf::DescriptorPool> pool;
  absl::StatusOr<std::unique_ptr<const RouteSet>> r = RoutesFor(
      {"custom { kind: 'OPTIONS' path: '/v1/{id}' }", "get: '/v1/{id}:do'",
       "get: '/v1/{sub.sub.id}/x'"},
      &pool);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)->Match("OPTIONS", "/v1/a")->plan->method->name(), "M0");
  EXPECT_EQ((*r)->Match("GET", "/v1/a:do")->plan->method->name(), "M1");
  EXPECT_EQ((*r)->Match("GET", "/v1/a/x")->plan->path_fields[0].size(), 3u);
}

}  // namespace
}  // namespace gateway::transcoder
