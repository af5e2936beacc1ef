#include "gateway/registry/service_rules.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/descriptor_sets.h"
#include "gateway/registry/test_descriptors.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

class FixedClock : public Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::FromUnixSeconds(1700000000);
};

// One file, no imports: services lib.v1.Library and news.v1.News, each with method Get.
std::string ServiceFile(const std::string& package, const std::string& service) {
  return testing::DescriptorSetOf(
      {testing::FileFromText(absl::StrCat(
          "name: \"", package, ".proto\" package: \"", package, "\" syntax: \"proto3\" ",
          "message_type { name: \"Req\" } service { name: \"", service,
          "\" method { name: \"Get\" input_type: \".", package, ".Req\" output_type: \".",
          package, ".Req\" } }"))},
      /*with_imports=*/false);
}

std::shared_ptr<const google::protobuf::DescriptorPool> LibraryPool() {
  DescriptorSetBuilder builder;
  EXPECT_TRUE(builder.AddSerialized(ServiceFile("lib.v1", "Library"), "lib.pb").ok());
  EXPECT_TRUE(builder.AddSerialized(ServiceFile("news.v1", "News"), "news.pb").ok());
  return *builder.Build();
}

config::v1::Deadlines Deadlines(const std::string& selector, int default_ms, int max_ms) {
  config::v1::Deadlines d;
  config::v1::DeadlineRule* rule = d.add_rules();
  if (!selector.empty()) rule->add_selectors(selector);
  if (default_ms > 0) rule->mutable_default_timeout()->set_nanos(default_ms * 1000000);
  if (max_ms > 0) rule->mutable_max_timeout()->set_nanos(max_ms * 1000000);
  return d;
}

TEST(ServiceRules, RuleWithoutSelectorsCoversTheWholeService) {
  config::v1::Deadlines d = Deadlines("", 200, 0);
  config::v1::Retries r;
  r.add_rules()->set_max_attempts(3);
  DefaultSelectors("lib.v1.Library", &d, &r);
  EXPECT_EQ(d.rules(0).selectors(0), "lib.v1.Library.*");
  EXPECT_EQ(r.rules(0).selectors(0), "lib.v1.Library.*");
  EXPECT_TRUE(CheckServiceRules("lib.v1.Library", d, r, *LibraryPool()).ok());
}

TEST(ServiceRules, SelectorOutsideTheServiceIsRefusedNamingIt) {
  auto pool = LibraryPool();
  for (const std::string selector : {"news.v1.News.*", "lib.v1.*", "*", "lib.v1.Library.Nope",
                                     "lib.v1.LibraryX.*"}) {
    EXPECT_EQ(CheckServiceRules("lib.v1.Library", Deadlines(selector, 200, 0),
                                config::v1::Retries(), *pool),
              absl::InvalidArgumentError(absl::StrCat(
                  "deadlines.rules[0].selectors[0]: \"", selector,
                  "\" is not a method of lib.v1.Library (a registration's rules apply to its "
                  "own methods only: lib.v1.Library.* or lib.v1.Library.METHOD)")))
        << selector;
  }
  config::v1::Retries r;
  r.add_rules()->add_selectors("lib.v1.Library.Get");
  r.add_rules()->add_selectors("news.v1.News.Get");
  r.mutable_rules(0)->set_max_attempts(2);
  r.mutable_rules(1)->set_max_attempts(2);
  EXPECT_EQ(CheckServiceRules("lib.v1.Library", config::v1::Deadlines(), r, *pool).message(),
            "retries.rules[1].selectors[0]: \"news.v1.News.Get\" is not a method of "
            "lib.v1.Library (a registration's rules apply to its own methods only: "
            "lib.v1.Library.* or lib.v1.Library.METHOD)");
}

TEST(ServiceRules, GatewayWideKeysAndInvalidValuesAreRefusedByTheConfigsValidator) {
  auto pool = LibraryPool();
  config::v1::Deadlines d = Deadlines("lib.v1.Library.Get", 200, 0);
  d.set_http_timeout_header("x-timeout");
  EXPECT_EQ(CheckServiceRules("lib.v1.Library", d, config::v1::Retries(), *pool),
            absl::InvalidArgumentError("deadlines.http_timeout_header: gateway-wide, set in the "
                                       "gateway config only (a registration sets rules only)"));
  config::v1::Retries r;
  r.set_budget_percent(50);
  EXPECT_EQ(CheckServiceRules("lib.v1.Library", config::v1::Deadlines(), r, *pool).message(),
            "retries.budget_percent: gateway-wide, set in the gateway config only (a "
            "registration sets rules only)");
  config::v1::Retries too_many;
  too_many.add_rules()->add_selectors("lib.v1.Library.*");
  too_many.mutable_rules(0)->set_max_attempts(50);
  absl::Status status =
      CheckServiceRules("lib.v1.Library", config::v1::Deadlines(), too_many, *pool);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message().substr(0, 29), "retries.rules[0].max_attempts") << status;
  config::v1::Deadlines zero;
  zero.add_rules()->add_selectors("lib.v1.Library.*");
  zero.mutable_rules(0)->mutable_max_timeout()->set_seconds(0);
  zero.mutable_rules(0)->mutable_max_timeout()->set_nanos(0);
  EXPECT_EQ(CheckServiceRules("lib.v1.Library", zero, config::v1::Retries(), *pool),
            absl::InvalidArgumentError("deadlines.rules[0].max_timeout: must be positive"));
}

TEST(ServiceRules, InterceptorShortensTheDeadlineAndSetsTheRetryOfItsMethodsOnly) {
  auto pool = LibraryPool();
  auto clock = std::make_shared<FixedClock>();
  config::v1::Deadlines d = Deadlines("lib.v1.Library.*", 200, 1000);
  config::v1::Retries r;
  r.add_rules()->add_selectors("lib.v1.Library.Get");
  r.mutable_rules(0)->set_max_attempts(3);
  absl::StatusOr<std::shared_ptr<const Interceptor>> interceptor =
      BuildServiceRules({{"lib.v1.Library", &d, &r}}, *pool, clock);
  ASSERT_TRUE(interceptor.ok()) << interceptor.status();
  ASSERT_NE(*interceptor, nullptr);
  InterceptorChain chain({*interceptor});
  const auto* get = pool->FindMethodByName("lib.v1.Library.Get");
  const auto* other = pool->FindMethodByName("news.v1.News.Get");
  ASSERT_NE(get, nullptr);
  ASSERT_NE(other, nullptr);
  EXPECT_EQ((*interceptor)->Resolve(*other), nullptr);

  auto run = [&](const google::protobuf::MethodDescriptor* method, absl::Time client_deadline,
                 absl::Time backend_deadline) {
    std::unique_ptr<CallContext> ctx =
        CallContext::Make({FrontEnd::kGrpc, method, nullptr, "/x/Get", "", "", client_deadline,
                           clock->now, 0});
    ctx->backend_deadline = backend_deadline;
    absl::Status result = absl::UnknownError("not run");
    chain.Run(ctx.get(), [&](CallContext*, absl::Status s) { result = s; });
    EXPECT_TRUE(result.ok()) << result;
    return std::make_pair(ctx->backend_deadline, ctx->retry_policy);
  };
  const absl::Time t = clock->now;
  // No client deadline: the service's default.
  auto [deadline, retry] = run(get, absl::InfiniteFuture(), absl::InfiniteFuture());
  EXPECT_EQ(deadline, t + absl::Milliseconds(200));
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->max_attempts, 3u);
  // A client's 5s: capped at the service's max; an earlier deadline (the config's) stays.
  EXPECT_EQ(run(get, t + absl::Seconds(5), t + absl::Seconds(5)).first, t + absl::Seconds(1));
  EXPECT_EQ(run(get, absl::InfiniteFuture(), t + absl::Milliseconds(50)).first,
            t + absl::Milliseconds(50));
  // Another service's method: untouched.
  auto [other_deadline, other_retry] = run(other, absl::InfiniteFuture(), absl::InfiniteFuture());
  EXPECT_EQ(other_deadline, absl::InfiniteFuture());
  EXPECT_EQ(other_retry, nullptr);
}

TEST(ServiceRules, NoRulesBuildNoInterceptor) {
  config::v1::Deadlines d;
  config::v1::Retries r;
  absl::StatusOr<std::shared_ptr<const Interceptor>> interceptor =
      BuildServiceRules({{"lib.v1.Library", &d, &r}}, *LibraryPool(), RealClock());
  ASSERT_TRUE(interceptor.ok()) << interceptor.status();
  EXPECT_EQ(*interceptor, nullptr);
}

config::v1::Quotas OneRule(const std::string& name, int requests) {
  config::v1::Quotas q;
  config::v1::QuotaRule* rule = q.add_rules();
  rule->set_name(name);
  rule->set_requests(requests);
  rule->mutable_per()->set_seconds(60);
  rule->set_key(config::v1::QuotaRule::GLOBAL);
  rule->add_selectors("lib.v1.Library.*");
  return q;
}

// The outcome of one call of lib.v1.Library.Get (or news.v1.News.Get) through `chain`.
absl::Status Call(const InterceptorChain& chain, const google::protobuf::DescriptorPool& pool,
                  const std::string& method = "lib.v1.Library.Get") {
  CallContext ctx;
  ctx.method = pool.FindMethodByName(method);
  ctx.path = method;
  ctx.peer_address = "ipv4:127.0.0.1:1";
  absl::Status outcome = absl::InternalError("the chain did not finish");
  chain.Run(&ctx, [&outcome](CallContext*, absl::Status s) { outcome = std::move(s); });
  return outcome;
}

TEST(ServiceQuotas, RulesAreNamedAfterTheServiceAndApplyToItsMethodsOnly) {
  auto pool = LibraryPool();
  config::v1::Quotas q = OneRule("one", 1);
  config::v1::Auth no_auth;
  DefaultSelectors("lib.v1.Library", &no_auth, &q);
  ASSERT_TRUE(CheckServiceAccess("lib.v1.Library", no_auth, q, *pool, GatewayAccess()).ok());
  auto compiled = CompileServiceQuotas("lib.v1.Library", q, *pool, GatewayAccess(), RealClock());
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  InterceptorChain chain({BuildServiceQuotas({{"lib.v1.Library", *compiled}})});
  EXPECT_TRUE(Call(chain, *pool).ok());
  absl::Status second = Call(chain, *pool);
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(second.message().substr(0, 40), "quota \"lib.v1.Library/one\" exceeded (1 c")
      << second;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Call(chain, *pool, "news.v1.News.Get").ok());
}

TEST(ServiceQuotas, RegisteredQuotasKeepsAnInterceptorWhileItsRulesAndTheStoreAreUnchanged) {
  auto pool = LibraryPool();
  RegisteredQuotas kept;
  GatewayAccess gateway;
  auto first = kept.Get("lib.v1.Library", OneRule("one", 1), *pool, gateway, RealClock());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*kept.Get("lib.v1.Library", OneRule("one", 1), *pool, gateway, RealClock()),
            *first);
  EXPECT_NE(*kept.Get("lib.v1.Library", OneRule("one", 2), *pool, gateway, RealClock()),
            *first);
  gateway.quotas.set_max_keys_per_rule(7);  // the gateway's settings changed
  auto other = kept.Get("lib.v1.Library", OneRule("one", 1), *pool, gateway, RealClock());
  EXPECT_NE(*other, *first);
  EXPECT_EQ(kept.size(), 3u);
  // Only what a chain uses is kept.
  InterceptorChain chain({BuildServiceQuotas({{"lib.v1.Library", *other}})});
  kept.Retain(&chain);
  EXPECT_EQ(kept.size(), 1u);
  EXPECT_EQ(*kept.Get("lib.v1.Library", OneRule("one", 1), *pool, gateway, RealClock()), *other);
  kept.Retain(nullptr);
  EXPECT_EQ(kept.size(), 0u);
}

}  // namespace
}  // namespace gateway::registry
