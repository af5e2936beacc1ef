// Active health checks of a cluster's endpoints: grpc.health.v1.Health/Check, one HTTP/2
// connection per endpoint, on the UpstreamControl thread (never on a worker).
//
// Each checked endpoint gets a unary call /grpc.health.v1.Health/Check with
// HealthCheckRequest{service = options.service}, `options.timeout` long; the next starts
// `options.interval` after the previous one ended. An answer SERVING is a success;
// anything else (NOT_SERVING, SERVICE_UNKNOWN, an error status such as UNIMPLEMENTED from a
// server without the health service, a connect failure, the timeout) is a failure.
// `healthy_threshold` successes in a row make the endpoint healthy
// (EndpointState::set_healthy(true)), `unhealthy_threshold` failures in a row unhealthy.
//
// Start: an endpoint is healthy until proven otherwise (EndpointState starts healthy), and
// its first check runs at once when it is added: that first result decides alone (no
// threshold), so a dead endpoint leaves the rotation within one check instead of
// unhealthy_threshold intervals. Each change of verdict logs one line naming the backend,
// the endpoint and the reason.
//
// Not thread-safe: construct anywhere, then call every method on the thread that runs `io`
// (the control thread). Workers only read EndpointState::healthy().
//
//   auto checker = std::make_shared<HealthChecker>(io, "books", options.health_check,
//                                                  options.connection);
//   checker->Update(*cluster->endpoints());   // on io's thread; again on each DNS change
//   ...
//   checker->Stop();                          // on io's thread
#ifndef GATEWAY_UPSTREAM_HEALTH_CHECKER_H_
#define GATEWAY_UPSTREAM_HEALTH_CHECKER_H_

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/http2_connection.h"

namespace gateway::upstream {

// The serialized grpc.health.v1.HealthCheckRequest{service} (field 1, string).
std::string EncodeHealthCheckRequest(absl::string_view service);

// HealthCheckResponse.status (field 1, enum; 0 UNKNOWN when absent, 1 SERVING,
// 2 NOT_SERVING, 3 SERVICE_UNKNOWN) from a serialized response; unknown fields are skipped.
// INVALID_ARGUMENT for bytes that are not a protobuf message.
absl::StatusOr<uint64_t> DecodeHealthCheckStatus(absl::string_view message);

constexpr uint64_t kHealthServing = 1;

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  // `backend` names the cluster in log lines. The connections use `connection`, with a
  // connect timeout no longer than options.timeout.
  HealthChecker(boost::asio::io_context& io, std::string backend, HealthCheckOptions options,
                ConnectionOptions connection);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Checks exactly the endpoints of `endpoints` from now on: one not checked yet gets its
  // first check at once; one no longer in the set loses its check and connection. An
  // endpoint is the same while its EndpointState object is (Cluster keeps the object of an
  // address that stays). No effect after Stop().
  void Update(const EndpointSet& endpoints);
  // Ends every check and closes the connections.
  void Stop();

  // How many endpoints are being checked.
  size_t checked_endpoints() const { return targets_.size(); }
  // Checks completed so far (all endpoints), for tests and metrics.
  uint64_t checks_total() const { return checks_total_; }

 private:
  struct Target;  // one endpoint's check loop (health_checker.cc)
  void RunCheck(const std::shared_ptr<Target>& target);
  void OnResult(const std::shared_ptr<Target>& target, bool serving, const std::string& why);
  void StopTarget(Target& target);

  boost::asio::io_context& io_;
  const std::string backend_;
  const HealthCheckOptions options_;
  ConnectionOptions connection_;
  absl::flat_hash_map<const EndpointState*, std::shared_ptr<Target>> targets_;
  uint64_t checks_total_ = 0;
  bool stopped_ = false;
};

}  // namespace gateway::upstream

#endif  // GATEWAY_UPSTREAM_HEALTH_CHECKER_H_
