#include "gateway/interceptors/chain_builder.h"

#include <utility>

#include "gateway/interceptors/auth_interceptor.h"
#include "gateway/interceptors/deadline_interceptor.h"
#include "gateway/interceptors/quota_interceptor.h"
#include "gateway/interceptors/retry_interceptor.h"

namespace gateway {

absl::StatusOr<std::shared_ptr<const InterceptorChain>> BuildInterceptorChain(
    const config::v1::Config& config, const std::string& base_dir,
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
    std::shared_ptr<const Clock> clock, metrics::MetricRegistry* metrics) {
  const SelectorCheck check =
      config.has_admin_listener() ? SelectorCheck::kOpen : SelectorCheck::kStrict;
  std::vector<std::shared_ptr<const Interceptor>> interceptors;
  if (config.has_auth()) {
    absl::StatusOr<std::shared_ptr<const AuthInterceptor>> auth =
        AuthInterceptor::Create(config.auth(), base_dir, pool, services, check);
    if (!auth.ok()) return auth.status();
    interceptors.push_back(*std::move(auth));
  }
  if (!config.quotas().rules().empty()) {
    absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> quotas =
        QuotaInterceptor::Create(config.quotas(), pool, services, clock, check, metrics);
    if (!quotas.ok()) return quotas.status();
    interceptors.push_back(*std::move(quotas));
  }
  if (!config.deadlines().rules().empty()) {
    absl::StatusOr<std::shared_ptr<const DeadlineInterceptor>> deadlines =
        DeadlineInterceptor::Create(config.deadlines(), pool, services, clock, check);
    if (!deadlines.ok()) return deadlines.status();
    interceptors.push_back(*std::move(deadlines));
  }
  if (!config.retries().rules().empty()) {
    absl::StatusOr<std::shared_ptr<const RetryInterceptor>> retries =
        RetryInterceptor::Create(config.retries(), pool, services, check);
    if (!retries.ok()) return retries.status();
    interceptors.push_back(*std::move(retries));
  }
  return std::make_shared<const InterceptorChain>(std::move(interceptors));
}

}  // namespace gateway
