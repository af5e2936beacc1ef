// QuotaInterceptor: rate limits per method and key (caller, client IP, a header, the
// method, or global), counted in memory by RateLimiter. A call over a limit is rejected
// with RESOURCE_EXHAUSTED, naming the rule and when to retry, and with the response headers
// `retry-after` (whole seconds, rounded up), `ratelimit-limit`, `ratelimit-remaining` and
// `ratelimit-reset`.
//
// Every rule that applies to the method is checked, in config order; the first that
// rejects ends the check (rules before it have counted the call). Local rules are checked
// first, inline; shared rules (counted in Redis, see RedisQuotaStore) are then checked
// together, asynchronously: the interceptor returns kPending and resumes the call when
// Redis has answered. When Redis cannot answer, a shared rule fails open (the call goes on)
// or closed (UNAVAILABLE), as configured, and the failure is logged at most every 10s.
//
// Thread-safety: thread-safe; shared by all calls.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> quotas =
//       QuotaInterceptor::Create(config.quotas(), pool, services, clock);

#ifndef GATEWAY_INTERCEPTORS_QUOTA_INTERCEPTOR_H_
#define GATEWAY_INTERCEPTORS_QUOTA_INTERCEPTOR_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/clock.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"
#include "absl/synchronization/mutex.h"
#include "gateway/interceptors/rate_limiter.h"
#include "gateway/interceptors/redis_quota_store.h"
#include "gateway/interceptors/selector.h"

namespace gateway {

class QuotaInterceptor : public Interceptor {
 public:
  // INVALID_ARGUMENT naming the key (`quotas.rules[0].requests`) for a missing name or
  // duplicate name, no selectors, a bad or unknown selector, zero requests or period, a
  // HEADER key without `header`; a selector that names no method of `services` only with
  // SelectorCheck::kStrict.
  static absl::StatusOr<std::shared_ptr<const QuotaInterceptor>> Create(
      const config::v1::Quotas& config, const google::protobuf::DescriptorPool& pool,
      const std::vector<std::string>& services, std::shared_ptr<const Clock> clock,
      SelectorCheck check = SelectorCheck::kStrict, metrics::MetricRegistry* metrics = nullptr);

  absl::string_view name() const override { return "quota"; }
  // The rules that apply to `method`, in config order.
  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override;
  Result Intercept(CallContext* ctx, absl::Status* status) const override;
  // Intercept() with `rules` (what Resolve() returned for ctx->method) in place of
  // ctx->rule(): for an interceptor that resolves a method to this one's rules.
  Result InterceptWith(CallContext* ctx, const void* rules, absl::Status* status) const;

 private:
  struct Rule {
    std::string name;
    config::v1::QuotaRule::Key key;
    std::string header;  // lower case
    std::unique_ptr<RateLimiter> limiter;  // local rules
    bool shared = false;
    std::string redis_prefix;  // shared rules: key prefix including the rule name
    SelectorMap<Rule> applies;
  };
  struct SharedCheck;

  QuotaInterceptor() = default;
  absl::string_view KeyOf(const Rule& rule, const CallContext& ctx) const;
  static absl::Status Rejection(const Rule& rule, const RateLimiter::Decision& d,
                                CallContext* ctx);
  // The shared store failed / answered: an outage and its end are logged once each.
  void OnStoreFailure(const absl::Status& status) const;
  void OnStoreAnswered() const;

  std::vector<std::unique_ptr<Rule>> rules_;
  std::shared_ptr<const Clock> clock_;
  std::unique_ptr<RedisQuotaStore> store_;
  bool fail_open_ = true;
  mutable std::atomic<bool> store_down_{false};
};

// The IP address part of a peer address: "ipv4:127.0.0.1:5000" -> "127.0.0.1",
// "ipv6:[::1]:5000" -> "::1", "10.0.0.1:80" -> "10.0.0.1"; other forms unchanged.
absl::string_view PeerIp(absl::string_view peer);

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_QUOTA_INTERCEPTOR_H_
