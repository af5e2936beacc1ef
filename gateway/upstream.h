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

#ifndef GATEWAY_UPSTREAM_H_
#define GATEWAY_UPSTREAM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gateway/config/v1/config.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"

namespace gateway {

class Backend {
 public:
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

 private:
  Backend(std::string name, std::string target, std::shared_ptr<grpc::Channel> channel);

  std::string name_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

// The message size limit in effect for `limits` (its default when unset).
int MaxMessageBytes(const config::v1::Limits& limits);

// Resolves `path` against `base_dir` unless it is absolute or base_dir is empty.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

}  // namespace gateway

#endif  // GATEWAY_UPSTREAM_H_
