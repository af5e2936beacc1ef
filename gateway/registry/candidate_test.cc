#include "gateway/registry/candidate.h"

#include <string>

#include "gtest/gtest.h"
#include "transcoder/http_template.h"

namespace gateway::registry {
namespace {

bool Overlap(const std::string& a, const std::string& b) {
  absl::StatusOr<transcoder::HttpTemplate> ta = transcoder::ParseHttpTemplate(a);
  absl::StatusOr<transcoder::HttpTemplate> tb = transcoder::ParseHttpTemplate(b);
  EXPECT_TRUE(ta.ok()) << a << ": " << ta.status();
  EXPECT_TRUE(tb.ok()) << b << ": " << tb.status();
  if (!ta.ok() || !tb.ok()) return false;
  const bool forward = TemplatesOverlap(*ta, *tb);
  EXPECT_EQ(forward, TemplatesOverlap(*tb, *ta)) << a << " / " << b << " is not symmetric";
  return forward;
}

TEST(TemplatesOverlap, CatchAllOverlapsEveryPathBelowIt) {
  EXPECT_TRUE(Overlap("/v1/{name=**}", "/v1/shelves/{shelf}"));
  EXPECT_TRUE(Overlap("/v1/{name=**}", "/v1/shelves"));
  EXPECT_TRUE(Overlap("/v1/{name=**}", "/v1"));  // "**" matches zero segments too
  EXPECT_TRUE(Overlap("/{path=**}", "/admin/v1/services/{service}"));
  EXPECT_FALSE(Overlap("/v1/{name=**}", "/v2/shelves"));
}

TEST(TemplatesOverlap, SingleWildcardsMatchOneSegment) {
  EXPECT_TRUE(Overlap("/v1/*", "/v1/shelves"));
  EXPECT_TRUE(Overlap("/v1/{a}/books", "/v1/{b}/books"));
  EXPECT_TRUE(Overlap("/v1/{a}/books", "/v1/shelves/{b}"));
  EXPECT_FALSE(Overlap("/v1/*", "/v1/shelves/{shelf}"));
  EXPECT_FALSE(Overlap("/v1/{a}/books", "/v1/{b}/authors"));
  EXPECT_FALSE(Overlap("/v1/shelves/{shelf}/books", "/v1/shelves/{shelf}"));
}

TEST(TemplatesOverlap, DifferentLiteralsNeverOverlap) {
  EXPECT_FALSE(Overlap("/v1/echo", "/v1/shelves"));
  EXPECT_TRUE(Overlap("/v1/echo", "/v1/echo"));
}

TEST(TemplatesOverlap, VerbsMustAgreeUnlessAWildcardTakesTheWholeLastSegment) {
  EXPECT_TRUE(Overlap("/v1/{name}:publish", "/v1/{id}:publish"));
  EXPECT_FALSE(Overlap("/v1/{name}:publish", "/v1/{id}:archive"));
  // "/v1/*" also matches "/v1/x:publish" (retried without the verb).
  EXPECT_TRUE(Overlap("/v1/*", "/v1/{name}:publish"));
  EXPECT_FALSE(Overlap("/v1/shelves", "/v1/{name}:publish"));
}

TEST(RegisteredBackends, ARegistrationsBackendDoesNotHoldReadinessBackUnlessItAsks) {
  RegisteredBackends backends;
  config::v1::Backend config;
  config.set_name("pay.v1.Pay");
  config.set_target("ipv4:127.0.0.1:1");
  absl::StatusOr<std::shared_ptr<Backend>> own =
      backends.Get(config, config::v1::Limits(), "", "backend_config");
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_FALSE((*own)->required());
  // The same definition keeps the running backend.
  EXPECT_EQ(*backends.Get(config, config::v1::Limits(), "", "backend_config"), *own);
  config.set_required(true);
  absl::StatusOr<std::shared_ptr<Backend>> required =
      backends.Get(config, config::v1::Limits(), "", "backend_config");
  ASSERT_TRUE(required.ok()) << required.status();
  EXPECT_TRUE((*required)->required());
  EXPECT_TRUE(AsRegisteredBackend(config).required());
  config.clear_required();
  EXPECT_TRUE(AsRegisteredBackend(config).has_required());
  EXPECT_FALSE(AsRegisteredBackend(config).required());
}

}  // namespace
}  // namespace gateway::registry
