// RetryInterceptor: gives each call the retry policy of its method (`retries.rules`), for
// the upstream that calls the backend (CallContext::retry_policy; see
// gateway/upstream/retry_policy.h for what is tried again). It never rejects a call.
//
// Thread-safety: immutable; shared by all calls.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const RetryInterceptor>> retries =
//       RetryInterceptor::Create(config.retries(), pool, services);

#ifndef GATEWAY_INTERCEPTORS_RETRY_INTERCEPTOR_H_
#define GATEWAY_INTERCEPTORS_RETRY_INTERCEPTOR_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"
#include "gateway/interceptors/selector.h"
#include "gateway/upstream/retry_policy.h"

namespace gateway {

class RetryInterceptor : public Interceptor {
 public:
  // Compiles `config` against the methods of `services` in `pool`. INVALID_ARGUMENT naming
  // the key (`retries.rules[1].retry_on[0]`) for a rule without selectors, a bad selector
  // (or, with SelectorCheck::kStrict, one naming no method), max_attempts outside 2..10,
  // an unknown status code name, OK in retry_on, a zero duration, backoff_max below
  // backoff_base, or budget_percent over 100.
  static absl::StatusOr<std::shared_ptr<const RetryInterceptor>> Create(
      const config::v1::Retries& config, const google::protobuf::DescriptorPool& pool,
      const std::vector<std::string>& services, SelectorCheck check = SelectorCheck::kStrict);

  absl::string_view name() const override { return "retry"; }
  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override;
  Result Intercept(CallContext* ctx, absl::Status* status) const override;

 private:
  RetryInterceptor() = default;

  std::deque<upstream::RetryPolicy> policies_;  // stable addresses
  SelectorMap<upstream::RetryPolicy> by_method_;
};

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_RETRY_INTERCEPTOR_H_
