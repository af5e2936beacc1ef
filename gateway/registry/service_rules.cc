#include "gateway/registry/service_rules.h"

#include <algorithm>
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
  for (int i = 0; i < deadlines.rules_size(); ++i) {
    for (int s = 0; s < deadlines.rules(i).selectors_size(); ++s) {
      absl::Status status =
          CheckSelector(deadlines.rules(i).selectors(s),
                        absl::StrCat("deadlines.rules[", i, "].selectors[", s, "]"), *descriptor);
      if (!status.ok()) return status;
    }
  }
  for (int i = 0; i < retries.rules_size(); ++i) {
    for (int s = 0; s < retries.rules(i).selectors_size(); ++s) {
      absl::Status status =
          CheckSelector(retries.rules(i).selectors(s),
                        absl::StrCat("retries.rules[", i, "].selectors[", s, "]"), *descriptor);
      if (!status.ok()) return status;
    }
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

}  // namespace gateway::registry
