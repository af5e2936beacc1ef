#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gateway/clock.h"
#include "gateway/config/config_loader.h"
#include "gateway/descriptor_sets.h"
#include "gateway/interceptors/auth_interceptor.h"
#include "gateway/interceptors/chain_builder.h"
#include "gateway/interceptors/deadline_interceptor.h"
#include "gateway/interceptors/quota_interceptor.h"
#include "gateway/interceptors/selector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using Result = Interceptor::Result;

const std::vector<std::string> kServices = {"gateway.test.v1.Echo"};

std::shared_ptr<const google::protobuf::DescriptorPool> EchoPool() {
  static auto* pool = [] {
    DescriptorSetBuilder builder;
    absl::Status status = builder.AddFile(absl::StrCat(
        std::getenv("TEST_SRCDIR"), "/", std::getenv("TEST_WORKSPACE"),
        "/tests/testdata/echo_proto.pb"));
    if (!status.ok()) std::abort();
    return new std::shared_ptr<const google::protobuf::DescriptorPool>(*builder.Build());
  }();
  return *pool;
}

const google::protobuf::MethodDescriptor* Method(const std::string& name) {
  return EchoPool()->FindMethodByName("gateway.test.v1.Echo." + name);
}

config::v1::Config Parse(const std::string& yaml) {
  absl::StatusOr<config::v1::Config> config = ParseConfigText(yaml, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : config::v1::Config();
}

CallContext Call(const std::string& method, absl::Time deadline = absl::InfiniteFuture()) {
  CallContext ctx;
  ctx.method = Method(method);
  ctx.path = "/gateway.test.v1.Echo/" + method;
  ctx.client_deadline = deadline;
  ctx.backend_deadline = deadline;
  ctx.peer_address = "ipv4:127.0.0.1:5555";
  return ctx;
}

// Runs `interceptor` as the only one of a chain (which resolves its rule for ctx->method)
// and returns whether it let the call go on; *status is the rejection.
Interceptor::Result RunAlone(std::shared_ptr<const Interceptor> interceptor, CallContext* ctx,
                             absl::Status* status) {
  InterceptorChain chain({std::move(interceptor)});
  bool done = false;
  chain.Run(ctx, [&](CallContext*, absl::Status s) {
    done = true;
    *status = std::move(s);
  });
  if (!done) return Interceptor::Result::kPending;
  return status->ok() ? Interceptor::Result::kContinue : Interceptor::Result::kReject;
}

TEST(SelectorMap, MostSpecificSelectorWins) {
  int exact = 1, service = 2, global = 3;
  SelectorMap<int>::Builder builder;
  ASSERT_TRUE(builder.Add("*", &global, "a").ok());
  ASSERT_TRUE(builder.Add("gateway.test.v1.Echo.*", &service, "b").ok());
  ASSERT_TRUE(builder.Add("gateway.test.v1.Echo.Unary", &exact, "c").ok());
  absl::StatusOr<SelectorMap<int>> map = std::move(builder).Build(*EchoPool(), kServices);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->Find(Method("Unary")), &exact);
  EXPECT_EQ(map->Find(Method("Bidi")), &service);
}

TEST(SelectorMap, RejectsBadDuplicateAndUnknownSelectors) {
  int v = 0;
  SelectorMap<int>::Builder builder;
  EXPECT_THAT(std::string(builder.Add("Echo/Unary", &v, "k").message()),
              HasSubstr("k: \"Echo/Unary\" is not a selector"));
  EXPECT_THAT(std::string(builder.Add("gateway..Echo", &v, "k").message()),
              HasSubstr("is not a selector"));
  ASSERT_TRUE(builder.Add("gateway.test.v1.Echo.Unry", &v, "rules[0]").ok());
  EXPECT_THAT(std::string(builder.Add("gateway.test.v1.Echo.Unry", &v, "rules[1]").message()),
              HasSubstr("rules[1]: selector \"gateway.test.v1.Echo.Unry\" is already used by "
                        "rules[0]"));
  absl::StatusOr<SelectorMap<int>> map = std::move(builder).Build(*EchoPool(), kServices);
  ASSERT_FALSE(map.ok());
  EXPECT_THAT(std::string(map.status().message()),
              HasSubstr("rules[0]: \"gateway.test.v1.Echo.Unry\" names no method"));
}

// A pool built apart from EchoPool() from the same descriptor set: what the registry builds
// when a service is registered at run time (same names, other descriptor objects).
std::shared_ptr<const google::protobuf::DescriptorPool> OtherEchoPool() {
  DescriptorSetBuilder builder;
  absl::Status status = builder.AddFile(absl::StrCat(std::getenv("TEST_SRCDIR"), "/",
                                                     std::getenv("TEST_WORKSPACE"),
                                                     "/tests/testdata/echo_proto.pb"));
  EXPECT_TRUE(status.ok()) << status;
  return *builder.Build();
}

TEST(SelectorMap, OpenCheckKeepsSelectorsForServicesNotServedYet) {
  int later = 1, echo = 2;
  SelectorMap<int>::Builder builder;
  ASSERT_TRUE(builder.Add("other.v1.Later.*", &later, "a").ok());
  ASSERT_TRUE(builder.Add("gateway.test.v1.Echo.Unary", &echo, "b").ok());
  absl::StatusOr<SelectorMap<int>> map =
      std::move(builder).Build(*EchoPool(), kServices, SelectorCheck::kOpen);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->Find(Method("Unary")), &echo);
  EXPECT_EQ(map->Find(Method("Bidi")), nullptr);
}

TEST(InterceptorRules, ApplyToMethodsOfPoolsBuiltLater) {
  auto clock = std::make_shared<FakeClock>();
  config::v1::Config config = Parse(R"(
admin_listener: {address: "127.0.0.1:0"}
auth:
  rules:
    - {selectors: ["gateway.test.v1.Echo.Unary"], allow_unauthenticated: true}
    - {selectors: ["not.registered.yet.Service.*"], allow_unauthenticated: true}
quotas:
  rules:
    - {name: one-per-second, selectors: ["gateway.test.v1.Echo.*"], requests: 1, key: METHOD}
deadlines:
  rules:
    - {selectors: ["*"], default_timeout: 3s}
)");
  // With an admin listener, a selector naming a service not in the config is kept.
  absl::StatusOr<std::shared_ptr<const InterceptorChain>> chain =
      BuildInterceptorChain(config, ".", *EchoPool(), kServices, clock);
  ASSERT_TRUE(chain.ok()) << chain.status();
  config.clear_admin_listener();
  absl::StatusOr<std::shared_ptr<const InterceptorChain>> strict =
      BuildInterceptorChain(config, ".", *EchoPool(), kServices, clock);
  ASSERT_FALSE(strict.ok());
  EXPECT_THAT(std::string(strict.status().message()),
              HasSubstr("auth.rules[1].selectors[0]: \"not.registered.yet.Service.*\" names "
                        "no method of the served services"));

  // The same methods in a pool that did not exist when the chain was built.
  std::shared_ptr<const google::protobuf::DescriptorPool> later = OtherEchoPool();
  const google::protobuf::MethodDescriptor* unary =
      later->FindMethodByName("gateway.test.v1.Echo.Unary");
  const google::protobuf::MethodDescriptor* bidi =
      later->FindMethodByName("gateway.test.v1.Echo.Bidi");
  ASSERT_NE(unary, Method("Unary"));
  const MethodRules unary_rules = (*chain)->Resolve(*unary);
  const MethodRules bidi_rules = (*chain)->Resolve(*bidi);

  auto run = [&](const google::protobuf::MethodDescriptor* method, const MethodRules* rules) {
    CallContext ctx;
    ctx.method = method;
    ctx.rules = rules;
    ctx.path = "/" + method->service()->full_name() + "/" + method->name();
    ctx.peer_address = "ipv4:127.0.0.1:5555";
    absl::Status result = absl::InternalError("not run");
    absl::Time deadline;
    (*chain)->Run(&ctx, [&](CallContext* c, absl::Status s) {
      result = std::move(s);
      deadline = c->backend_deadline;
    });
    return std::make_pair(result, deadline);
  };
  auto [first, deadline] = run(unary, &unary_rules);
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_EQ(deadline, clock->Now() + absl::Seconds(3));
  // The quota counts the method of the later pool under the same rule.
  auto [second, unused] = run(unary, &unary_rules);
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted) << second;
  // No auth rule names Bidi: closed, as for a configured method.
  auto [closed, unused2] = run(bidi, &bidi_rules);
  EXPECT_EQ(closed.code(), absl::StatusCode::kPermissionDenied) << closed;
  // Without resolved rules (or with another chain's) the chain resolves them itself.
  auto [unresolved, unused3] = run(bidi, nullptr);
  EXPECT_EQ(unresolved.code(), absl::StatusCode::kPermissionDenied);
}

TEST(DeadlineInterceptor, DefaultAppliesOnlyWithoutAClientDeadlineAndMaxCaps) {
  auto clock = std::make_shared<FakeClock>();
  config::v1::Config config = Parse(R"(
deadlines:
  rules:
    - {selectors: ["gateway.test.v1.Echo.*"], default_timeout: 2s, max_timeout: 5s}
    - {selectors: ["gateway.test.v1.Echo.Bidi"], max_timeout: 1s}
)");
  auto interceptor =
      DeadlineInterceptor::Create(config.deadlines(), *EchoPool(), kServices, clock);
  ASSERT_TRUE(interceptor.ok()) << interceptor.status();
  const absl::Time now = clock->Now();
  absl::Status status;

  CallContext none = Call("Unary");
  EXPECT_EQ(RunAlone(*interceptor, &none, &status), Result::kContinue);
  EXPECT_EQ(none.backend_deadline, now + absl::Seconds(2));

  CallContext longer = Call("Unary", now + absl::Seconds(30));
  EXPECT_EQ(RunAlone(*interceptor, &longer, &status), Result::kContinue);
  EXPECT_EQ(longer.backend_deadline, now + absl::Seconds(5));

  CallContext shorter = Call("Unary", now + absl::Seconds(1));
  EXPECT_EQ(RunAlone(*interceptor, &shorter, &status), Result::kContinue);
  EXPECT_EQ(shorter.backend_deadline, now + absl::Seconds(1));

  CallContext bidi = Call("Bidi");
  EXPECT_EQ(RunAlone(*interceptor, &bidi, &status), Result::kContinue);
  EXPECT_EQ(bidi.backend_deadline, now + absl::Seconds(1));

  CallContext past = Call("Unary", now - absl::Milliseconds(1));
  EXPECT_EQ(RunAlone(*interceptor, &past, &status), Result::kReject);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(QuotaInterceptor, RejectsOverTheLimitWithRateLimitHeaders) {
  auto clock = std::make_shared<FakeClock>();
  config::v1::Config config = Parse(R"(
quotas:
  rules:
    - {name: per-caller, selectors: ["gateway.test.v1.Echo.Unary"], requests: 2, per: 1s}
)");
  auto quotas = QuotaInterceptor::Create(config.quotas(), *EchoPool(), kServices, clock);
  ASSERT_TRUE(quotas.ok()) << quotas.status();
  absl::Status status;
  for (int i = 0; i < 2; ++i) {
    CallContext ctx = Call("Unary");
    EXPECT_EQ(RunAlone(*quotas, &ctx, &status), Result::kContinue);
  }
  CallContext third = Call("Unary");
  EXPECT_EQ(RunAlone(*quotas, &third, &status), Result::kReject);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("quota \"per-caller\" exceeded (2 calls per 1s, burst 2); retry after "
                        "500ms"));
  EXPECT_THAT(third.response_headers,
              testing::ElementsAre(Pair("retry-after", "1"), Pair("ratelimit-limit", "2"),
                                   Pair("ratelimit-remaining", "0"),
                                   Pair("ratelimit-reset", "1")));
  // Another method is not limited; another caller has its own bucket.
  CallContext bidi = Call("Bidi");
  EXPECT_EQ(RunAlone(*quotas, &bidi, &status), Result::kContinue);
  CallContext other = Call("Unary");
  other.caller_id = "alice";
  EXPECT_EQ(RunAlone(*quotas, &other, &status), Result::kContinue);
  clock->Advance(absl::Milliseconds(500));
  CallContext later = Call("Unary");
  EXPECT_EQ(RunAlone(*quotas, &later, &status), Result::kContinue);
}

TEST(QuotaInterceptor, KeysByHeaderAndGlobally) {
  auto clock = std::make_shared<FakeClock>();
  config::v1::Config config = Parse(R"(
quotas:
  rules:
    - {name: tenant, selectors: ["*"], key: HEADER, header: X-Tenant, requests: 1, per: 1h}
)");
  auto quotas = QuotaInterceptor::Create(config.quotas(), *EchoPool(), kServices, clock);
  ASSERT_TRUE(quotas.ok()) << quotas.status();
  absl::Status status;
  CallContext a = Call("Unary");
  a.request_metadata = {{"x-tenant", "a"}};
  EXPECT_EQ(RunAlone(*quotas, &a, &status), Result::kContinue);
  CallContext b = Call("Bidi");
  b.request_metadata = {{"x-tenant", "b"}};
  EXPECT_EQ(RunAlone(*quotas, &b, &status), Result::kContinue);
  CallContext a2 = Call("Bidi");
  a2.request_metadata = {{"x-tenant", "a"}};
  EXPECT_EQ(RunAlone(*quotas, &a2, &status), Result::kReject);
}

TEST(QueryParameter, FindsAndDecodesTheValue) {
  EXPECT_EQ(QueryParameter("a=1&access_token=x%2By+z&b=2", "access_token"), "x+y z");
  EXPECT_EQ(QueryParameter("access_token", "access_token"), "");
  EXPECT_EQ(QueryParameter("token=1", "access_token"), "");
  EXPECT_EQ(QueryParameter("", "access_token"), "");
}

TEST(PeerIp, StripsSchemeAndPort) {
  EXPECT_EQ(PeerIp("ipv4:127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(PeerIp("ipv6:[::1]:5000"), "::1");
  EXPECT_EQ(PeerIp("10.0.0.1:80"), "10.0.0.1");
  EXPECT_EQ(PeerIp("unix:/tmp/s"), "unix:/tmp/s");
}

struct BadChain {
  const char* name;
  const char* yaml;
  const char* message;
};

class ChainBuilderRejects : public ::testing::TestWithParam<BadChain> {};

TEST_P(ChainBuilderRejects, NamingTheKey) {
  absl::StatusOr<std::shared_ptr<const InterceptorChain>> chain = BuildInterceptorChain(
      Parse(GetParam().yaml), "/", *EchoPool(), kServices, std::make_shared<FakeClock>());
  ASSERT_FALSE(chain.ok());
  EXPECT_EQ(chain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(chain.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    BadConfigs, ChainBuilderRejects,
    ::testing::Values(
        BadChain{"QuotaWithoutName", "quotas: {rules: [{selectors: ['*'], requests: 1}]}",
                 "quotas.rules[0].name: required"},
        BadChain{"QuotaDuplicateName",
                 "quotas: {rules: [{name: a, selectors: ['*'], requests: 1},"
                 " {name: a, selectors: ['*'], requests: 1}]}",
                 "quotas.rules[1].name: \"a\" is used by another rule"},
        BadChain{"QuotaWithoutSelectors", "quotas: {rules: [{name: a, requests: 1}]}",
                 "quotas.rules[0].selectors: at least one"},
        BadChain{"QuotaZeroRequests", "quotas: {rules: [{name: a, selectors: ['*']}]}",
                 "quotas.rules[0].requests: required, at least 1"},
        BadChain{"QuotaHeaderKeyWithoutHeader",
                 "quotas: {rules: [{name: a, selectors: ['*'], requests: 1, key: HEADER}]}",
                 "quotas.rules[0].header: required with key HEADER"},
        BadChain{"QuotaZeroPeriod",
                 "quotas: {rules: [{name: a, selectors: ['*'], requests: 1, per: 0s}]}",
                 "quotas.rules[0].per: must be positive"},
        BadChain{"QuotaUnknownMethod",
                 "quotas: {rules: [{name: a, selectors: ['gateway.test.v1.Echo.Nope'],"
                 " requests: 1}]}",
                 "quotas.rules[0].selectors[0]: \"gateway.test.v1.Echo.Nope\" names no method"},
        BadChain{"DeadlineWithoutTimeouts", "deadlines: {rules: [{selectors: ['*']}]}",
                 "deadlines.rules[0]: set default_timeout, max_timeout or both"},
        BadChain{"DeadlineZero",
                 "deadlines: {rules: [{selectors: ['*'], max_timeout: 0s}]}",
                 "deadlines.rules[0].max_timeout: must be positive"},
        BadChain{"DeadlineBadSelector",
                 "deadlines: {rules: [{selectors: ['Echo/Unary'], max_timeout: 1s}]}",
                 "deadlines.rules[0].selectors[0]: \"Echo/Unary\" is not a selector"},
        BadChain{"DeadlineDuplicateSelector",
                 "deadlines: {rules: [{selectors: ['*', '*'], max_timeout: 1s}]}",
                 "deadlines.rules[0].selectors[1]: selector \"*\" is already used"}),
    [](const ::testing::TestParamInfo<BadChain>& info) { return info.param.name; });

TEST(AuthInterceptor, RefusesACredentialSentTwiceOnEveryMethod) {
  const std::string keys = absl::StrCat(std::getenv("TEST_TMPDIR"), "/dup-keys.txt");
  {
    FILE* f = std::fopen(keys.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("ci 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n", f);
    std::fclose(f);
  }
  config::v1::Config config = Parse(absl::StrCat(R"(
auth:
  api_keys:
    keys_file: ")", keys, R"("
    from: [{header: X-Api-Key}, {query_parameter: key}]
  rules:
    - {selectors: ["gateway.test.v1.Echo.ServerStream"], providers: [api_key]}
    - {selectors: ["gateway.test.v1.Echo.*"], allow_unauthenticated: true}
)"));
  absl::StatusOr<std::shared_ptr<const AuthInterceptor>> auth =
      AuthInterceptor::Create(config.auth(), "/", *EchoPool(), kServices);
  ASSERT_TRUE(auth.ok()) << auth.status();

  struct Case {
    std::string method;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string query;
    std::string refusal;  // empty: not refused as ambiguous
  };
  const std::vector<Case> cases = {
      {"Unary", {{"authorization", "Bearer a"}, {"authorization", "Bearer b"}}, "",
       "two Authorization headers were sent"},
      {"ServerStream", {{"x-api-key", "a"}, {"x-api-key", "b"}}, "",
       "header x-api-key was sent 2 times"},
      {"ServerStream", {{"x-api-key", "a"}}, "key=b&key=c", "query parameter key was sent 2 times"},
      {"Unary", {{"authorization", "Bearer a"}, {"x-api-key", "a"}}, "key=b", ""},
  };
  for (const Case& c : cases) {
    CallContext ctx = Call(c.method);
    for (const auto& [k, v] : c.headers) ctx.request_metadata.emplace_back(k, v);
    ctx.query = c.query;
    absl::Status status;
    const Result result = RunAlone(*auth, &ctx, &status);
    if (c.refusal.empty()) {
      EXPECT_NE(status.code(), absl::StatusCode::kInvalidArgument) << status;
      continue;
    }
    EXPECT_EQ(result, Result::kReject);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.refusal));
    ASSERT_EQ(ctx.response_headers.size(), 1u);
    EXPECT_THAT(ctx.response_headers[0].second, HasSubstr("error=\"invalid_request\""));
  }
}

TEST(ChainBuilder, OrdersQuotasBeforeDeadlines) {
  config::v1::Config config = Parse(R"(
quotas: {rules: [{name: a, selectors: ['*'], requests: 1, per: 1h}]}
deadlines: {rules: [{selectors: ['*'], default_timeout: 1s}]}
)");
  auto clock = std::make_shared<FakeClock>();
  auto chain = BuildInterceptorChain(config, "/", *EchoPool(), kServices, clock);
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ((*chain)->size(), 2u);
  CallContext first = Call("Unary");
  absl::Status outcome;
  (*chain)->Run(&first, [&](CallContext*, absl::Status s) { outcome = s; });
  EXPECT_TRUE(outcome.ok());
  EXPECT_EQ(first.backend_deadline, clock->Now() + absl::Seconds(1));
  CallContext second = Call("Unary");
  (*chain)->Run(&second, [&](CallContext*, absl::Status s) { outcome = s; });
  EXPECT_EQ(outcome.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(second.backend_deadline, absl::InfiniteFuture());  // never reached deadlines
}

}  // namespace
}  // namespace gateway
