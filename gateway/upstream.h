// Backend: one upstream gRPC server (or a set of equivalent servers behind one target URI),
// reached through one grpc::Channel with gRPC's own name resolution, load balancing
// (round_robin by default), keep-alive and TLS.
//
// Thread-safety: a Backend is immutable after Create() and safe to use from any thread;
// gRPC channels and generic stubs are thread-safe.
//
// Example:
//   absl::StatusOr<std::shared_ptr<Backend>> backend =
//       Backend::Create(config.backends(0), config.limits(), "/etc/gatewayd");
//   auto call = (*backend)->stub().PrepareCall(&context, "/pkg.Svc/Method", cq);
//   ...
//   // Once the call ended with `status` (what its Finish() wrote):
//   grpc::Status for_client = (*backend)->ClientStatus(context, status, "/pkg.Svc/Method");

#ifndef GATEWAY_UPSTREAM_H_
#define GATEWAY_UPSTREAM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/http2_connection.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/generic/generic_stub.h"

namespace gateway {

class Backend {
 public:
  ~Backend();  // stops the cluster's background work
  // Creates the channel for `config` (does not connect yet: gRPC connects on first use and
  // reconnects by itself). Relative TLS file paths are resolved against `base_dir`.
  // Returns INVALID_ARGUMENT naming the field when the config is incomplete or a TLS file
  // cannot be read. `path` names the config entry in errors (e.g. "backends[0]").
  static absl::StatusOr<std::shared_ptr<Backend>> Create(const config::v1::Backend& config,
                                                         const config::v1::Limits& limits,
                                                         const std::string& base_dir,
                                                         const std::string& path);

  const std::string& name() const { return name_; }
  const std::string& target() const { return target_; }
  grpc::GenericStub& stub() const { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // The backend's endpoints and their state, for the gateway's own upstream (the HTTP
  // front end's workers reach it through upstream::ClusterWorker). Never null.
  const std::shared_ptr<upstream::Cluster>& cluster() const { return cluster_; }
  // Whether /readyz waits for this backend (backends[].required, default true).
  bool required() const { return required_; }
  // The most request metadata a call to this backend may carry (limits.max_metadata_bytes;
  // see metadata::CheckMetadataSize).
  size_t max_metadata_bytes() const { return max_metadata_bytes_; }

  // What the client is told of a call to this backend (on `method`, e.g. "/pkg.Svc/M") that
  // ended with `status`, the status the call's Finish() wrote into `context`'s call. Used
  // by every front end (REST, gRPC-Web, gRPC), so a transport failure reads the same on all.
  //
  // The rule: gRPC core writes "Error received from peer <address>" into the call's
  // debug_error_string() exactly when the status arrived from the other side in the
  // response's trailers (grpc-status), i.e. when the backend (or a proxy in front of it)
  // answered; any other status was made by gRPC core itself: connection refused, name
  // resolution, TLS handshake, connection lost, a bad HTTP/2 response. Then:
  //  - OK, and a status the backend sent: returned untouched, whatever its code and text.
  //  - A status gRPC core made with code DEADLINE_EXCEEDED, CANCELLED or RESOURCE_EXHAUSTED
  //    (the deadline, a cancellation, a message over the size limit; core's text for these
  //    names no address): returned untouched.
  //  - Any other status gRPC core made: the same code with a message that names the backend
  //    by its config name and what failed, never its address, e.g.
  //      backend "bookstore" is unavailable: failed to connect
  //    (UNAVAILABLE; other codes read 'backend "bookstore" failed: connection lost'); core's
  //    full text, address included, goes to the gateway's log, at most one line per second
  //    per backend (the next line says how many were left out).
  // A status the front end set itself in place of the call's (e.g. after cancelling a call
  // whose response it could not read) is not the call's own: its message is not in
  // debug_error_string(), and it is returned untouched. Thread-safe.
  grpc::Status ClientStatus(const grpc::ClientContext& context, const grpc::Status& status,
                            absl::string_view method) const;
  // The same rule for a call through the gateway's own upstream (upstream::BackendCall): a
  // status with grpc-status in the response came from the backend and is returned as it
  // is; CANCELLED and RESOURCE_EXHAUSTED as they are; a DEADLINE_EXCEEDED of the gateway's
  // own says 'backend "NAME" did not answer before the call's deadline'; a status the
  // cluster made ('backend "NAME": ...') as it is; any other (the connection or the
  // stream failed) gets a message naming the backend and what failed, and its text, with
  // the endpoint's address, goes to the log (rate-limited as above).
  absl::Status UpstreamClientStatus(const upstream::CallResult& result,
                                    absl::string_view method) const;

 private:
  Backend(std::string name, std::string target, std::shared_ptr<grpc::Channel> channel,
          size_t max_metadata_bytes);
  void LogFailure(absl::string_view method, absl::string_view what, absl::StatusCode code,
                  absl::string_view text) const;

  std::shared_ptr<upstream::Cluster> cluster_;
  bool required_ = true;

  std::string name_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  size_t max_metadata_bytes_;
  // ClientStatus's log limit: when the last line was written (absl::Now in ns), and the
  // lines left out since.
  mutable std::atomic<int64_t> last_log_ns_{0};
  mutable std::atomic<int64_t> unlogged_{0};
};

// What failed, in a few words, for a status that gRPC core made for a call that did not
// reach its backend or lost it: "failed to connect", "name resolution failed",
// "TLS handshake failed", "connection lost" or "transport failure". `core_message` is
// core's text (it may name addresses; the result never does).
std::string DescribeTransportFailure(absl::string_view core_message);

// The message size limit in effect for `limits` (its default when unset).
int MaxMessageBytes(const config::v1::Limits& limits);

// The request metadata size limit in effect for `limits` (its default when unset).
size_t MaxMetadataBytes(const config::v1::Limits& limits);

// The cluster options of a backend's config entry (defaults applied), without its TLS
// files (Create reads them). INVALID_ARGUMENT naming the key (`path`.connect_timeout ...).
absl::StatusOr<upstream::ClusterOptions> ClusterOptionsFor(const config::v1::Backend& config,
                                                          const config::v1::Limits& limits,
                                                          const std::string& path);

// The process's thread for the clusters' background work (DNS, health checks).
upstream::UpstreamControl& DefaultUpstreamControl();

// Resolves `path` against `base_dir` unless it is absolute or base_dir is empty.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

}  // namespace gateway

#endif  // GATEWAY_UPSTREAM_H_
