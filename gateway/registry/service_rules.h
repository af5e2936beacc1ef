// The rules a registered service carries for its own methods (deadlines, retries), checked
// when it registers and applied by one interceptor that every route table with such rules
// adds after the gateway config's chain.
//
// A registration's rules use the config's schema (gateway.config.v1.Deadlines and
// Retries) and the config's validators (DeadlineInterceptor::Create,
// RetryInterceptor::Create), limited to the service's own methods: each selector is
// "<service>.*" or "<service>.<Method>" (a rule without selectors covers the whole
// service), and the gateway-wide keys (deadlines.http_timeout_header,
// retries.budget_percent, retries.min_retry_concurrency) stay the config's. They add to the
// config's rules, never loosen them: a call's deadline is the earliest of the config's and
// the service's (the service's default applies when the client set no deadline and can
// only shorten the config's), and the service's retry rule replaces the config's for the
// methods it names (retries are still bounded by the backend's retry budget and circuit
// breakers).
//
// Thread-safety: the interceptor is immutable; the functions are pure.
//
// Example:
//   absl::Status ok = CheckServiceRules("pay.v1.Pay", deadlines, retries, pool);
//   absl::StatusOr<std::shared_ptr<const Interceptor>> rules =
//       BuildServiceRules({{"pay.v1.Pay", &deadlines, &retries}}, table_pool, RealClock());

#ifndef GATEWAY_REGISTRY_SERVICE_RULES_H_
#define GATEWAY_REGISTRY_SERVICE_RULES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/clock.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"
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

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_SERVICE_RULES_H_
