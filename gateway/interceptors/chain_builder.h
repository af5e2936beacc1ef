// Builds the gateway's interceptor chain from the config: authentication first (it sets
// the caller the quotas count by), then quotas, then deadlines.
//
// Thread-safety: the returned chain is immutable. It belongs to the descriptor pool and
// services it was built for (method rules are resolved against them).
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

// INVALID_ARGUMENT naming the config key when a section does not compile. Relative file
// paths (JWKS and API key files) are resolved against `base_dir`.
absl::StatusOr<std::shared_ptr<const InterceptorChain>> BuildInterceptorChain(
    const config::v1::Config& config, const std::string& base_dir,
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
    std::shared_ptr<const Clock> clock);

}  // namespace gateway

#endif  // GATEWAY_INTERCEPTORS_CHAIN_BUILDER_H_
