// ReflectionService: gRPC server reflection (grpc.reflection.v1alpha) over the route table
// the gateway currently serves, so reflection clients (grpcurl, grpc_cli, gatewayctl
// --from-reflection) see every service of the config and of the registry, each change
// included as soon as it is published.
//
// gatewayd serves it on the admin listener and routes the reflection service of its gRPC
// front end there (see AdminServer), so clients of the gateway ask the gateway itself.
// Reflection answers never require the admin token: they describe what the front end
// serves anyway.
//
// Thread-safety: thread-safe; each call reads the table once per request.
//
// Example:
//   ReflectionService reflection([&] { return registry->routes(); });
//   builder.RegisterService(&reflection);

#ifndef GATEWAY_REGISTRY_REFLECTION_SERVICE_H_
#define GATEWAY_REGISTRY_REFLECTION_SERVICE_H_

#include <functional>
#include <memory>

#include "gateway/route_table.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace gateway::registry {

// The full name of the reflection service.
inline constexpr char kReflectionService[] = "grpc.reflection.v1alpha.ServerReflection";

class ReflectionService final : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `routes` returns the current table (may return null while starting: the call then
  // fails with UNAVAILABLE).
  explicit ReflectionService(std::function<std::shared_ptr<const RouteTable>()> routes)
      : routes_(std::move(routes)) {}

  // Answers list_services (every bound service), file_by_filename and
  // file_containing_symbol (the file and every file it imports, dependencies first);
  // NOT_FOUND in an error_response for an unknown name, UNIMPLEMENTED for extension queries.
  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1alpha::ServerReflectionResponse,
                               grpc::reflection::v1alpha::ServerReflectionRequest>* stream)
      override;

 private:
  const std::function<std::shared_ptr<const RouteTable>()> routes_;
};

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_REFLECTION_SERVICE_H_
