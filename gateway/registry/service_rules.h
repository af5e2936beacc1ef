// The rules a registered service carries for its own methods (deadlines, retries, auth and
// quotas), checked when it registers and applied by interceptors that every route table
// with such rules adds to the gateway config's chain.
//
// A registration's rules use the config's schema (gateway.config.v1.Deadlines, Retries,
// Auth, Quotas) and the config's validators (DeadlineInterceptor::Create,
// RetryInterceptor::Create, AuthInterceptor::CreateAdditional, QuotaInterceptor::Create),
// limited to the service's own methods: each selector is "<service>.*" or
// "<service>.<Method>" (a rule without selectors covers the whole service), and the
// gateway-wide keys (deadlines.http_timeout_header, retries.budget_percent,
// retries.min_retry_concurrency, auth.jwt_providers, auth.api_keys, quotas.redis,
// quotas.max_keys_per_rule) stay the config's. They add to the config's rules, never
// loosen them:
//   - deadlines: a call's deadline is the earliest of the config's and the service's (the
//     service's default applies when the client set no deadline and can only shorten the
//     config's);
//   - retries: the service's retry rule replaces the config's for the methods it names
//     (still bounded by the backend's retry budget and circuit breakers);
//   - auth: the config's auth check runs first and still rejects; a service's rule then
//     requires one of the credentials it names (the config's JWT providers by name,
//     "api_key", client certificate identities) and the scopes/claims it lists; it can
//     never open a method (allow_unauthenticated is refused);
//   - quotas: the config's quota rules are checked first and still reject; the service's
//     rules are checked as well. Their names are prefixed with the service
//     ("pay.v1.Pay/per-caller"), in errors, headers and Redis keys, so they never collide
//     with the config's or another service's. Shared rules need the config's
//     quotas.redis (they use its store). A service's counters live in a QuotaInterceptor
//     kept (RegisteredQuotas) across route tables while its rules and the config's quota
//     store settings are unchanged.
//
// Thread-safety: the interceptors are immutable (quota counters are thread-safe);
// RegisteredQuotas is not thread-safe (the registry uses it under its lock); the functions
// are pure.
//
// Example:
//   absl::Status ok = CheckServiceRules("pay.v1.Pay", deadlines, retries, pool);
//   absl::StatusOr<std::shared_ptr<const Interceptor>> rules =
//       BuildServiceRules({{"pay.v1.Pay", &deadlines, &retries}}, table_pool, RealClock());
//   absl::Status access = CheckServiceAccess("pay.v1.Pay", auth, quotas, pool, gateway);

#ifndef GATEWAY_REGISTRY_SERVICE_RULES_H_
#define GATEWAY_REGISTRY_SERVICE_RULES_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/clock.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"
#include "gateway/interceptors/auth_interceptor.h"
#include "gateway/interceptors/quota_interceptor.h"
#include "google/protobuf/descriptor.h"

namespace gateway::registry {

// `deadlines` and `retries` with every rule's selectors filled in (none: "<service>.*").
void DefaultSelectors(const std::string& service, config::v1::Deadlines* deadlines,
                      config::v1::Retries* retries);

// Checks the rules of `service` (as DefaultSelectors left them) against its methods in
// `pool`. INVALID_ARGUMENT naming the key: a gateway-wide key set
// ("deadlines.http_timeout_header: ..."), a selector outside the service
// ("deadlines.rules[0].selectors[0]: \"other.v1.S.*\" is not a method of pay.v1.Pay ..."),
// or what the config's validator refuses (a zero timeout, max_attempts outside 2..10, ...).
absl::Status CheckServiceRules(const std::string& service,
                               const config::v1::Deadlines& deadlines,
                               const config::v1::Retries& retries,
                               const google::protobuf::DescriptorPool& pool);

struct ServiceRules {
  std::string service;
  const config::v1::Deadlines* deadlines = nullptr;  // may be empty
  const config::v1::Retries* retries = nullptr;      // may be empty
};

// The interceptor that applies the rules of every service in `rules` (each checked by
// CheckServiceRules) to their methods in `pool`; null when no service has a rule.
// INVALID_ARGUMENT naming the service when a rule does not compile.
absl::StatusOr<std::shared_ptr<const Interceptor>> BuildServiceRules(
    const std::vector<ServiceRules>& rules, const google::protobuf::DescriptorPool& pool,
    std::shared_ptr<const Clock> clock);

// What a registration's auth and quota rules build on: the gateway config's.
struct GatewayAccess {
  // The config's auth interceptor (its JWT providers and API keys); null: the config has
  // no `auth` section, and a registration's auth rules can name no provider.
  std::shared_ptr<const AuthInterceptor> auth;
  // The config's `quotas` section: a registration's rules use its `redis` (the shared
  // store; without one a shared rule is refused) and `max_keys_per_rule`.
  config::v1::Quotas quotas;
};

// `auth` and `quotas` with every rule's selectors filled in (none: "<service>.*").
void DefaultSelectors(const std::string& service, config::v1::Auth* auth,
                      config::v1::Quotas* quotas);

// Checks the auth and quota rules of `service` (as DefaultSelectors left them) against its
// methods in `pool` and the gateway's settings. INVALID_ARGUMENT naming the key: a
// gateway-wide key set ("auth.jwt_providers: ...", "quotas.redis: ..."), a selector
// outside the service ("auth.rules[0].selectors[0]: \"other.v1.S.*\" is not a method of
// ..."), allow_unauthenticated, a provider the config does not define
// ("auth.rules[0].providers[0]: unknown provider \"x\" (known: ...)"), a shared quota rule
// without the config's quotas.redis, or what the config's validators refuse (a missing
// name, zero requests, ...).
absl::Status CheckServiceAccess(const std::string& service, const config::v1::Auth& auth,
                                const config::v1::Quotas& quotas,
                                const google::protobuf::DescriptorPool& pool,
                                const GatewayAccess& gateway);

// The name a quota rule of `service` is counted and reported under: "<service>/<name>".
std::string ServiceQuotaName(const std::string& service, const std::string& name);

// Compiles the quota rules of `service` (checked by CheckServiceAccess) into a new
// interceptor with fresh counters. INVALID_ARGUMENT naming the key.
absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> CompileServiceQuotas(
    const std::string& service, const config::v1::Quotas& quotas,
    const google::protobuf::DescriptorPool& pool, const GatewayAccess& gateway,
    std::shared_ptr<const Clock> clock);

// The quota interceptors of registered services, kept from one route table to the next so
// their counters survive changes to other services and unchanged re-registrations.
//
// Thread-safety: none; the registry uses it under its lock.
class RegisteredQuotas {
 public:
  // The interceptor for `service`'s rules: the one kept when the rules and the gateway's
  // quota store settings are the same, else a new one (CompileServiceQuotas), which is
  // kept from now on (until Retain drops it).
  absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> Get(
      const std::string& service, const config::v1::Quotas& quotas,
      const google::protobuf::DescriptorPool& pool, const GatewayAccess& gateway,
      std::shared_ptr<const Clock> clock);

  // Keeps only the interceptors `chain` uses (the very objects); null: keeps none.
  void Retain(const InterceptorChain* chain);

  // Forgets every interceptor (the next tables count from zero, as after a config reload).
  void Clear() { kept_.clear(); }

  std::size_t size() const { return kept_.size(); }

 private:
  // (service, fingerprint of its rules and the gateway's settings) -> interceptor.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<const QuotaInterceptor>> kept_;
};

// The interceptor that applies each service's quota interceptor in `by_service` to that
// service's methods; null when `by_service` is empty.
std::shared_ptr<const Interceptor> BuildServiceQuotas(
    std::map<std::string, std::shared_ptr<const QuotaInterceptor>> by_service);

struct ServiceAuth {
  std::string service;
  const config::v1::Auth* auth = nullptr;  // may be empty
};

// One interceptor with the auth rules of every service in `rules` (each checked by
// CheckServiceAccess), over the gateway's providers; null when no service has a rule.
// INVALID_ARGUMENT naming the service when a rule does not compile (e.g. the config no
// longer defines a provider it names).
absl::StatusOr<std::shared_ptr<const Interceptor>> BuildServiceAuth(
    const std::vector<ServiceAuth>& rules, const google::protobuf::DescriptorPool& pool,
    const GatewayAccess& gateway);

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_SERVICE_RULES_H_
