#include "gateway/interceptors/deadline_interceptor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace gateway {

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::StatusOr<std::shared_ptr<const DeadlineInterceptor>> DeadlineInterceptor::Create(
    const config::v1::Deadlines& config, const google::protobuf::DescriptorPool& pool,
    const std::vector<std::string>& services, std::shared_ptr<const Clock> clock,
    SelectorCheck check) {
  std::shared_ptr<DeadlineInterceptor> interceptor(new DeadlineInterceptor());
  interceptor->clock_ = std::move(clock);
  interceptor->rules_.reserve(config.rules_size());  // pointers into it must stay valid
  SelectorMap<Rule>::Builder builder;
  for (int i = 0; i < config.rules_size(); ++i) {
    const config::v1::DeadlineRule& rule = config.rules(i);
    const std::string key = absl::StrCat("deadlines.rules[", i, "]");
    if (rule.selectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".selectors: at least one"));
    }
    if (!rule.has_default_timeout() && !rule.has_max_timeout()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": set default_timeout, max_timeout or both"));
    }
    Rule compiled;
    if (rule.has_default_timeout()) {
      compiled.default_timeout = ToDuration(rule.default_timeout());
      if (compiled.default_timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ".default_timeout: must be positive"));
      }
    }
    if (rule.has_max_timeout()) {
      compiled.max_timeout = ToDuration(rule.max_timeout());
      if (compiled.max_timeout <= absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrCat(key, ".max_timeout: must be positive"));
      }
    }
    interceptor->rules_.push_back(compiled);
    for (int s = 0; s < rule.selectors_size(); ++s) {
      absl::Status status = builder.Add(rule.selectors(s), &interceptor->rules_.back(),
                                        absl::StrCat(key, ".selectors[", s, "]"));
      if (!status.ok()) return status;
    }
  }
  absl::StatusOr<SelectorMap<Rule>> map = std::move(builder).Build(pool, services, check);
  if (!map.ok()) return map.status();
  interceptor->by_method_ = *std::move(map);
  return std::shared_ptr<const DeadlineInterceptor>(std::move(interceptor));
}

std::shared_ptr<const void> DeadlineInterceptor::Resolve(
    const google::protobuf::MethodDescriptor& method) const {
  return Borrowed(by_method_.Find(&method));
}

Interceptor::Result DeadlineInterceptor::Intercept(CallContext* ctx,
                                                   absl::Status* status) const {
  const Rule* rule = static_cast<const Rule*>(ctx->rule());
  const absl::Time now = clock_->Now();
  absl::Time deadline = ctx->backend_deadline;
  if (rule != nullptr) {
    if (ctx->client_deadline == absl::InfiniteFuture() &&
        rule->default_timeout != absl::InfiniteDuration()) {
      deadline = std::min(deadline, now + rule->default_timeout);
    }
    if (rule->max_timeout != absl::InfiniteDuration()) {
      deadline = std::min(deadline, now + rule->max_timeout);
    }
  }
  if (deadline <= now) {
    *status = absl::DeadlineExceededError(
        absl::StrCat("deadline of ", ctx->path, " passed before the call was sent"));
    return Result::kReject;
  }
  ctx->backend_deadline = deadline;
  return Result::kContinue;
}

}  // namespace gateway
