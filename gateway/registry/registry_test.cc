#include "gateway/registry/registry.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include <fstream>

#include "gateway/descriptor_sets.h"
#include "gateway/interceptors/auth_interceptor.h"
#include "gateway/interceptors/quota_interceptor.h"
#include "gateway/registry/test_descriptors.h"
#include "gateway/upstream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::SimpleServiceSet;

std::shared_ptr<Backend> MakeBackend(const std::string& name) {
  config::v1::Backend config;
  config.set_name(name);
  config.set_target("dns:///127.0.0.1:1");
  absl::StatusOr<std::shared_ptr<Backend>> backend =
      Backend::Create(config, config::v1::Limits(), "", "backends[0]");
  EXPECT_TRUE(backend.ok()) << backend.status();
  return *backend;
}

// The gateway config serves config.v1.Front (GET /v1/front/{id}) on backend "front";
// backends "books" and "echo" serve nothing yet.
BaseRoutes Base() {
  BaseRoutes base;
  base.descriptor_sets.push_back(
      {SimpleServiceSet("config.v1", "Front", "/v1/front/{id}"), "front.pb"});
  base.backends["front"] = MakeBackend("front");
  base.backends["books"] = MakeBackend("books");
  base.backends["echo"] = MakeBackend("echo");
  base.services.push_back({"config.v1.Front", base.backends["front"]});
  DescriptorSetBuilder builder;
  EXPECT_TRUE(builder.AddSerialized(base.descriptor_sets[0].bytes, "front.pb").ok());
  base.pool = *builder.Build();
  return base;
}

std::string FreshDirectory(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/registry-", name, "-",
                                 ::getpid());
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  return dir;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(nullptr); }

  void Start(std::unique_ptr<DirectoryStore> store, RegistryOptions options = RegistryOptions()) {
    problems_.clear();
    absl::StatusOr<std::unique_ptr<Registry>> registry = Registry::Create(
        Base(), std::move(store),
        [this](std::shared_ptr<const RouteTable> t) {
          published_ = std::move(t);
          ++publications_;
        },
        &problems_, [this] { return now_; }, options);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
  }

  RegisterRequest Library(const std::string& get_path = "/v1/books/{id}") {
    RegisterRequest r;
    r.service = "lib.v1.Library";
    r.owner = "team-a";
    r.backend = "books";
    r.descriptor_set = SimpleServiceSet("lib.v1", "Library", get_path);
    return r;
  }

  absl::Status RegisterStatus(const RegisterRequest& r) { return registry_->Register(r).status(); }

  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::vector<std::string> problems_;
  std::shared_ptr<const RouteTable> published_;
  int publications_ = 0;
  std::unique_ptr<Registry> registry_;
};

// --- Validation: each kind of refusal, with its message. ---

TEST_F(RegistryTest, MissingServiceNameIsRefused) {
  RegisterRequest r = Library();
  r.service = "";
  EXPECT_EQ(RegisterStatus(r), absl::InvalidArgumentError("service: required"));
}

TEST_F(RegistryTest, MalformedServiceNameIsRefused) {
  RegisterRequest r = Library();
  r.service = "lib.v1/Library";
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError("service: \"lib.v1/Library\" is not a full service name "
                                       "(e.g. pkg.v1.Service)"));
}

TEST_F(RegistryTest, MissingOwnerIsRefused) {
  RegisterRequest r = Library();
  r.owner = "";
  EXPECT_EQ(RegisterStatus(r), absl::InvalidArgumentError("owner: required"));
}

// --- A restricted caller (a team's token): its packages and path prefixes only. ---

TEST_F(RegistryTest, RestrictedRequestOutsideItsPackagesIsRefused) {
  RegisterRequest r = Library();
  r.restricted = true;
  r.allowed_packages = {"books", "lib.v2"};
  r.allowed_path_prefixes = {"/v1/books"};
  EXPECT_EQ(RegisterStatus(r),
            absl::PermissionDeniedError("package lib.v1 of service lib.v1.Library is not one "
                                        "this token may register in (books, lib.v2)"));
  EXPECT_THAT(registry_->List(), IsEmpty());
}

TEST_F(RegistryTest, RestrictedRequestWithRoutesOutsideItsPrefixesIsRefusedEvenDryRun) {
  RegisterRequest r = Library("/v1/shelves/{id}");
  r.restricted = true;
  r.allowed_packages = {"lib"};
  r.allowed_path_prefixes = {"/v1/books"};
  for (bool dry_run : {false, true}) {
    r.dry_run = dry_run;
    EXPECT_EQ(RegisterStatus(r),
              absl::PermissionDeniedError(
                  "routes of lib.v1.Library outside the path prefixes this token may claim "
                  "(/v1/books):\nGET /v1/shelves/{id} -> lib.v1.Library.Get"));
  }
  EXPECT_THAT(registry_->List(), IsEmpty());
}

TEST_F(RegistryTest, RestrictedRequestInsideItsPackagesAndPrefixesIsServedAndRecordsWho) {
  RegisterRequest r = Library("/v1/books/{id}");
  r.restricted = true;
  r.allowed_packages = {"lib"};
  r.allowed_path_prefixes = {"/v1/books"};
  r.changed_by = "team-a (sha256:0123abcd)";
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->version.changed_by, "team-a (sha256:0123abcd)");
  ASSERT_TRUE(registry_->Remove("lib.v1.Library", "team-a", false, "admin (x)").ok());
  absl::StatusOr<std::vector<ServiceVersion>> versions = registry_->Versions("lib.v1.Library");
  ASSERT_TRUE(versions.ok()) << versions.status();
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].changed_by, "team-a (sha256:0123abcd)");
  EXPECT_EQ((*versions)[1].changed_by, "admin (x)");
}

TEST_F(RegistryTest, UnknownBackendIsRefusedListingTheKnownOnes) {
  RegisterRequest r = Library();
  r.backend = "bookz";
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "backend: unknown backend \"bookz\" (known: books, echo, front)"));
}

TEST_F(RegistryTest, BytesThatAreNotADescriptorSetAreRefused) {
  RegisterRequest r = Library();
  r.descriptor_set = "\xff\xff not protobuf";
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "descriptor_set: not a FileDescriptorSet (expected the output of protoc "
                "--include_imports --descriptor_set_out)"));
}

TEST_F(RegistryTest, DescriptorSetWithoutItsImportsIsRefused) {
  RegisterRequest r = Library();
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(r.descriptor_set));
  google::protobuf::FileDescriptorSet only_mine;
  *only_mine.add_file() = set.file(set.file_size() - 1);
  r.descriptor_set = only_mine.SerializeAsString();
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "\"lib.v1.proto\" imports \"google/api/annotations.proto\", which is in no "
                "descriptor set (build the set with protoc --include_imports)"));
}

TEST_F(RegistryTest, DescriptorSetWithAnUndefinedTypeIsRefused) {
  RegisterRequest r = Library();
  google::protobuf::FileDescriptorProto file =
      testing::SimpleServiceFile("lib.v1", "Library", "/v1/books/{id}");
  file.mutable_service(0)->mutable_method(0)->set_output_type(".lib.v1.Respons");
  r.descriptor_set = testing::DescriptorSetOf({file});
  absl::Status status = RegisterStatus(r);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "descriptor_set: invalid file \"lib.v1.proto\": lib.v1.proto (lib.v1.Library.Get): "
            "\".lib.v1.Respons\" is not defined.");
}

TEST_F(RegistryTest, ServiceMissingFromTheDescriptorSetIsRefusedListingWhatItDefines) {
  RegisterRequest r = Library();
  r.service = "lib.v1.Librarian";
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError("descriptor_set: service lib.v1.Librarian is not defined "
                                       "in it (it defines: lib.v1.Library)"));
}

TEST_F(RegistryTest, InvalidHttpRuleIsRefusedNamingMethodAndRule) {
  absl::Status status = RegisterStatus(Library("/v1/books/{nope}"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()), "method lib.v1.Library.Get, rule get \"/v1/books/{nope}\": position 10: field 'nope' "
            "(in 'nope') does not exist in lib.v1.Request");
}

TEST_F(RegistryTest, HttpRouteConflictingWithAnotherServiceNamesBothMethodsAndThePath) {
  ASSERT_TRUE(registry_->Register(Library("/v1/books/{id}")).ok());
  RegisterRequest other;
  other.service = "shop.v1.Shop";
  other.owner = "team-b";
  other.backend = "echo";
  other.descriptor_set = SimpleServiceSet("shop.v1", "Shop", "/v1/books/{name}");
  absl::Status status = RegisterStatus(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()), "conflicting HTTP rules: shop.v1.Shop.Get (get \"/v1/books/{name}\") and "
            "lib.v1.Library.Get (get \"/v1/books/{id}\") both match GET /v1/books/*");
  EXPECT_EQ(publications_, 2);  // the initial table and the Library registration only
}

TEST_F(RegistryTest, HttpRouteConflictingWithAConfigServiceIsRefused) {
  absl::Status status = RegisterStatus(Library("/v1/front/{name}"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()), "conflicting HTTP rules: lib.v1.Library.Get (get \"/v1/front/{name}\") and "
            "config.v1.Front.Get (get \"/v1/front/{id}\") both match GET /v1/front/*");
}

TEST_F(RegistryTest, FileDifferingBetweenTwoServicesIsRefusedNamingBoth) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest other;
  other.service = "shop.v1.Shop";
  other.owner = "team-b";
  other.backend = "echo";
  // Same file name as the library's, different content.
  google::protobuf::FileDescriptorProto file =
      testing::SimpleServiceFile("shop.v1", "Shop", "/v1/shop");
  file.set_name("lib.v1.proto");
  other.descriptor_set = testing::DescriptorSetOf({file});
  const absl::Status status = RegisterStatus(other);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_THAT(message,
              ::testing::StartsWith("service shop.v1.Shop v1: file \"lib.v1.proto\" differs "
                                    "from the one in service lib.v1.Library v1:\n"));
  EXPECT_THAT(message,
              HasSubstr("\nlib.v1.proto: file: package shop.v1 (service shop.v1.Shop v1) vs "
                        "lib.v1 (service lib.v1.Library v1)"));
}

// A copy of a shared import as Python's descriptors give it (no json_name) and with file
// options of its own is the same file.
TEST_F(RegistryTest, SharedImportWithoutJsonNamesOrWithOtherFileOptionsIsAccepted) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(SimpleServiceSet("shop.v1", "Shop", "/v1/shop/{id}")));
  for (auto& file : *set.mutable_file()) {
    for (auto& message : *file.mutable_message_type()) {
      for (auto& field : *message.mutable_field()) field.clear_json_name();
    }
    if (file.name() == "google/api/annotations.proto") {
      file.mutable_options()->set_java_package("com.example.annotations");
    }
  }
  RegisterRequest shop;
  shop.service = "shop.v1.Shop";
  shop.owner = "team-b";
  shop.backend = "echo";
  shop.descriptor_set = set.SerializeAsString();
  absl::StatusOr<ChangeResult> result = registry_->Register(shop);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(published_->transcoder().Match("GET", "/v1/shop/1").ok());

  // A change that matters is refused, saying what differs.
  for (auto& file : *set.mutable_file()) {
    if (file.name() != "google/api/http.proto") continue;
    for (auto& message : *file.mutable_message_type()) {
      if (message.name() != "HttpRule") continue;
      for (auto& field : *message.mutable_field()) {
        if (field.name() == "body") field.set_type(google::protobuf::FieldDescriptorProto::TYPE_BYTES);
      }
    }
  }
  RegisterRequest other = shop;
  other.service = "other.v1.Shop";
  google::protobuf::FileDescriptorSet renamed = set;
  for (auto& file : *renamed.mutable_file()) {
    if (file.package() == "shop.v1") {
      file = testing::SimpleServiceFile("other.v1", "Shop", "/v1/other/{id}");
    }
  }
  other.descriptor_set = renamed.SerializeAsString();
  EXPECT_EQ(RegisterStatus(other),
            absl::InvalidArgumentError(
                "service other.v1.Shop v1: file \"google/api/http.proto\" differs from the one "
                "in front.pb:\ngoogle/api/http.proto: message google.api.HttpRule field 'body' "
                "(7): type bytes (service other.v1.Shop v1) vs string (front.pb)"));
}

TEST_F(RegistryTest, ChangingAServiceOfAnotherOwnerIsRefused) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest r = Library("/v1/books2/{id}");
  r.owner = "team-b";
  EXPECT_EQ(RegisterStatus(r),
            absl::PermissionDeniedError(
                "service lib.v1.Library is owned by \"team-a\", not \"team-b\""));
}

TEST_F(RegistryTest, ServiceInAPackageOfAnotherOwnerIsRefused) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest r;
  r.service = "lib.v1.Archive";
  r.owner = "team-b";
  r.backend = "echo";
  google::protobuf::FileDescriptorProto file =
      testing::SimpleServiceFile("lib.v1", "Archive", "/v1/archive");
  file.set_name("archive.proto");
  r.descriptor_set = testing::DescriptorSetOf({file});
  EXPECT_EQ(RegisterStatus(r),
            absl::PermissionDeniedError(
                "package lib.v1 is registered by \"team-a\" (service lib.v1.Library)"));
}

TEST_F(RegistryTest, ServiceOfTheGatewayConfigCannotBeReplaced) {
  RegisterRequest r;
  r.service = "config.v1.Front";
  r.owner = "team-a";
  r.backend = "echo";
  r.descriptor_set = SimpleServiceSet("config.v1", "Front", "/v1/front2/{id}");
  EXPECT_EQ(RegisterStatus(r),
            absl::PermissionDeniedError("service config.v1.Front is defined in the gateway "
                                        "config and cannot be changed through the registry"));
}

TEST_F(RegistryTest, BreakingChangeIsRefusedWithoutForceListingEachChange) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  EXPECT_EQ(RegisterStatus(Library("/v2/books/{id}")),
            absl::FailedPreconditionError(
                "breaking changes (to accept them: gatewayctl --force, or \"force\": true in "
                "the admin API request):\n"
                "lib.v1.Library.Get: http rule changed GET /v1/books/{id} -> GET /v2/books/{id}"));
  EXPECT_EQ(registry_->Get("lib.v1.Library")->version, 1);
}

// --- Successful changes, dry runs and what they report. ---

TEST_F(RegistryTest, RegisterPublishesACompleteTableWithBothServices) {
  absl::StatusOr<ChangeResult> result = registry_->Register(Library());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->version.version, 1);
  EXPECT_FALSE(result->dry_run);
  ASSERT_NE(published_, nullptr);
  EXPECT_NE(published_->Find("/lib.v1.Library/Get"), nullptr);
  EXPECT_NE(published_->Find("/config.v1.Front/Get"), nullptr);
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get")->backend->name(), "books");
  absl::StatusOr<transcoder::RouteMatch> m = published_->transcoder().Match("GET", "/v1/books/7");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(published_->ForPlan(m->plan)->path, "/lib.v1.Library/Get");
  EXPECT_THAT(result->changes.services_added, ElementsAre("lib.v1.Library"));
  EXPECT_THAT(result->changes.methods_added, ElementsAre("/lib.v1.Library/Get"));
  EXPECT_THAT(result->changes.routes_added, ElementsAre("GET /v1/books/{id} -> lib.v1.Library.Get"));
  EXPECT_THAT(result->changes.breaking_changes, IsEmpty());
}

TEST_F(RegistryTest, DryRunReportsTheDiffAndChangesNothing) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  const int before = publications_;
  RegisterRequest r = Library("/v2/books/{id}");
  r.dry_run = true;
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->dry_run);
  EXPECT_EQ(result->version.version, 2);
  EXPECT_THAT(result->changes.services_added, IsEmpty());
  EXPECT_THAT(result->changes.methods_added, IsEmpty());
  EXPECT_THAT(result->changes.routes_added, ElementsAre("GET /v2/books/{id} -> lib.v1.Library.Get"));
  EXPECT_THAT(result->changes.routes_removed,
              ElementsAre("GET /v1/books/{id} -> lib.v1.Library.Get"));
  EXPECT_THAT(result->changes.breaking_changes,
              ElementsAre("lib.v1.Library.Get: http rule changed GET /v1/books/{id} -> "
                          "GET /v2/books/{id}"));
  EXPECT_EQ(result->changes.ToString(),
            "+ route GET /v2/books/{id} -> lib.v1.Library.Get\n"
            "- route GET /v1/books/{id} -> lib.v1.Library.Get\n"
            "! lib.v1.Library.Get: http rule changed GET /v1/books/{id} -> GET /v2/books/{id}");
  EXPECT_EQ(publications_, before);
  EXPECT_EQ(registry_->Get("lib.v1.Library")->version, 1);
}

TEST_F(RegistryTest, ForcedReplaceServesTheNewRuleOnly) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest r = Library("/v2/books/{id}");
  r.force = true;
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->version.version, 2);
  EXPECT_EQ(published_->transcoder().Match("GET", "/v1/books/1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(published_->transcoder().Match("GET", "/v2/books/1").ok());
}

TEST_F(RegistryTest, RemoveStopsServingAndKeepsTheHistory) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  absl::Status denied = registry_->Remove("lib.v1.Library", "team-b", false).status();
  EXPECT_EQ(denied, absl::PermissionDeniedError(
                        "service lib.v1.Library is owned by \"team-a\", not \"team-b\""));
  absl::StatusOr<ChangeResult> result = registry_->Remove("lib.v1.Library", "team-a", false);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->changes.services_removed, ElementsAre("lib.v1.Library"));
  EXPECT_THAT(result->changes.routes_removed,
              ElementsAre("GET /v1/books/{id} -> lib.v1.Library.Get"));
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
  EXPECT_EQ(registry_->Get("lib.v1.Library").status(),
            absl::NotFoundError("service lib.v1.Library is not registered"));
  EXPECT_EQ(registry_->Versions("lib.v1.Library")->size(), 2u);
  EXPECT_EQ(registry_->Remove("lib.v1.Library", "team-a", false).status(),
            absl::NotFoundError("service lib.v1.Library is not registered"));
  // Registered again, it continues the numbering.
  EXPECT_EQ(registry_->Register(Library())->version.version, 3);
}

TEST_F(RegistryTest, RollbackServesTheEarlierContentAsANewVersion) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest r = Library("/v2/books/{id}");
  r.force = true;
  ASSERT_TRUE(registry_->Register(r).ok());
  absl::StatusOr<ChangeResult> result = registry_->Rollback("lib.v1.Library", 0, "team-a", false);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->version.version, 3);
  EXPECT_THAT(result->changes.routes_added, ElementsAre("GET /v1/books/{id} -> lib.v1.Library.Get"));
  EXPECT_TRUE(published_->transcoder().Match("GET", "/v1/books/1").ok());
  EXPECT_EQ(registry_->Rollback("lib.v1.Library", 9, "team-a", false).status(),
            absl::NotFoundError("service lib.v1.Library has no version 9"));
}

TEST_F(RegistryTest, StatsCountAppliedChangesAndEveryPublishedTable) {
  EXPECT_EQ(registry_->stats().swaps, 1);  // Create publishes the config's table
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest dry = Library("/v2/books/{id}");
  dry.dry_run = true;
  ASSERT_TRUE(registry_->Register(dry).ok());
  RegisterRequest refused = Library();
  refused.owner = "team-b";
  ASSERT_FALSE(registry_->Register(refused).ok());
  RegisterRequest v2 = Library("/v2/books/{id}");
  v2.force = true;
  ASSERT_TRUE(registry_->Register(v2).ok());
  ASSERT_TRUE(registry_->Rollback("lib.v1.Library", 0, "team-a", false).ok());
  ASSERT_TRUE(registry_->Remove("lib.v1.Library", "team-a", /*dry_run=*/true).ok());
  ASSERT_TRUE(registry_->Remove("lib.v1.Library", "team-a", false).ok());
  const Registry::Stats stats = registry_->stats();
  EXPECT_EQ(stats.registered, 2);
  EXPECT_EQ(stats.rolled_back, 1);
  EXPECT_EQ(stats.removed, 1);
  EXPECT_EQ(stats.swaps, 5);
  EXPECT_EQ(publications_, 5);
  EXPECT_NE(stats.last_swap, absl::InfinitePast());
  EXPECT_GE(stats.last_swap_duration, absl::ZeroDuration());
  EXPECT_LT(stats.last_swap_duration, absl::Seconds(10));
}

// --- Persistence through the registry. ---

TEST_F(RegistryTest, RestartRestoresExactlyTheRegisteredState) {
  const std::string dir = FreshDirectory("restart");
  Start(std::make_unique<DirectoryStore>(dir));
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest replaced = Library("/v2/books/{id}");
  replaced.force = true;
  ASSERT_TRUE(registry_->Register(replaced).ok());
  RegisterRequest shop;
  shop.service = "shop.v1.Shop";
  shop.owner = "team-b";
  shop.backend = "echo";
  shop.descriptor_set = SimpleServiceSet("shop.v1", "Shop", "/v1/shop/{id}");
  ASSERT_TRUE(registry_->Register(shop).ok());
  RegisterRequest gone = shop;
  gone.service = "gone.v1.Gone";
  gone.descriptor_set = SimpleServiceSet("gone.v1", "Gone", "/v1/gone/{id}");
  ASSERT_TRUE(registry_->Register(gone).ok());
  ASSERT_TRUE(registry_->Remove("gone.v1.Gone", "team-b", false).ok());
  const std::vector<std::string> routes_before = HttpRoutes(*published_);

  registry_.reset();
  published_.reset();
  Start(std::make_unique<DirectoryStore>(dir));
  EXPECT_THAT(problems_, IsEmpty());
  std::vector<std::string> names;
  for (const ServiceVersion& v : registry_->List()) {
    names.push_back(absl::StrCat(v.service, " v", v.version, " ", v.owner, " ", v.backend));
  }
  EXPECT_THAT(names, ElementsAre("lib.v1.Library v2 team-a books", "shop.v1.Shop v1 team-b echo"));
  ASSERT_NE(published_, nullptr);
  EXPECT_EQ(HttpRoutes(*published_), routes_before);
  EXPECT_EQ(registry_->Versions("gone.v1.Gone")->size(), 2u);
  EXPECT_EQ(registry_->Register(gone)->version.version, 3);
}

TEST_F(RegistryTest, RestartSkipsACorruptNewestFileAndServesThePreviousVersion) {
  const std::string dir = FreshDirectory("corrupt");
  Start(std::make_unique<DirectoryStore>(dir));
  ASSERT_TRUE(registry_->Register(Library()).ok());
  RegisterRequest replaced = Library("/v2/books/{id}");
  replaced.force = true;
  ASSERT_TRUE(registry_->Register(replaced).ok());
  registry_.reset();
  ASSERT_EQ(::truncate(absl::StrCat(dir, "/lib.v1.Library@2.version").c_str(), 30), 0);

  Start(std::make_unique<DirectoryStore>(dir));
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_THAT(problems_[0], HasSubstr("lib.v1.Library@2.version: truncated"));
  EXPECT_EQ(registry_->Get("lib.v1.Library")->version, 1);
  EXPECT_TRUE(published_->transcoder().Match("GET", "/v1/books/1").ok());
}

TEST_F(RegistryTest, StoredServiceThatNoLongerValidatesIsReportedAndNotServed) {
  const std::string dir = FreshDirectory("stale");
  {
    DirectoryStore store(dir);
    ASSERT_TRUE(store.Open().ok());
    ServiceVersion v;
    v.service = "lib.v1.Library";
    v.owner = "team-a";
    v.backend = "retired";
    v.version = 1;
    v.descriptor_set = SimpleServiceSet("lib.v1", "Library", "/v1/books/{id}");
    ASSERT_TRUE(store.Write(v).ok());
  }
  Start(std::make_unique<DirectoryStore>(dir));
  EXPECT_THAT(problems_, ElementsAre("service lib.v1.Library v1 is not served: service "
                                     "lib.v1.Library: unknown backend \"retired\""));
  EXPECT_THAT(registry_->List(), IsEmpty());
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
  EXPECT_EQ(registry_->Register(Library())->version.version, 2);
}

// --- Identical registrations and the history limit. ---

int CountFiles(const std::string& dir) {
  int n = 0;
  for (const char* suffix : {"@1", "@2", "@3", "@4", "@5", "@6", "@7", "@8"}) {
    n += ::access(absl::StrCat(dir, "/lib.v1.Library", suffix, ".version").c_str(), F_OK) == 0;
  }
  return n;
}

TEST_F(RegistryTest, IdenticalRegistrationIsANoOpThatSaysSo) {
  const std::string dir = FreshDirectory("identical");
  Start(std::make_unique<DirectoryStore>(dir));
  ASSERT_TRUE(registry_->Register(Library()).ok());
  const int publications = publications_;
  const std::shared_ptr<const RouteTable> table = published_;

  absl::StatusOr<ChangeResult> again = registry_->Register(Library());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->unchanged);
  EXPECT_EQ(again->version.version, 1);
  EXPECT_EQ(publications_, publications);  // no swap
  EXPECT_EQ(published_, table);
  EXPECT_EQ(registry_->Versions("lib.v1.Library")->size(), 1u);
  EXPECT_EQ(CountFiles(dir), 1);  // nothing written
  EXPECT_EQ(registry_->stats().registered, 1);

  // The same content with source info and the files in another order is the same set.
  google::protobuf::FileDescriptorSet set;
  ASSERT_TRUE(set.ParseFromString(Library().descriptor_set));
  std::reverse(set.mutable_file()->begin(), set.mutable_file()->end());
  set.mutable_file(0)->mutable_source_code_info()->add_location()->add_path(4);
  RegisterRequest reordered = Library();
  reordered.descriptor_set = set.SerializeAsString();
  ASSERT_NE(reordered.descriptor_set, Library().descriptor_set);
  EXPECT_TRUE(registry_->Register(reordered)->unchanged);

  // Another backend is a change.
  RegisterRequest moved = Library();
  moved.backend = "echo";
  absl::StatusOr<ChangeResult> changed = registry_->Register(moved);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(changed->unchanged);
  EXPECT_EQ(changed->version.version, 2);
  EXPECT_EQ(CountFiles(dir), 2);
}

TEST_F(RegistryTest, RegisteringAgainAfterARemovalIsAChange) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  ASSERT_TRUE(registry_->Remove("lib.v1.Library", "team-a", false).ok());
  absl::StatusOr<ChangeResult> again = registry_->Register(Library());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->unchanged);
  EXPECT_EQ(again->version.version, 3);
}

TEST_F(RegistryTest, HistoryKeepsTheNewestVersionsAndPrunesTheStore) {
  const std::string dir = FreshDirectory("history");
  Start(std::make_unique<DirectoryStore>(dir), RegistryOptions{3});
  for (int i = 1; i <= 6; ++i) {
    RegisterRequest r = Library(absl::StrCat("/v", i, "/books/{id}"));
    r.force = true;
    absl::StatusOr<ChangeResult> result = registry_->Register(r);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_THAT(result->warnings, IsEmpty());
  }
  std::vector<int64_t> kept;
  absl::StatusOr<std::vector<ServiceVersion>> versions = registry_->Versions("lib.v1.Library");
  ASSERT_TRUE(versions.ok()) << versions.status();
  for (const ServiceVersion& v : *versions) kept.push_back(v.version);
  EXPECT_THAT(kept, ElementsAre(4, 5, 6));
  EXPECT_EQ(CountFiles(dir), 3);
  EXPECT_EQ(::access(absl::StrCat(dir, "/lib.v1.Library@3.version").c_str(), F_OK), -1);

  EXPECT_EQ(registry_->Rollback("lib.v1.Library", 2, "team-a", false).status(),
            absl::NotFoundError("service lib.v1.Library version 2 was pruned from the history, "
                                "which keeps the newest 3 versions (now v4 to v6)"));
  absl::StatusOr<ChangeResult> back = registry_->Rollback("lib.v1.Library", 5, "team-a", false);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->version.version, 7);

  // A restart with a smaller limit keeps only the newest in memory.
  registry_.reset();
  Start(std::make_unique<DirectoryStore>(dir), RegistryOptions{2});
  EXPECT_THAT(problems_, IsEmpty());
  EXPECT_EQ(registry_->Versions("lib.v1.Library")->size(), 2u);
  EXPECT_EQ(registry_->Get("lib.v1.Library")->version, 7);
  EXPECT_TRUE(published_->transcoder().Match("GET", "/v5/books/1").ok());
}

// --- Routes overlapping another service's, and backends that do not serve the service. ---

TEST_F(RegistryTest, CatchAllRouteOverAnotherServiceIsRefusedUnlessForced) {
  RegisterRequest r = Library("/v1/{name=**}");
  EXPECT_EQ(RegisterStatus(r),
            absl::FailedPreconditionError(
                "new routes of lib.v1.Library overlap routes of another service (requests meant "
                "for one could reach the other; to accept them: gatewayctl --force, or "
                "\"force\": true in the admin API request):\n"
                "GET /v1/{name=**} -> lib.v1.Library.Get overlaps GET /v1/front/{id} -> "
                "config.v1.Front.Get (service config.v1.Front)"));
  EXPECT_EQ(registry_->Versions("lib.v1.Library").status().code(), absl::StatusCode::kNotFound);

  r.dry_run = true;
  absl::StatusOr<ChangeResult> dry = registry_->Register(r);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_THAT(dry->warnings, ElementsAre(HasSubstr("route overlap: GET /v1/{name=**}")));

  r.dry_run = false;
  r.force = true;
  absl::StatusOr<ChangeResult> forced = registry_->Register(r);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_THAT(forced->warnings,
              ElementsAre("route overlap: GET /v1/{name=**} -> lib.v1.Library.Get overlaps GET "
                          "/v1/front/{id} -> config.v1.Front.Get (service config.v1.Front)"));
  // The exact route still wins for the config's service.
  EXPECT_EQ(published_->transcoder().Match("GET", "/v1/front/7")->plan->method->full_name(),
            "config.v1.Front.Get");

  // A later version keeping the accepted overlap is not asked about again...
  RegisterRequest moved = Library("/v1/{name=**}");
  moved.backend = "echo";
  EXPECT_TRUE(registry_->Register(moved).ok());
  // ...and another service may not add a route under the catch-all.
  RegisterRequest shop;
  shop.service = "shop.v1.Shop";
  shop.owner = "team-b";
  shop.backend = "echo";
  shop.descriptor_set = SimpleServiceSet("shop.v1", "Shop", "/v1/shop/{id}");
  const absl::Status status = RegisterStatus(shop);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("GET /v1/shop/{id} -> shop.v1.Shop.Get overlaps GET /v1/{name=**} -> "
                        "lib.v1.Library.Get (service lib.v1.Library)"));
}

TEST_F(RegistryTest, RoutesUnderOtherPrefixesDoNotOverlap) {
  absl::StatusOr<ChangeResult> result = registry_->Register(Library("/v1/books/{id}"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings, IsEmpty());
}

TEST_F(RegistryTest, BackendThatDoesNotServeTheServiceIsRefusedUnlessForced) {
  int checks = 0;
  RegistryOptions options;
  options.check_backend = [&checks](const Backend& backend, const std::string& service) {
    ++checks;
    ServiceCheck check;
    if (backend.name() == "books") {
      check.verdict = ServiceCheck::kNotServed;
      check.detail = "its server reflection lists: other.v1.Other";
    } else {
      check.detail = "it serves neither server reflection nor grpc.health.v1";
    }
    return check;
  };
  Start(nullptr, options);
  EXPECT_EQ(RegisterStatus(Library()),
            absl::FailedPreconditionError(
                "backend \"books\" does not serve lib.v1.Library (its server reflection lists: "
                "other.v1.Other); register it with the backend that serves it, or force it "
                "(gatewayctl --force, or \"force\": true in the admin API request)"));
  EXPECT_EQ(checks, 1);
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);

  RegisterRequest forced = Library();
  forced.force = true;
  absl::StatusOr<ChangeResult> result = registry_->Register(forced);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings,
              ElementsAre("backend \"books\" does not serve lib.v1.Library (its server "
                          "reflection lists: other.v1.Other)"));

  RegisterRequest unknown = Library();
  unknown.backend = "echo";
  result = registry_->Register(unknown);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings,
              ElementsAre("backend \"echo\" could not be asked whether it serves lib.v1.Library: "
                          "it serves neither server reflection nor grpc.health.v1"));
}

// --- Rebase: a reloaded gateway config under the registered services. ---

TEST_F(RegistryTest, RebaseServesTheNewConfigWithTheRegisteredServices) {
  ASSERT_TRUE(registry_->Register(Library()).ok());
  BaseRoutes next = Base();
  next.descriptor_sets.push_back(
      {SimpleServiceSet("extra.v1", "Extra", "/v1/extra/{id}"), "extra.pb"});
  next.backends["extra"] = MakeBackend("extra");
  next.services.push_back({"extra.v1.Extra", next.backends["extra"]});
  DescriptorSetBuilder builder;
  ASSERT_TRUE(builder.AddSerialized(next.descriptor_sets[0].bytes, "front.pb").ok());
  ASSERT_TRUE(builder.AddSerialized(next.descriptor_sets[1].bytes, "extra.pb").ok());
  next.pool = *builder.Build();
  const int before = publications_;
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(std::move(next), &problems).ok());
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(publications_, before + 1);
  ASSERT_NE(published_->Find("/extra.v1.Extra/Get"), nullptr);
  EXPECT_EQ(published_->Find("/extra.v1.Extra/Get")->backend->name(), "extra");
  EXPECT_NE(published_->Find("/lib.v1.Library/Get"), nullptr);
  // The new backends are the ones registrations are checked against.
  RegisterRequest r = Library();
  r.backend = "extra";
  EXPECT_TRUE(registry_->Register(r).ok());
}

TEST_F(RegistryTest, RebaseLeavesOutARegisteredServiceWhoseBackendLeft) {
  ASSERT_TRUE(registry_->Register(Library()).ok());  // on "books"
  BaseRoutes next = Base();
  next.backends.erase("books");
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(std::move(next), &problems).ok());
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
  EXPECT_NE(published_->Find("/config.v1.Front/Get"), nullptr);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(absl::StrContains(problems[0], "service lib.v1.Library v1 is not served"))
      << problems[0];
}

// --- A backend the registration defines (backend_config). ---

config::v1::Backend OwnBackend(const std::string& name, const std::string& target) {
  config::v1::Backend b;
  b.set_name(name);
  b.set_target(target);
  return b;
}

const Route* RouteOf(const RouteTable& table, const std::string& path) { return table.Find(path); }

TEST_F(RegistryTest, OwnBackendServesTheServiceNamedAfterItByDefault) {
  RegisterRequest r = Library();
  r.backend.clear();
  r.backend_config = OwnBackend("", "dns:///127.0.0.1:7001");
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->version.backend, "lib.v1.Library");
  ASSERT_TRUE(result->version.backend_config.has_value());
  const Route* route = RouteOf(*published_, "/lib.v1.Library/Get");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->backend->name(), "lib.v1.Library");
  EXPECT_EQ(route->backend->target(), "dns:///127.0.0.1:7001");
}

TEST_F(RegistryTest, OwnBackendIsValidatedAsAConfigEntry) {
  RegisterRequest r = Library();
  r.backend.clear();
  r.backend_config = OwnBackend("lib", "");
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "backend_config.target: required (e.g. dns:///127.0.0.1:50051 or unix:/path)"));
  r.backend_config = OwnBackend("lib", "http://x:1");
  EXPECT_THAT(std::string(RegisterStatus(r).message()),
              HasSubstr("backend_config.target: \"http://x:1\": unsupported scheme"));
  r.backend_config = OwnBackend("lib", "dns:///127.0.0.1:7001");
  r.backend = "other";
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError("backend: \"other\" differs from backend_config.name "
                                       "\"lib\" (with backend_config, leave backend empty)"));
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
}

TEST_F(RegistryTest, OwnBackendNamedLikeAConfigBackendOrAnotherServicesIsRefused) {
  RegisterRequest r = Library();
  r.backend.clear();
  r.backend_config = OwnBackend("books", "dns:///127.0.0.1:7001");
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "backend_config.name: \"books\" is a backend of the gateway config (name the "
                "service's own backend differently, or name the config's with `backend` "
                "alone)"));
  r.backend_config = OwnBackend("shared", "dns:///127.0.0.1:7001");
  ASSERT_TRUE(registry_->Register(r).ok());
  RegisterRequest other;
  other.service = "news.v1.News";
  other.owner = "team-b";
  other.descriptor_set = SimpleServiceSet("news.v1", "News", "/v1/news/{id}");
  other.backend_config = OwnBackend("shared", "dns:///127.0.0.1:7002");
  EXPECT_EQ(RegisterStatus(other),
            absl::InvalidArgumentError("service news.v1.News: backend_config.name: \"shared\" "
                                       "is already the backend of service lib.v1.Library"));
}

TEST_F(RegistryTest, TeamTokenMayNotNameFilesForItsOwnBackend) {
  RegisterRequest r = Library();
  r.backend.clear();
  r.restricted = true;
  r.allowed_packages = {"lib"};
  r.allowed_path_prefixes = {"/v1/books"};
  r.backend_config = OwnBackend("lib", "dns:///127.0.0.1:7001");
  r.backend_config->mutable_tls()->set_ca_file("/etc/shadow");
  EXPECT_EQ(RegisterStatus(r),
            absl::PermissionDeniedError(
                "backend_config.tls.ca_file: a team token may not name files on the gateway's "
                "host (ask the platform team for a backend of the gateway config)"));
  r.backend_config->mutable_tls()->clear_ca_file();
  r.backend_config->mutable_tls()->set_server_name("lib.internal");
  EXPECT_TRUE(registry_->Register(r).ok());
}

TEST_F(RegistryTest, OwnBackendIsKeptWhileUnchangedAndDroppedByRemove) {
  RegisterRequest r = Library();
  r.backend.clear();
  r.backend_config = OwnBackend("lib", "dns:///127.0.0.1:7001");
  ASSERT_TRUE(registry_->Register(r).ok());
  Backend* first = published_->Find("/lib.v1.Library/Get")->backend;
  std::weak_ptr<Backend> first_alive = published_->services().back().backend;
  // A new descriptor set, the same backend definition: the same running Backend.
  r.descriptor_set = SimpleServiceSet("lib.v1", "Library", "/v1/volumes/{id}");
  r.force = true;
  absl::StatusOr<ChangeResult> second = registry_->Register(r);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get")->backend, first);
  // Identical request: unchanged; a changed definition is a new version with a new Backend.
  EXPECT_TRUE(registry_->Register(r)->unchanged);
  r.backend_config->set_target("dns:///127.0.0.1:7002");
  absl::StatusOr<ChangeResult> third = registry_->Register(r);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->unchanged);
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get")->backend->target(), "dns:///127.0.0.1:7002");
  EXPECT_TRUE(first_alive.expired()) << "the replaced backend is still held";
  // Rollback restores the earlier definition; remove drops it.
  ASSERT_TRUE(registry_->Rollback("lib.v1.Library", 2, "team-a", false).ok());
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get")->backend->target(), "dns:///127.0.0.1:7001");
  std::weak_ptr<Backend> rolled_back;
  for (const ServiceBinding& b : published_->services()) {
    if (b.service == "lib.v1.Library") rolled_back = b.backend;
  }
  ASSERT_TRUE(registry_->Remove("lib.v1.Library", "team-a", false).ok());
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
  EXPECT_TRUE(rolled_back.expired()) << "the removed service's backend is still held";
}

TEST_F(RegistryTest, OwnBackendSurvivesARestartThroughTheDirectoryStore) {
  const std::string dir = FreshDirectory("own-backend");
  Start(std::make_unique<DirectoryStore>(dir));
  RegisterRequest r = Library();
  r.backend.clear();
  r.backend_config = OwnBackend("lib", "dns:///127.0.0.1:7001");
  r.backend_config->mutable_connect_timeout()->set_seconds(3);
  ASSERT_TRUE(registry_->Register(r).ok());
  registry_.reset();
  published_.reset();
  Start(std::make_unique<DirectoryStore>(dir));
  EXPECT_THAT(problems_, IsEmpty());
  const Route* route = published_->Find("/lib.v1.Library/Get");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->backend->name(), "lib");
  EXPECT_EQ(route->backend->target(), "dns:///127.0.0.1:7001");
  absl::StatusOr<ServiceVersion> v = registry_->Get("lib.v1.Library");
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(v->backend_config.has_value());
  EXPECT_EQ(v->backend_config->connect_timeout().seconds(), 3);
  // The same definition again: nothing changes.
  EXPECT_TRUE(registry_->Register(r)->unchanged);
}

TEST_F(RegistryTest, BackendCheckAsksTheOwnBackend) {
  std::vector<std::string> asked;
  RegistryOptions options;
  options.check_backend = [&asked](const Backend& backend, const std::string& service) {
    asked.push_back(absl::StrCat(backend.name(), " ", backend.target(), " ", service));
    return ServiceCheck{ServiceCheck::kNotServed, "it lists only x.Y"};
  };
  Start(nullptr, options);
  RegisterRequest r = Library();
  r.backend.clear();
  r.backend_config = OwnBackend("lib", "dns:///127.0.0.1:7001");
  EXPECT_EQ(RegisterStatus(r).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(asked, ElementsAre("lib dns:///127.0.0.1:7001 lib.v1.Library"));
  EXPECT_THAT(std::string(RegisterStatus(r).message()),
              HasSubstr("backend \"lib\" does not serve lib.v1.Library (it lists only x.Y)"));
}

// --- Rules a registration carries for its own methods. ---

TEST_F(RegistryTest, OwnRulesRunAfterTheConfigChainForItsMethodsAndAreStored) {
  const std::string dir = FreshDirectory("own-rules");
  Start(std::make_unique<DirectoryStore>(dir));
  RegisterRequest r = Library();
  r.deadlines.add_rules()->mutable_default_timeout()->set_seconds(2);
  r.retries.add_rules()->set_max_attempts(4);
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->changes.settings_changes,
              ElementsAre("deadlines: none -> rules { selectors: \"lib.v1.Library.*\" "
                          "default_timeout { seconds: 2 } }",
                          "retries: none -> rules { selectors: \"lib.v1.Library.*\" "
                          "max_attempts: 4 }"));
  const Route* route = published_->Find("/lib.v1.Library/Get");
  ASSERT_NE(route, nullptr);
  ASSERT_EQ(published_->chain().size(), 1u);  // the config has none; the service's rules
  ASSERT_EQ(route->rules.rules.size(), 1u);
  EXPECT_NE(route->rules.rules[0], nullptr);
  const Route* front = published_->Find("/config.v1.Front/Get");
  ASSERT_NE(front, nullptr);
  EXPECT_EQ(front->rules.rules[0], nullptr) << "the config's service got a registered rule";

  // Stored with the version: a restart serves the same rules; the same request is unchanged.
  registry_.reset();
  Start(std::make_unique<DirectoryStore>(dir));
  absl::StatusOr<ServiceVersion> v = registry_->Get("lib.v1.Library");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->deadlines.rules(0).default_timeout().seconds(), 2);
  EXPECT_EQ(v->retries.rules(0).max_attempts(), 4u);
  EXPECT_EQ(published_->chain().size(), 1u);
  EXPECT_TRUE(registry_->Register(r)->unchanged);
  // Without the rules: a new version, and the table runs no extra interceptor.
  r.deadlines.Clear();
  r.retries.Clear();
  ASSERT_TRUE(registry_->Register(r).ok());
  EXPECT_EQ(published_->chain().size(), 0u);
}

TEST_F(RegistryTest, OwnRuleForAnotherServicesMethodIsRefused) {
  RegisterRequest r = Library();
  r.deadlines.add_rules()->add_selectors("config.v1.Front.*");
  r.deadlines.mutable_rules(0)->mutable_max_timeout()->set_seconds(100);
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "deadlines.rules[0].selectors[0]: \"config.v1.Front.*\" is not a method of "
                "lib.v1.Library (a registration's rules apply to its own methods only: "
                "lib.v1.Library.* or lib.v1.Library.METHOD)"));
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
}

TEST_F(RegistryTest, OnlyTheOwnerMaySetABackendOrRulesForItsService) {
  RegisterRequest r = Library();
  r.restricted = true;
  r.allowed_packages = {"lib"};
  r.allowed_path_prefixes = {"/v1/books"};
  ASSERT_TRUE(registry_->Register(r).ok());
  // Another team (its token's owner), even with the package among its own: refused, and the
  // service keeps its backend and rules.
  RegisterRequest other = r;
  other.owner = "team-b";
  other.backend.clear();
  other.backend_config = OwnBackend("", "dns:///127.0.0.1:7009");
  other.deadlines.add_rules()->mutable_max_timeout()->set_seconds(1);
  EXPECT_EQ(RegisterStatus(other),
            absl::PermissionDeniedError(
                "service lib.v1.Library is owned by \"team-a\", not \"team-b\""));
  other.backend_config.reset();
  other.backend = "books";
  EXPECT_EQ(RegisterStatus(other).code(), absl::StatusCode::kPermissionDenied);
  // A token outside the service's package: refused before anything else.
  RegisterRequest outside = r;
  outside.allowed_packages = {"news"};
  outside.backend.clear();
  outside.backend_config = OwnBackend("", "dns:///127.0.0.1:7009");
  EXPECT_EQ(RegisterStatus(outside).code(), absl::StatusCode::kPermissionDenied);
  absl::StatusOr<ServiceVersion> v = registry_->Get("lib.v1.Library");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->version, 1);
  EXPECT_EQ(v->backend, "books");
  EXPECT_FALSE(v->backend_config.has_value());
  EXPECT_EQ(v->deadlines.rules_size(), 0);
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get")->backend->name(), "books");
}

// --- Auth and quota rules a registration carries for its own methods. ---

// Runs the chain of `table` for a call of `path` (which the table serves) and returns its
// outcome.
absl::Status CallThrough(const RouteTable& table, const std::string& path,
                         const std::vector<std::pair<std::string, std::string>>& metadata = {}) {
  const Route* route = table.Find(path);
  if (route == nullptr) return absl::NotFoundError(absl::StrCat(path, " is not served"));
  CallContext ctx;
  ctx.method = route->method;
  ctx.rules = &route->rules;
  ctx.path = path;
  ctx.peer_address = "ipv4:127.0.0.1:5000";
  for (const auto& [key, value] : metadata) ctx.request_metadata.emplace_back(key, value);
  absl::Status outcome = absl::InternalError("the chain did not finish");
  table.chain().Run(&ctx, [&outcome](CallContext*, absl::Status s) { outcome = std::move(s); });
  return outcome;
}

config::v1::Quotas GlobalQuota(const std::string& name, int requests) {
  config::v1::Quotas q;
  config::v1::QuotaRule* rule = q.add_rules();
  rule->set_name(name);
  rule->set_requests(requests);
  rule->mutable_per()->set_seconds(3600);
  rule->set_key(config::v1::QuotaRule::GLOBAL);
  return q;
}

TEST_F(RegistryTest, OwnQuotaCountsAcrossOtherChangesAndIdenticalReappliesUntilARebase) {
  RegisterRequest r = Library();
  r.quotas = GlobalQuota("two", 2);
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->changes.settings_changes,
              ElementsAre("quotas: none -> rules { name: \"two\" selectors: "
                          "\"lib.v1.Library.*\" key: GLOBAL requests: 2 per { seconds: 3600 } }"));
  EXPECT_TRUE(CallThrough(*published_, "/lib.v1.Library/Get").ok());
  EXPECT_TRUE(CallThrough(*published_, "/lib.v1.Library/Get").ok());
  absl::Status third = CallThrough(*published_, "/lib.v1.Library/Get");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  EXPECT_THAT(third.message(), HasSubstr("quota \"lib.v1.Library/two\" exceeded (2 calls per 1h"));
  // The config's service is not limited by it.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(CallThrough(*published_, "/config.v1.Front/Get").ok());

  // Another service registered, then the same request again (unchanged): still counted.
  RegisterRequest news;
  news.service = "news.v1.News";
  news.owner = "team-b";
  news.backend = "echo";
  news.descriptor_set = SimpleServiceSet("news.v1", "News", "/v1/news/{id}");
  ASSERT_TRUE(registry_->Register(news).ok());
  EXPECT_EQ(CallThrough(*published_, "/lib.v1.Library/Get").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(registry_->Register(r)->unchanged);
  ASSERT_TRUE(registry_->Remove("news.v1.News", "team-b", false).ok());
  EXPECT_EQ(CallThrough(*published_, "/lib.v1.Library/Get").code(),
            absl::StatusCode::kResourceExhausted);
  // A new descriptor version with the same rules keeps the count too.
  r.descriptor_set = SimpleServiceSet("lib.v1", "Library", "/v1/library/{id}");
  r.force = true;  // a moved route
  ASSERT_TRUE(registry_->Register(r).ok());
  EXPECT_EQ(CallThrough(*published_, "/lib.v1.Library/Get").code(),
            absl::StatusCode::kResourceExhausted);

  // A config reload (Rebase) starts the counters again, as it does the config's own.
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(Base(), &problems).ok());
  EXPECT_TRUE(CallThrough(*published_, "/lib.v1.Library/Get").ok());
  // Changed rules count from zero.
  r.quotas = GlobalQuota("one", 1);
  ASSERT_TRUE(registry_->Register(r).ok());
  EXPECT_TRUE(CallThrough(*published_, "/lib.v1.Library/Get").ok());
  EXPECT_THAT(CallThrough(*published_, "/lib.v1.Library/Get").message(),
              HasSubstr("quota \"lib.v1.Library/one\" exceeded"));
}

TEST_F(RegistryTest, ConfigQuotaStricterThanTheServicesStillRejectsFirst) {
  BaseRoutes base = Base();
  config::v1::Quotas gateway = GlobalQuota("gateway-one", 1);
  gateway.mutable_rules(0)->add_selectors("lib.v1.Library.*");
  absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> config_quotas =
      QuotaInterceptor::Create(gateway, *base.pool, {}, RealClock(), SelectorCheck::kOpen);
  ASSERT_TRUE(config_quotas.ok()) << config_quotas.status();
  base.chain = std::make_shared<const InterceptorChain>(
      std::vector<std::shared_ptr<const Interceptor>>{*config_quotas});
  base.quotas = gateway;
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(std::move(base), &problems).ok());
  RegisterRequest r = Library();
  r.quotas = GlobalQuota("five", 5);
  ASSERT_TRUE(registry_->Register(r).ok());
  ASSERT_EQ(published_->chain().size(), 2u);
  EXPECT_EQ(published_->chain().interceptors()[0]->name(), "quota");
  EXPECT_EQ(published_->chain().interceptors()[1]->name(), "service_quotas");
  EXPECT_TRUE(CallThrough(*published_, "/lib.v1.Library/Get").ok());
  EXPECT_THAT(CallThrough(*published_, "/lib.v1.Library/Get").message(),
              HasSubstr("quota \"gateway-one\" exceeded"));
}

TEST_F(RegistryTest, OwnQuotaGatewayWideKeysAndSharedRulesWithoutAStoreAreRefused) {
  RegisterRequest r = Library();
  r.quotas = GlobalQuota("two", 2);
  r.quotas.mutable_rules(0)->set_shared(true);
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "quotas.rules[0].shared: the gateway config has no shared quota store "
                "(quotas.redis.address); a registration's rules can only be local then"));
  r.quotas.mutable_rules(0)->set_shared(false);
  r.quotas.mutable_redis()->set_address("127.0.0.1:6379");
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError("quotas.redis: gateway-wide, set in the gateway config "
                                       "only (a registration sets rules only)"));
  r.quotas = GlobalQuota("two", 2);
  r.quotas.mutable_rules(0)->add_selectors("config.v1.Front.Get");
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "quotas.rules[0].selectors[0]: \"config.v1.Front.Get\" is not a method of "
                "lib.v1.Library (a registration's rules apply to its own methods only: "
                "lib.v1.Library.* or lib.v1.Library.METHOD)"));
  r.quotas = GlobalQuota("", 2);
  EXPECT_EQ(RegisterStatus(r), absl::InvalidArgumentError("quotas.rules[0].name: required"));
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
}

// The gateway config: API keys (one key, "team" = "s3cret-team-key"), and, with
// `front_rule`, one rule opening config.v1.Front only (so other methods are closed).
BaseRoutes BaseWithApiKeys(bool front_rule) {
  BaseRoutes base = Base();
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string keys = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/registry-keys-",
                                        ::getpid());
  std::ofstream(keys) << "team d9893e9880e78c0f99a71c00da5812ae4c914593acbf8893fc1e73c010e6dc9a\n";
  config::v1::Auth auth;
  auth.mutable_api_keys()->set_keys_file(keys);
  if (front_rule) {
    config::v1::AuthRule* rule = auth.add_rules();
    rule->add_selectors("config.v1.Front.*");
    rule->set_allow_unauthenticated(true);
  }
  absl::StatusOr<std::shared_ptr<const AuthInterceptor>> interceptor =
      AuthInterceptor::Create(auth, "", *base.pool, {}, SelectorCheck::kOpen);
  EXPECT_TRUE(interceptor.ok()) << interceptor.status();
  base.chain = std::make_shared<const InterceptorChain>(
      std::vector<std::shared_ptr<const Interceptor>>{*interceptor});
  return base;
}

TEST_F(RegistryTest, OwnAuthRuleRequiresTheGatewaysApiKeyOnItsMethodsOnly) {
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(BaseWithApiKeys(false), &problems).ok());
  RegisterRequest r = Library();
  r.auth.add_rules()->add_providers("api_key");
  absl::StatusOr<ChangeResult> result = registry_->Register(r);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->changes.settings_changes,
              ElementsAre("auth: none -> rules { selectors: \"lib.v1.Library.*\" providers: "
                          "\"api_key\" }"));
  ASSERT_EQ(published_->chain().size(), 2u);
  EXPECT_EQ(CallThrough(*published_, "/lib.v1.Library/Get"),
            absl::UnauthenticatedError(
                "missing credentials: /lib.v1.Library/Get needs an API key (header x-api-key)"));
  EXPECT_TRUE(CallThrough(*published_, "/lib.v1.Library/Get", {{"x-api-key", "s3cret-team-key"}})
                  .ok());
  EXPECT_EQ(
      CallThrough(*published_, "/lib.v1.Library/Get", {{"x-api-key", "wrong"}}).code(),
      absl::StatusCode::kUnauthenticated);
  // The config's service stays open: the rule applies to the registration's methods only.
  EXPECT_TRUE(CallThrough(*published_, "/config.v1.Front/Get").ok());
  // Stored with the version.
  absl::StatusOr<ServiceVersion> v = registry_->Get("lib.v1.Library");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->auth.rules(0).providers(0), "api_key");
}

TEST_F(RegistryTest, OwnAuthRuleNeverOpensWhatTheConfigCloses) {
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(BaseWithApiKeys(true), &problems).ok());
  RegisterRequest r = Library();
  r.auth.add_rules()->set_allow_unauthenticated(true);
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "auth.rules[0].allow_unauthenticated: these rules only add requirements "
                "(whether a method is open is decided by the gateway config's auth rules)"));
  // A valid rule: the config (no rule for lib.v1.Library) still refuses the call first.
  r.auth.mutable_rules(0)->set_allow_unauthenticated(false);
  r.auth.mutable_rules(0)->add_providers("api_key");
  ASSERT_TRUE(registry_->Register(r).ok());
  EXPECT_EQ(CallThrough(*published_, "/lib.v1.Library/Get", {{"x-api-key", "s3cret-team-key"}})
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(RegistryTest, OwnAuthRuleMayNotDefineProvidersOrNameUnknownOnes) {
  std::vector<std::string> problems;
  ASSERT_TRUE(registry_->Rebase(BaseWithApiKeys(false), &problems).ok());
  RegisterRequest r = Library();
  config::v1::JwtProvider* jwt = r.auth.add_jwt_providers();
  jwt->set_name("mine");
  jwt->set_jwks_uri("https://idp.example/jwks");
  r.auth.add_rules()->add_providers("mine");
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "auth.jwt_providers: gateway-owned: a registration cannot define JWT "
                "providers, JWKS files or URLs (its auth rules name the gateway config's "
                "providers in auth.rules[].providers)"));
  r.auth.clear_jwt_providers();
  EXPECT_EQ(RegisterStatus(r),
            absl::InvalidArgumentError(
                "auth.rules[0].providers[0]: unknown provider \"mine\" (known: api_key)"));
  r.auth.mutable_api_keys()->set_keys_file("/etc/passwd");
  EXPECT_EQ(RegisterStatus(r).message(),
            "auth.api_keys: gateway-owned: a registration cannot define API keys or key files "
            "(its auth rules accept the gateway config's keys with providers: [api_key])");
  r.auth.clear_api_keys();
  r.auth.mutable_rules(0)->set_providers(0, "api_key");
  r.auth.mutable_rules(0)->add_selectors("config.v1.Front.*");
  EXPECT_EQ(RegisterStatus(r).message(),
            "auth.rules[0].selectors[0]: \"config.v1.Front.*\" is not a method of "
            "lib.v1.Library (a registration's rules apply to its own methods only: "
            "lib.v1.Library.* or lib.v1.Library.METHOD)");
  EXPECT_EQ(published_->Find("/lib.v1.Library/Get"), nullptr);
}

}  // namespace
}  // namespace gateway::registry
