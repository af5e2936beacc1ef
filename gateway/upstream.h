// Backend: one upstream gRPC server (or a set of equivalent servers behind one target URI):
// the cluster of its endpoints that every front end calls through (upstream::Cluster, the
// workers' own HTTP/2 connections), its limits, and how a failed call reads to clients.
// A grpc::Channel to the same target exists only for the gateway's own questions to the
// backend (the registry asks its reflection or health service); it is made on first use,
// so no client call and no idle connection of gRPC core goes with a backend otherwise.
//
// Thread-safety: a Backend is immutable after Create() (the channel is made once, under a
// once-flag) and safe to use from any thread.
//
// Example:
//   absl::StatusOr<std::shared_ptr<Backend>> backend =
//       Backend::Create(config.backends(0), config.limits(), "/etc/gatewayd", "backends[0]");
//   auto call = upstream::BackendCall::Start(upstreams->For((*backend)->cluster()), ...);
//   ...
//   absl::Status for_client = (*backend)->UpstreamClientStatus(result, "/pkg.Svc/Method");

#ifndef GATEWAY_UPSTREAM_H_
#define GATEWAY_UPSTREAM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/call_once.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/config/v1/config.pb.h"
#include "gateway/upstream/cluster.h"
#include "gateway/upstream/http2_connection.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace gateway {

class Backend {
 public:
  ~Backend();  // stops the cluster's background work
  // Creates the cluster for `config` and starts its background work (DNS, health checks;
  // connections are made by the workers that call it). Relative TLS file paths are resolved
  // against `base_dir`.
  // Returns INVALID_ARGUMENT naming the field when the config is incomplete or a TLS file
  // cannot be read. `path` names the config entry in errors (e.g. "backends[0]").
  static absl::StatusOr<std::shared_ptr<Backend>> Create(const config::v1::Backend& config,
                                                         const config::v1::Limits& limits,
                                                         const std::string& base_dir,
                                                         const std::string& path);

  // What makes a backend the same across config reloads: its config entry, the limits it
  // takes, and the contents of its TLS files. Two equal fingerprints give equal Backends,
  // so a reload keeps the running one (its connections, health and outlier state).
  // Returns the error of an unreadable TLS file.
  static absl::StatusOr<std::string> Fingerprint(const config::v1::Backend& config,
                                                 const config::v1::Limits& limits,
                                                 const std::string& base_dir);

  const std::string& name() const { return name_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& target() const { return target_; }
  // A gRPC channel to the backend's target, with the backend's TLS, made on first use (not
  // for calls of clients: see the file comment).
  const std::shared_ptr<grpc::Channel>& channel() const;
  // The backend's endpoints and their state, for the gateway's own upstream (the HTTP
  // front end's workers reach it through upstream::ClusterWorker). Never null.
  const std::shared_ptr<upstream::Cluster>& cluster() const { return cluster_; }
  // Whether /readyz waits for this backend (backends[].required, default true).
  bool required() const { return required_; }
  // The most request metadata a call to this backend may carry (limits.max_metadata_bytes;
  // see metadata::CheckMetadataSize).
  size_t max_metadata_bytes() const { return max_metadata_bytes_; }

  // What the client is told of a call to this backend (on `method`, e.g. "/pkg.Svc/M")
  // through the gateway's upstream (upstream::BackendCall), the same on every front end: a
  // status with grpc-status in the response came from the backend and is returned as it
  // is, whatever its code and text; CANCELLED and RESOURCE_EXHAUSTED as they are; a
  // DEADLINE_EXCEEDED of the gateway's own says 'backend "NAME" did not answer before the
  // call's deadline'; a status the cluster made ('backend "NAME": ...') as it is; any other
  // (the connection or the stream failed) gets a message naming the backend by its config
  // name and what failed, never an address (e.g. 'backend "bookstore" is unavailable:
  // connection lost'), and its full text, with the endpoint's address, goes to the log, at
  // most one line per second per backend (the next line says how many were left out).
  absl::Status UpstreamClientStatus(const upstream::CallResult& result,
                                    absl::string_view method) const;

 private:
  Backend(std::string name, std::string target, size_t max_metadata_bytes);
  void LogFailure(absl::string_view method, absl::string_view what, absl::StatusCode code,
                  absl::string_view text) const;

  std::shared_ptr<upstream::Cluster> cluster_;
  bool required_ = true;
  std::string fingerprint_;

  std::string name_;
  std::string target_;
  // channel(): what it is made from, and the channel once made.
  std::shared_ptr<grpc::ChannelCredentials> channel_credentials_;
  grpc::ChannelArguments channel_args_;
  mutable absl::once_flag channel_once_;
  mutable std::shared_ptr<grpc::Channel> channel_;
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
