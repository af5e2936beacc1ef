#include "gateway/registry/service_rules.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/interceptors/deadline_interceptor.h"
#include "gateway/interceptors/retry_interceptor.h"

namespace gateway::registry {
namespace {

// Whether `selector` names `service` as a whole or one of its methods.
absl::Status CheckSelector(const std::string& selector, const std::string& key,
                           const google::protobuf::ServiceDescriptor& service) {
  const std::string prefix = absl::StrCat(service.full_name(), ".");
  if (absl::StartsWith(selector, prefix)) {
    const std::string rest = selector.substr(prefix.size());
    if (rest == "*" || service.FindMethodByName(rest) != nullptr) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      key, ": \"", selector, "\" is not a method of ", service.full_name(),
      " (a registration's rules apply to its own methods only: ", service.full_name(),
      ".* or ", service.full_name(), ".METHOD)"));
}

// CheckSelector for every selector of `rules` (a repeated rule message with `selectors`),
// naming each as "<section>.rules[i].selectors[s]".
template <typename Rules>
absl::Status CheckRuleSelectors(const Rules& rules, absl::string_view section,
                                const google::protobuf::ServiceDescriptor& service) {
  for (int i = 0; i < rules.size(); ++i) {
    for (int s = 0; s < rules.Get(i).selectors_size(); ++s) {
      absl::Status status =
          CheckSelector(rules.Get(i).selectors(s),
                        absl::StrCat(section, ".rules[", i, "].selectors[", s, "]"), service);
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// The rule the interceptor resolves for one method: what each part applies (null: nothing).
struct Resolved {
  std::shared_ptr<const void> deadline_holder;
  std::shared_ptr<const void> retry_holder;
  const DeadlineInterceptor::Rule* deadline = nullptr;
  const upstream::RetryPolicy* retry = nullptr;
};

class ServiceRulesInterceptor : public Interceptor {
 public:
  ServiceRulesInterceptor(std::shared_ptr<const DeadlineInterceptor> deadlines,
                          std::shared_ptr<const RetryInterceptor> retries,
                          std::shared_ptr<const Clock> clock)
      : deadlines_(std::move(deadlines)), retries_(std::move(retries)), clock_(std::move(clock)) {}

  absl::string_view name() const override { return "service_rules"; }

  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override {
    auto resolved = std::make_shared<Resolved>();
    if (deadlines_ != nullptr) {
      resolved->deadline_holder = deadlines_->Resolve(method);
      resolved->deadline =
          static_cast<const DeadlineInterceptor::Rule*>(resolved->deadline_holder.get());
    }
    if (retries_ != nullptr) {
      resolved->retry_holder = retries_->Resolve(method);
      resolved->retry = static_cast<const upstream::RetryPolicy*>(resolved->retry_holder.get());
    }
    if (resolved->deadline == nullptr && resolved->retry == nullptr) return nullptr;
    return resolved;
  }

  // The deadline as DeadlineInterceptor sets it, over what the config's rules left: it can
  // only come earlier.
  Result Intercept(CallContext* ctx, absl::Status* status) const override {
    const Resolved* rule = static_cast<const Resolved*>(ctx->rule());
    if (rule == nullptr) return Result::kContinue;
    if (rule->retry != nullptr) ctx->retry_policy = rule->retry;
    if (rule->deadline == nullptr) return Result::kContinue;
    const absl::Time now = clock_->Now();
    absl::Time deadline = ctx->backend_deadline;
    if (ctx->client_deadline == absl::InfiniteFuture() &&
        rule->deadline->default_timeout != absl::InfiniteDuration()) {
      deadline = std::min(deadline, now + rule->deadline->default_timeout);
    }
    if (rule->deadline->max_timeout != absl::InfiniteDuration()) {
      deadline = std::min(deadline, now + rule->deadline->max_timeout);
    }
    if (deadline <= now) {
      *status = absl::DeadlineExceededError(
          absl::StrCat("deadline of ", ctx->path, " passed before the call was sent"));
      return Result::kReject;
    }
    ctx->backend_deadline = deadline;
    return Result::kContinue;
  }

 private:
  // Hold the compiled rules that Resolve() results point into.
  std::shared_ptr<const DeadlineInterceptor> deadlines_;
  std::shared_ptr<const RetryInterceptor> retries_;
  std::shared_ptr<const Clock> clock_;
};

// The quota rules of registered services: each method resolves to its service's
// QuotaInterceptor and that interceptor's rules for it.
class ServiceQuotasInterceptor : public Interceptor {
 public:
  explicit ServiceQuotasInterceptor(
      std::map<std::string, std::shared_ptr<const QuotaInterceptor>> by_service)
      : by_service_(std::move(by_service)) {}

  absl::string_view name() const override { return "service_quotas"; }

  struct Resolved {
    const QuotaInterceptor* quotas = nullptr;
    std::shared_ptr<const void> rules;
  };

  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override {
    auto it = by_service_.find(method.service()->full_name());
    if (it == by_service_.end()) return nullptr;
    std::shared_ptr<const void> rules = it->second->Resolve(method);
    if (rules == nullptr) return nullptr;
    return std::make_shared<const Resolved>(Resolved{it->second.get(), std::move(rules)});
  }

  Result Intercept(CallContext* ctx, absl::Status* status) const override {
    const Resolved* resolved = static_cast<const Resolved*>(ctx->rule());
    if (resolved == nullptr) return Result::kContinue;
    return resolved->quotas->InterceptWith(ctx, resolved->rules.get(), status);
  }

  const std::map<std::string, std::shared_ptr<const QuotaInterceptor>>& by_service() const {
    return by_service_;
  }

 private:
  std::map<std::string, std::shared_ptr<const QuotaInterceptor>> by_service_;
};

// The gateway-wide settings a registration's quota rules are compiled with, as text.
std::string GatewayQuotaSettings(const GatewayAccess& gateway) {
  config::v1::Quotas settings;
  *settings.mutable_redis() = gateway.quotas.redis();
  settings.set_max_keys_per_rule(gateway.quotas.max_keys_per_rule());
  return settings.SerializeAsString();
}

// The rules of `service` as the gateway compiles them: names prefixed, the gateway's
// settings; with `validate_only`, shared rules are compiled as local ones (no store).
absl::StatusOr<config::v1::Quotas> GatewayQuotas(const std::string& service,
                                                 const config::v1::Quotas& quotas,
                                                 const GatewayAccess& gateway,
                                                 bool validate_only) {
  config::v1::Quotas out;
  *out.mutable_rules() = quotas.rules();
  out.set_max_keys_per_rule(gateway.quotas.max_keys_per_rule());
  bool any_shared = false;
  for (int i = 0; i < out.rules_size(); ++i) {
    config::v1::QuotaRule& rule = *out.mutable_rules(i);
    if (!rule.name().empty()) rule.set_name(ServiceQuotaName(service, rule.name()));
    if (!rule.shared()) continue;
    if (gateway.quotas.redis().address().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "quotas.rules[", i, "].shared: the gateway config has no shared quota store "
          "(quotas.redis.address); a registration's rules can only be local then"));
    }
    any_shared = true;
    if (validate_only) rule.set_shared(false);
  }
  if (any_shared && !validate_only) *out.mutable_redis() = gateway.quotas.redis();
  return out;
}

}  // namespace

void DefaultSelectors(const std::string& service, config::v1::Deadlines* deadlines,
                      config::v1::Retries* retries) {
  const std::string all = absl::StrCat(service, ".*");
  for (config::v1::DeadlineRule& rule : *deadlines->mutable_rules()) {
    if (rule.selectors().empty()) rule.add_selectors(all);
  }
  for (config::v1::RetryRule& rule : *retries->mutable_rules()) {
    if (rule.selectors().empty()) rule.add_selectors(all);
  }
}

absl::Status CheckServiceRules(const std::string& service,
                               const config::v1::Deadlines& deadlines,
                               const config::v1::Retries& retries,
                               const google::protobuf::DescriptorPool& pool) {
  const google::protobuf::ServiceDescriptor* descriptor = pool.FindServiceByName(service);
  if (descriptor == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("service ", service, " is not in the pool"));
  }
  constexpr char kGatewayWide[] =
      ": gateway-wide, set in the gateway config only (a registration sets rules only)";
  if (!deadlines.http_timeout_header().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("deadlines.http_timeout_header", kGatewayWide));
  }
  if (retries.budget_percent() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("retries.budget_percent", kGatewayWide));
  }
  if (retries.min_retry_concurrency() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("retries.min_retry_concurrency", kGatewayWide));
  }
  if (absl::Status status = CheckRuleSelectors(deadlines.rules(), "deadlines", *descriptor);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = CheckRuleSelectors(retries.rules(), "retries", *descriptor);
      !status.ok()) {
    return status;
  }
  // The config's own validators, for everything else.
  if (deadlines.rules_size() > 0) {
    auto compiled = DeadlineInterceptor::Create(deadlines, pool, {service}, RealClock());
    if (!compiled.ok()) return compiled.status();
  }
  if (retries.rules_size() > 0) {
    auto compiled = RetryInterceptor::Create(retries, pool, {service});
    if (!compiled.ok()) return compiled.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Interceptor>> BuildServiceRules(
    const std::vector<ServiceRules>& rules, const google::protobuf::DescriptorPool& pool,
    std::shared_ptr<const Clock> clock) {
  config::v1::Deadlines deadlines;
  config::v1::Retries retries;
  std::vector<std::string> services;
  for (const ServiceRules& r : rules) {
    const bool has_deadlines = r.deadlines != nullptr && r.deadlines->rules_size() > 0;
    const bool has_retries = r.retries != nullptr && r.retries->rules_size() > 0;
    if (!has_deadlines && !has_retries) continue;
    services.push_back(r.service);
    if (has_deadlines) {
      for (const auto& rule : r.deadlines->rules()) *deadlines.add_rules() = rule;
    }
    if (has_retries) {
      for (const auto& rule : r.retries->rules()) *retries.add_rules() = rule;
    }
  }
  if (services.empty()) return nullptr;
  std::shared_ptr<const DeadlineInterceptor> deadline_rules;
  if (deadlines.rules_size() > 0) {
    auto compiled = DeadlineInterceptor::Create(deadlines, pool, services, clock);
    if (!compiled.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registered services' rules: ", compiled.status().message()));
    }
    deadline_rules = *std::move(compiled);
  }
  std::shared_ptr<const RetryInterceptor> retry_rules;
  if (retries.rules_size() > 0) {
    auto compiled = RetryInterceptor::Create(retries, pool, services);
    if (!compiled.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("registered services' rules: ", compiled.status().message()));
    }
    retry_rules = *std::move(compiled);
  }
  return std::shared_ptr<const Interceptor>(std::make_shared<ServiceRulesInterceptor>(
      std::move(deadline_rules), std::move(retry_rules), std::move(clock)));
}

void DefaultSelectors(const std::string& service, config::v1::Auth* auth,
                      config::v1::Quotas* quotas) {
  const std::string all = absl::StrCat(service, ".*");
  for (config::v1::AuthRule& rule : *auth->mutable_rules()) {
    if (rule.selectors().empty()) rule.add_selectors(all);
  }
  for (config::v1::QuotaRule& rule : *quotas->mutable_rules()) {
    if (rule.selectors().empty()) rule.add_selectors(all);
  }
}

std::string ServiceQuotaName(const std::string& service, const std::string& name) {
  return absl::StrCat(service, "/", name);
}

absl::Status CheckServiceAccess(const std::string& service, const config::v1::Auth& auth,
                                const config::v1::Quotas& quotas,
                                const google::protobuf::DescriptorPool& pool,
                                const GatewayAccess& gateway) {
  const google::protobuf::ServiceDescriptor* descriptor = pool.FindServiceByName(service);
  if (descriptor == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("service ", service, " is not in the pool"));
  }
  if (auth.jwt_providers_size() > 0) {
    return absl::InvalidArgumentError(
        "auth.jwt_providers: gateway-owned: a registration cannot define JWT providers, "
        "JWKS files or URLs (its auth rules name the gateway config's providers in "
        "auth.rules[].providers)");
  }
  if (auth.has_api_keys()) {
    return absl::InvalidArgumentError(
        "auth.api_keys: gateway-owned: a registration cannot define API keys or key files "
        "(its auth rules accept the gateway config's keys with providers: [api_key])");
  }
  constexpr char kGatewayWide[] =
      ": gateway-wide, set in the gateway config only (a registration sets rules only)";
  if (quotas.has_redis()) {
    return absl::InvalidArgumentError(absl::StrCat("quotas.redis", kGatewayWide));
  }
  if (quotas.max_keys_per_rule() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("quotas.max_keys_per_rule", kGatewayWide));
  }
  if (absl::Status status = CheckRuleSelectors(auth.rules(), "auth", *descriptor);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = CheckRuleSelectors(quotas.rules(), "quotas", *descriptor);
      !status.ok()) {
    return status;
  }
  // The config's own validators, for everything else.
  if (auth.rules_size() > 0) {
    auto compiled = AuthInterceptor::CreateAdditional(gateway.auth, auth, pool, {service});
    if (!compiled.ok()) return compiled.status();
  }
  if (quotas.rules_size() > 0) {
    absl::StatusOr<config::v1::Quotas> local =
        GatewayQuotas(service, quotas, gateway, /*validate_only=*/true);
    if (!local.ok()) return local.status();
    auto compiled = QuotaInterceptor::Create(*local, pool, {service}, RealClock());
    if (!compiled.ok()) return compiled.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> CompileServiceQuotas(
    const std::string& service, const config::v1::Quotas& quotas,
    const google::protobuf::DescriptorPool& pool, const GatewayAccess& gateway,
    std::shared_ptr<const Clock> clock) {
  absl::StatusOr<config::v1::Quotas> compiled =
      GatewayQuotas(service, quotas, gateway, /*validate_only=*/false);
  if (!compiled.ok()) return compiled.status();
  return QuotaInterceptor::Create(*compiled, pool, {service}, std::move(clock));
}

absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> RegisteredQuotas::Get(
    const std::string& service, const config::v1::Quotas& quotas,
    const google::protobuf::DescriptorPool& pool, const GatewayAccess& gateway,
    std::shared_ptr<const Clock> clock) {
  std::pair<std::string, std::string> key(
      service, absl::StrCat(quotas.SerializeAsString(), "|", GatewayQuotaSettings(gateway)));
  if (auto it = kept_.find(key); it != kept_.end()) return it->second;
  absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> compiled =
      CompileServiceQuotas(service, quotas, pool, gateway, std::move(clock));
  if (!compiled.ok()) return compiled.status();
  kept_.emplace(std::move(key), *compiled);
  return compiled;
}

void RegisteredQuotas::Retain(const InterceptorChain* chain) {
  std::set<const QuotaInterceptor*> used;
  if (chain != nullptr) {
    for (const auto& interceptor : chain->interceptors()) {
      const auto* quotas = dynamic_cast<const ServiceQuotasInterceptor*>(interceptor.get());
      if (quotas == nullptr) continue;
      for (const auto& [service, q] : quotas->by_service()) used.insert(q.get());
    }
  }
  for (auto it = kept_.begin(); it != kept_.end();) {
    it = used.count(it->second.get()) > 0 ? std::next(it) : kept_.erase(it);
  }
}

std::shared_ptr<const Interceptor> BuildServiceQuotas(
    std::map<std::string, std::shared_ptr<const QuotaInterceptor>> by_service) {
  if (by_service.empty()) return nullptr;
  return std::make_shared<const ServiceQuotasInterceptor>(std::move(by_service));
}

absl::StatusOr<std::shared_ptr<const Interceptor>> BuildServiceAuth(
    const std::vector<ServiceAuth>& rules, const google::protobuf::DescriptorPool& pool,
    const GatewayAccess& gateway) {
  config::v1::Auth all;
  std::vector<std::string> services;
  for (const ServiceAuth& r : rules) {
    if (r.auth == nullptr || r.auth->rules_size() == 0) continue;
    services.push_back(r.service);
    for (const auto& rule : r.auth->rules()) *all.add_rules() = rule;
  }
  if (services.empty()) return nullptr;
  auto compiled = AuthInterceptor::CreateAdditional(gateway.auth, all, pool, services);
  if (!compiled.ok()) {
    // Name the service whose rules no longer compile (e.g. a provider left the config).
    for (const ServiceAuth& r : rules) {
      if (r.auth == nullptr || r.auth->rules_size() == 0) continue;
      auto own = AuthInterceptor::CreateAdditional(gateway.auth, *r.auth, pool, {r.service});
      if (!own.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("service ", r.service, ": ", own.status().message()));
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat("registered services' auth rules: ", compiled.status().message()));
  }
  return std::shared_ptr<const Interceptor>(*std::move(compiled));
}

}  // namespace gateway::registry
