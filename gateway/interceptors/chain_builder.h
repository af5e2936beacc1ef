// Builds the gateway's interceptor chain from the config: authentication first (it sets
// the caller the quotas count by), then quotas, then deadlines.
//
// Thread-safety: the returned chain is immutable. Its rules are resolved per method by the
// route tables that hold it (InterceptorChain::Resolve), for any descriptor pool.
//
// Example:
//   absl::StatusOr<std::shared_ptr<const InterceptorChain>> chain =
//       BuildInterceptorChain(config, "/etc/gatewayd", pool, {"bookstore.v1.Bookstore"},
//                             RealClock());

#ifndef GATEWAY_INTERCEPTORS_CHAIN_BUILDER_H_
#define GATEWAY_INTERCEPTORS_CHAIN_BUILDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gateway/clock.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/interceptor.h"

namespace gateway {
namespace metrics {
class MetricRegistry;
}  // namespace metrics

// INVALID_ARGUMENT naming the config key when a section does not compile. Relative file
// paths (JWKS and API key files) are resolved against `base_dir`. Selectors must name
// methods of `services` in `pool`, unless the config has an admin listener (services can
// then be registered at run time, and a selector may be meant for one of them).
absl::StatusOr<std::shared_ptr<const InterceptorChain>> BuildInterceptorChain(
    const config::v1::Config& config, const std::string& base_dir,
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
    std::shared_ptr<const Clock> clock, metrics::MetricRegistry* metrics = nullptr);

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_CHAIN_BUILDER_H_
