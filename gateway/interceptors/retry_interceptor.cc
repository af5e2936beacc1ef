#include "gateway/interceptors/retry_interceptor.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gateway/interceptors/deadline_interceptor.h"

namespace gateway {
namespace {

// gRPC's code names ("UNAVAILABLE", ...), as absl spells them in StatusCodeToString.
absl::StatusOr<absl::StatusCode> ParseCode(const std::string& name, const std::string& key) {
  const std::string upper = absl::AsciiStrToUpper(name);
  for (int c = 1; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    std::string spelled = absl::AsciiStrToUpper(absl::StatusCodeToString(code));
    for (char& ch : spelled) {
      if (ch == ' ') ch = '_';
    }
    if (spelled == upper) return code;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      key, ": \"", name,
      "\" is not a gRPC status code name that can be retried (e.g. UNAVAILABLE, "
      "RESOURCE_EXHAUSTED, ABORTED, DEADLINE_EXCEEDED, INTERNAL)"));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const RetryInterceptor>> RetryInterceptor::Create(
    const config::v1::Retries& config, const google::protobuf::DescriptorPool& pool,
    const std::vector<std::string>& services, SelectorCheck check) {
  std::shared_ptr<RetryInterceptor> interceptor(new RetryInterceptor());
  if (config.budget_percent() > 100) {
    return absl::InvalidArgumentError("retries.budget_percent: at most 100");
  }
  SelectorMap<upstream::RetryPolicy>::Builder builder;
  for (int i = 0; i < config.rules_size(); ++i) {
    const config::v1::RetryRule& rule = config.rules(i);
    const std::string key = absl::StrCat("retries.rules[", i, "]");
    if (rule.selectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".selectors: at least one"));
    }
    upstream::RetryPolicy policy;
    if (rule.max_attempts() < 2 || rule.max_attempts() > 10) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".max_attempts: 2 to 10 (the first attempt included)"));
    }
    policy.max_attempts = rule.max_attempts();
    if (!rule.retry_on().empty()) {
      policy.retry_on.clear();
      for (int c = 0; c < rule.retry_on_size(); ++c) {
        absl::StatusOr<absl::StatusCode> code =
            ParseCode(rule.retry_on(c), absl::StrCat(key, ".retry_on[", c, "]"));
        if (!code.ok()) return code.status();
        policy.retry_on.push_back(*code);
      }
    }
    if (rule.has_per_try_timeout()) {
      policy.per_try_timeout = ToDuration(rule.per_try_timeout());
      if (policy.per_try_timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(key, ".per_try_timeout: must be positive"));
      }
    }
    if (rule.has_backoff_base()) policy.backoff_base = ToDuration(rule.backoff_base());
    if (rule.has_backoff_max()) policy.backoff_max = ToDuration(rule.backoff_max());
    if (policy.backoff_base <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".backoff_base: must be positive"));
    }
    if (policy.backoff_max < policy.backoff_base) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".backoff_max: at least backoff_base"));
    }
    if (rule.max_replay_bytes() != 0) policy.max_replay_bytes = rule.max_replay_bytes();
    if (config.budget_percent() != 0) policy.budget_percent = config.budget_percent();
    if (config.min_retry_concurrency() != 0) {
      policy.min_retry_concurrency = config.min_retry_concurrency();
    }
    interceptor->policies_.push_back(std::move(policy));
    for (int s = 0; s < rule.selectors_size(); ++s) {
      absl::Status status = builder.Add(rule.selectors(s), &interceptor->policies_.back(),
                                        absl::StrCat(key, ".selectors[", s, "]"));
      if (!status.ok()) return status;
    }
  }
  absl::StatusOr<SelectorMap<upstream::RetryPolicy>> map =
      std::move(builder).Build(pool, services, check);
  if (!map.ok()) return map.status();
  interceptor->by_method_ = *std::move(map);
  return std::shared_ptr<const RetryInterceptor>(std::move(interceptor));
}

std::shared_ptr<const void> RetryInterceptor::Resolve(
    const google::protobuf::MethodDescriptor& method) const {
  return Borrowed(by_method_.Find(&method));
}

Interceptor::Result RetryInterceptor::Intercept(CallContext* ctx, absl::Status*) const {
  ctx->retry_policy = static_cast<const upstream::RetryPolicy*>(ctx->rule());
  return Result::kContinue;
}

}  // namespace gateway
