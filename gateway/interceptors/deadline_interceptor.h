// DeadlineInterceptor: gives each backend call its deadline from the method's rule: the
// rule's default when the client set none, capped at the rule's maximum. A call whose
// deadline has already passed is rejected with DEADLINE_EXCEEDED.
//
// Thread-safety: immutable; shared by all calls.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const DeadlineInterceptor>> deadlines =
//       DeadlineInterceptor::Create(config.deadlines(), pool, services, clock);

#ifndef GATEWAY_INTERCEPTORS_DEADLINE_INTERCEPTOR_H_
#define GATEWAY_INTERCEPTORS_DEADLINE_INTERCEPTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gateway/clock.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"
#include "gateway/interceptors/selector.h"

namespace gateway {

class DeadlineInterceptor : public Interceptor {
 public:
  struct Rule {
    absl::Duration default_timeout = absl::InfiniteDuration();
    absl::Duration max_timeout = absl::InfiniteDuration();
  };

  // Compiles `config` against the methods of `services` in `pool`. INVALID_ARGUMENT naming
  // the key (`deadlines.rules[1].selectors[0]`) for a bad selector, one that names no
  // method of `services` (with SelectorCheck::kStrict), a rule without selectors, or a zero
  // timeout.
  static absl::StatusOr<std::shared_ptr<const DeadlineInterceptor>> Create(
      const config::v1::Deadlines& config, const google::protobuf::DescriptorPool& pool,
      const std::vector<std::string>& services, std::shared_ptr<const Clock> clock,
      SelectorCheck check = SelectorCheck::kStrict);

  absl::string_view name() const override { return "deadline"; }
  std::shared_ptr<const void> Resolve(
      const google::protobuf::MethodDescriptor& method) const override;
  Result Intercept(CallContext* ctx, absl::Status* status) const override;

 private:
  DeadlineInterceptor() = default;

  std::vector<Rule> rules_;
  SelectorMap<Rule> by_method_;
  std::shared_ptr<const Clock> clock_;
};

// Converts a config duration; InfiniteDuration when unset.
absl::Duration ToDuration(const google::protobuf::Duration& d);

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_DEADLINE_INTERCEPTOR_H_
